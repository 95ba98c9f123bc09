//! `cargo oci2bin cache [prune]`: what oci2bin keeps on this machine, and removing it.
//!
//! Everything lives under one root (see `oci2bin_rt::location`). Each part is shown with
//! its path and its size on disk; `prune` removes whole entries (a blob, a kept runtime, an
//! unpacked image) so nothing half-removed is left for a later build or run to trip over.
//! Named volumes and kept containers are user data, not cache: prune never touches them.

use crate::cli::{CacheAction, CacheArgs};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One part of the cache root.
struct Part {
    /// Directory name under the root.
    name: &'static str,
    /// What it holds.
    what: &'static str,
    /// How deep its prunable entries are (1: each child of the directory is one entry).
    depth: usize,
}

/// The parts of the root that are cache. Anything else under the root (volumes, containers)
/// is never listed for removal.
const PARTS: &[Part] = &[
    Part {
        name: "build",
        what: "verified and recompressed layers, pulled manifests, daemon exports",
        depth: 3,
    },
    Part {
        name: "runtimes",
        what: "compiled runtimes, one per target and codec",
        depth: 3,
    },
    Part {
        name: "target",
        what: "cargo's target directory for the runtime",
        depth: 0,
    },
    Part {
        name: "work",
        what: "the runtime's generated crates and unpacked sources",
        depth: 1,
    },
    Part {
        name: "images",
        what: "images unpacked by output binaries run here",
        depth: 1,
    },
];

/// Size on disk of everything under `path` (hard links counted once), and the last time
/// anything in it was modified or read (as the file system records access times).
fn measure(path: &Path, seen: &mut HashSet<(u64, u64)>) -> (u64, SystemTime) {
    let mut bytes = 0;
    let mut last = SystemTime::UNIX_EPOCH;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if seen.insert((m.dev(), m.ino())) {
            bytes += m.blocks() * 512;
        }
        // A directory's access time moves whenever it is listed (this walk included), so
        // only a file's counts as use.
        let accessed = if m.is_dir() { None } else { m.accessed().ok() };
        for t in [m.modified().ok(), accessed].into_iter().flatten() {
            last = last.max(t);
        }
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    (bytes, last)
}

/// The prunable entries of a part: paths `depth` levels below its directory (the directory
/// itself for depth 0). Lock files and the build cache's live temporaries are not entries.
fn entries(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for d in level {
            if std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
                if let Ok(rd) = std::fs::read_dir(&d) {
                    next.extend(rd.flatten().map(|e| e.path()));
                }
            } else {
                next.push(d);
            }
        }
        level = next;
    }
    level
        .into_iter()
        .filter(|p| p.exists())
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .filter(|p| !p.starts_with(dir.join("tmp")))
        .collect()
}

/// Parses `30s`, `90m`, `12h`, `7d`, `2w`.
pub fn parse_age(s: &str) -> Result<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("--older-than {s}: expected a number and a unit, e.g. 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86400,
        "w" => 7 * 86400,
        _ => bail!("--older-than {s}: unknown unit {unit:?}; use s, m, h, d or w"),
    };
    Ok(Duration::from_secs(n * secs))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Whether a container run from this root is running now (its run lock is held).
fn runs_active(root: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(root.join("runs")) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
        .filter(|e| {
            std::fs::File::open(e.path()).is_ok_and(|f| {
                use std::os::fd::AsRawFd;
                // SAFETY: flock on a descriptor owned by `f`, released when it closes.
                unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
            })
        })
        .count()
}

/// Removes `path`; entries an output binary unpacked as a user with a subordinate id range
/// are owned by those ids, so when plain removal is refused it is retried inside a user
/// namespace mapping them (`unshare --map-auto`, util-linux), as `podman unshare` would.
fn remove(path: &Path) -> Result<()> {
    let plain = if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match plain {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let status = std::process::Command::new("unshare")
                .args(["--map-auto", "--map-root-user", "--", "rm", "-rf", "--"])
                .arg(path)
                .status();
            match status {
                Ok(s) if s.success() && !path.exists() => Ok(()),
                _ => bail!(
                    "cannot remove {}: {e} (it holds files owned by your subordinate ids; remove it with `unshare --map-auto --map-root-user rm -rf {}`)",
                    path.display(),
                    path.display()
                ),
            }
        }
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Runs `cache` or `cache prune`.
pub fn run(args: &CacheArgs) -> Result<()> {
    let root = crate::build_cmd::home(args.cache_dir.as_deref())?;
    match &args.action {
        None => show(&root, args.json),
        Some(CacheAction::Prune {
            all,
            older_than,
            dry_run,
        }) => {
            let age = match (all, older_than) {
                (true, _) => None,
                (false, Some(a)) => Some(parse_age(a)?),
                (false, None) => bail!("cache prune: pass --all or --older-than AGE"),
            };
            prune(&root, age, *dry_run, args.json)
        }
    }
}

fn show(root: &Path, json: bool) -> Result<()> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for part in PARTS {
        let path = root.join(part.name);
        let (bytes, _) = measure(&path, &mut seen);
        rows.push((part, path, bytes));
    }
    let total: u64 = rows.iter().map(|r| r.2).sum();
    if json {
        let parts: Vec<_> = rows
            .iter()
            .map(|(p, path, bytes)| {
                serde_json::json!({"name": p.name, "path": path, "bytes": bytes, "holds": p.what})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"root": root, "bytes": total, "parts": parts})
        );
        return Ok(());
    }
    println!("oci2bin cache root: {} ({})", root.display(), mb(total));
    println!("  (set with --cache-dir or OCI2BIN_CACHE_DIR; prune with `cargo oci2bin cache prune --all` or `--older-than 7d`)");
    for (part, path, bytes) in rows {
        println!(
            "  {:<9} {:>10}  {}  ({})",
            part.name,
            mb(bytes),
            path.display(),
            part.what
        );
    }
    Ok(())
}

