//! `./app --cache` and `./app --prune [--volumes]`: where the cache is and how large, and
//! removing what this binary's image left there, with nothing but the binary itself.
//!
//! `--prune` removes the image's unpacked root (the next run unpacks it again); with
//! `--volumes` also the kept containers (`--name` without `--rm`) made from this image.
//! Named volumes are never removed by it. Nothing is removed while any container runs from
//! this cache, because a running container's root is mounted from the unpacked image.
//! Leftovers of killed runs of any image are removed by every run (see [`super::runs`]).

use crate::cache::trust::{caller_uid, open_dir_at, open_root};
use crate::cache::CacheError;
use crate::layer::remove::{list_dir, remove_all_at};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes on disk below `path` (allocated blocks, symlinks not followed), 0 if missing.
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

/// `12.3 MB` (integer arithmetic: float formatting would add 10 KB to the runtime).
fn show_size(bytes: u64) -> String {
    let tenths = (bytes + 50_000) / 100_000;
    format!("{}.{} MB", tenths / 10, tenths % 10)
}

/// The `--cache` text: the cache root and the size of each part, this image's first.
pub fn describe(root: &Path, image_hex: &str) -> String {
    let mut out = format!(
        "cache: {} (set OCI2BIN_CACHE_DIR to move it)\n  this image:  {}  images/{image_hex}\n",
        root.display(),
        show_size(disk_usage(&root.join("images").join(image_hex)))
    );
    for (part, what) in [
        ("images", "unpacked images (--prune removes this one's)"),
        ("runs", "writable layers of running containers"),
        ("containers", "kept containers (--name without --rm)"),
        ("volumes", "named volumes (-v NAME:/path; never pruned)"),
    ] {
        out.push_str(&format!(
            "  {part:<11}  {}  {what}\n",
            show_size(disk_usage(&root.join(part)))
        ));
    }
    out
}

/// How many of the locks `*.lock` in `dir` someone holds: runs and kept containers that
/// are running.
fn held_locks(dir: BorrowedFd<'_>) -> usize {
    let names = list_dir(dir).unwrap_or_default();
    names
        .iter()
        .filter_map(|n| n.to_str().filter(|n| n.ends_with(".lock")))
        .filter(|name| is_held(dir, name))
        .count()
}

/// Whether someone holds the lock file `name` in `dir` (a missing one is free).
fn is_held(dir: BorrowedFd<'_>, name: &str) -> bool {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, name, flags, Mode::empty())
        .is_ok_and(|fd| Flock::lock(File::from(fd), FlockArg::LockSharedNonblock).is_err())
}