/// Removes the directories between `part` and each removed entry that are now empty
/// (`runtimes/<bundle>/<target>/` once its runtimes are gone), so that pruning leaves no
/// trail of empty directories behind; `part` itself stays. Returns the bytes they took.
fn remove_empty_parents(part: &Path, removed: &[PathBuf]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut freed = 0;
    for entry in removed {
        let mut dir = entry.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(part) && *d != part) {
            let size = std::fs::symlink_metadata(d).map_or(0, |m| m.blocks() * 512);
            // Fails (and stops) at the first directory that still holds something.
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            freed += size;
            dir = d.parent();
        }
    }
    freed
}

fn prune(root: &Path, age: Option<Duration>, dry_run: bool, json: bool) -> Result<()> {
    let now = SystemTime::now();
    let active = runs_active(root);
    let mut freed = 0u64;
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for part in PARTS {
        if part.name == "images" && active > 0 {
            eprintln!(
                "keeping {}: {active} container(s) started from this cache are running",
                root.join("images").display()
            );
            continue;
        }
        for entry in entries(&root.join(part.name), part.depth) {
            let mut seen = HashSet::new();
            let (bytes, last) = measure(&entry, &mut seen);
            let old_enough = match age {
                None => true,
                Some(a) => now.duration_since(last).is_ok_and(|d| d > a),
            };
            if !old_enough {
                continue;
            }
            if !dry_run {
                if let Err(e) = remove(&entry) {
                    failures.push(format!("{e:#}"));
                    continue;
                }
            }
            freed += bytes;
            removed.push(entry);
        }
        // The runtimes' directories are per version and target, so they pile up; the build
        // cache's (`blobs/sha256/`) are its fixed layout and stay.
        if !dry_run && part.name == "runtimes" {
            freed += remove_empty_parents(&root.join(part.name), &removed);
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"root": root, "freed_bytes": freed, "removed": removed, "dry_run": dry_run, "errors": failures})
        );
    } else {
        for r in &removed {
            println!(
                "{} {}",
                if dry_run { "would remove" } else { "removed" },
                r.display()
            );
        }
        println!(
            "{} {} in {} entries",
            if dry_run { "would free" } else { "freed" },
            mb(freed),
            removed.len()
        );
    }
    if !failures.is_empty() {
        bail!(
            "some entries could not be removed:\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_age("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_age("7y").is_err());
        assert!(parse_age("d").is_err());
    }

    #[test]
    fn prune_removes_old_cache_entries_and_never_volumes() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let blob = r.join("build/blobs/sha256/aaaa");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, vec![1u8; 100_000]).unwrap();
        std::fs::create_dir_all(r.join("images/bbbb/rootfs")).unwrap();
        std::fs::write(r.join("images/bbbb/rootfs/f"), b"x").unwrap();
        std::fs::create_dir_all(r.join("volumes/data")).unwrap();
        std::fs::write(r.join("volumes/data/keep"), b"precious").unwrap();
        // Nothing is older than an hour.
        prune(r, Some(Duration::from_secs(3600)), false, true).unwrap();
        assert!(blob.exists());
        prune(r, None, false, true).unwrap();
        assert!(!blob.exists());
        assert!(!r.join("images/bbbb").exists());
        assert_eq!(
            std::fs::read(r.join("volumes/data/keep")).unwrap(),
            b"precious"
        );
        // The part directories themselves stay.
        assert!(r.join("build/blobs/sha256").is_dir());
        // Emptied runtime directories (one per version and target) go.
        let runtime = r.join("runtimes/0.1.0-aa/x86_64-unknown-linux-musl/oci2bin-runtime-zstd");
        std::fs::create_dir_all(runtime.parent().unwrap()).unwrap();
        std::fs::write(&runtime, b"elf").unwrap();
        prune(r, None, false, true).unwrap();
        assert!(!r.join("runtimes/0.1.0-aa").exists());
        assert!(r.join("runtimes").is_dir());
    }
}