/// Removes the kept container `name` in `containers` (at `base`), saying so in `out`.
/// Files of container users (subordinate ids) can only be removed inside the user
/// namespace: what is left becomes a dead run in `runs`, which the next run removes.
fn remove_kept(
    containers: BorrowedFd<'_>,
    runs: Option<&std::os::fd::OwnedFd>,
    base: &Path,
    name: &std::ffi::OsStr,
    out: &mut String,
) -> Result<(), CacheError> {
    let path = base.join(name);
    let io = |e: nix::errno::Errno| CacheError::Io {
        action: "removing",
        path: path.clone(),
        source: e.into(),
    };
    let size = disk_usage(&path);
    match remove_all_at(containers, name) {
        Ok(()) => out.push_str(&format!(
            "removed the kept container {} ({})\n",
            path.display(),
            show_size(size)
        )),
        Err(_) => {
            let runs = runs.ok_or_else(|| io(nix::errno::Errno::ENOENT))?;
            let dead = format!("pruned-{}", name.to_string_lossy());
            nix::fcntl::renameat(containers, name, runs.as_fd(), dead.as_str()).map_err(io)?;
            let lock = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let _ = nix::fcntl::openat(
                runs.as_fd(),
                format!("{dead}.lock").as_str(),
                lock,
                Mode::from_bits_truncate(0o600),
            );
            out.push_str(&format!(
                "removed the kept container {} (files of container users: freed by the next run)\n",
                path.display()
            ));
        }
    }
    let _ = nix::unistd::unlinkat(
        containers,
        format!("{}.lock", name.to_string_lossy()).as_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    Ok(())
}

/// `--rm-container NAME`: removes the kept container `name` (its writable layer), refused
/// while it runs; returns what was done.
pub fn remove_container(root: &Path, name: &str) -> Result<String, CacheError> {
    let uid = caller_uid();
    let root_fd = open_root(root, uid)?;
    let dir = |n: &str| open_dir_at(root_fd.as_fd(), root, n.as_ref(), false, uid);
    let (runs, containers) = (dir("runs")?, dir("containers")?);
    let mut out = String::new();
    if let Some(containers) = containers.filter(|_| root.join("containers").join(name).is_dir()) {
        if is_held(containers.as_fd(), &format!("{name}.lock")) {
            return Err(CacheError::ContainerInUse(name.to_string()));
        }
        let base = root.join("containers");
        remove_kept(
            containers.as_fd(),
            runs.as_ref(),
            &base,
            name.as_ref(),
            &mut out,
        )?;
    }
    Ok(out)
}

/// Removes this image's unpacked root and, with `volumes`, its kept containers; returns
/// what was done, for stdout.
pub fn prune(root: &Path, image_digest: &str, volumes: bool) -> Result<String, CacheError> {
    let uid = caller_uid();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: nix::errno::Errno| CacheError::Io {
            action: "removing",
            path,
            source: e.into(),
        }
    };
    let root_fd = open_root(root, uid)?;
    let dir = |name: &str| open_dir_at(root_fd.as_fd(), root, name.as_ref(), false, uid);
    let (runs, containers) = (dir("runs")?, dir("containers")?);
    let running: usize = [&runs, &containers]
        .into_iter()
        .flatten()
        .map(|d| held_locks(d.as_fd()))
        .sum();
    if running > 0 {
        return Err(CacheError::Busy(running));
    }
    let mut out = String::new();
    let hex = image_digest.trim_start_matches("sha256:");
    let path = root.join("images").join(hex);
    if let (Some(images), true) = (dir("images")?, path.exists()) {
        let size = disk_usage(&path);
        remove_all_at(images.as_fd(), hex.as_ref()).map_err(io(&path))?;
        let _ = nix::unistd::unlinkat(
            images.as_fd(),
            format!("{hex}.lock").as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        out.push_str(&format!(
            "removed {} ({})\n",
            path.display(),
            show_size(size)
        ));
    }
    if let (true, Some(containers)) = (volumes, containers) {
        let base = root.join("containers");
        for name in list_dir(containers.as_fd()).unwrap_or_default() {
            let path = base.join(&name);
            let made_from = std::fs::read_to_string(path.join("image")).unwrap_or_default();
            if made_from.trim() != image_digest {
                continue;
            }
            remove_kept(containers.as_fd(), runs.as_ref(), &base, &name, &mut out)?;
        }
    }
    if out.is_empty() {
        out.push_str("nothing to remove\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::runs::RunDir;

    #[test]
    fn prune_removes_the_image_and_with_volumes_its_kept_containers_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("images/abc/rootfs/bin")).unwrap();
        std::fs::write(root.join("images/abc/rootfs/bin/sh"), vec![1u8; 10_000]).unwrap();
        std::fs::create_dir_all(root.join("images/other/rootfs")).unwrap();
        std::fs::create_dir_all(root.join("volumes/v/_data")).unwrap();
        std::fs::write(root.join("volumes/v/_data/keep"), "x").unwrap();
        drop(RunDir::open_named(root, "mine", "sha256:abc").unwrap());
        drop(RunDir::open_named(root, "theirs", "sha256:other").unwrap());
        let text = describe(root, "abc");
        assert!(
            text.contains("this image:") && text.contains("volumes"),
            "{text}"
        );
        // A running container blocks it.
        let running = RunDir::open_named(root, "theirs", "sha256:other").unwrap();
        assert!(matches!(
            prune(root, "sha256:abc", true),
            Err(CacheError::Busy(1))
        ));
        drop(running);
        let text = prune(root, "sha256:abc", false).unwrap();
        assert!(text.contains("images/abc"), "{text}");
        assert!(!root.join("images/abc").exists());
        assert!(
            root.join("containers/mine").exists(),
            "kept without --volumes"
        );
        prune(root, "sha256:abc", true).unwrap();
        assert!(!root.join("containers/mine").exists());
        assert!(root.join("containers/theirs").exists());
        assert!(root.join("images/other").exists());
        assert_eq!(
            std::fs::read(root.join("volumes/v/_data/keep")).unwrap(),
            b"x"
        );
    }
}
