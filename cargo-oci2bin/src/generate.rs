//! Instantiating `template/` into the runtime crate that `cargo oci2bin` builds.
//!
//! There is one generated crate per bundle and decoder, at a fixed path, whatever image is
//! built: the image is attached to the finished binary afterwards (see `crate::attach`), so
//! once a runtime is built, cargo finds it fresh for every later image. A fixed path also keeps
//! builds reproducible (paths end up in panic messages).

use anyhow::{Context, Result};
use oci2bin_rt::oci::Compression;
use std::path::{Path, PathBuf};

fn work_dir(cache: &Path) -> PathBuf {
    cache.join("work").join(crate::bundle::id())
}

/// The name of the generated package and of its binary for `codec`.
pub fn package_name(codec: Compression) -> String {
    format!("oci2bin-runtime-{}", codec.name())
}

/// Takes the lock that serialises builds of the generated crates and reading their output.
pub fn lock(cache: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = cache.join("work");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(".oci2bin.lock");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", path.display()))
}

/// Writes the crate under `cache/work/<bundle id>/<codec>` (only files whose content changed,
/// so cargo's fingerprints stay valid), returning its manifest path. Only the decoder for
/// `codec` is compiled into the runtime.
pub fn generate(cache: &Path, sources: &Path, codec: Compression) -> Result<PathBuf> {
    let dir = work_dir(cache).join(codec.name());
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let rt_codec = match codec {
        Compression::None => String::new(),
        c => format!("{:?}", c.name()),
    };
    let manifest = std::str::from_utf8(
        crate::bundle::file("template/Cargo.toml").context("bundle lacks template/Cargo.toml")?,
    )?
    .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
    .replace("oci2bin-runtime-@CODEC@", &package_name(codec))
    .replace(
        "@RT_PATH@",
        &sources.join("oci2bin-rt").display().to_string(),
    )
    .replace(
        ", @RT_CODEC@",
        &if rt_codec.is_empty() {
            String::new()
        } else {
            format!(", {rt_codec}")
        },
    );
    write_if_changed(&dir.join("Cargo.toml"), manifest.as_bytes())?;
    std::fs::create_dir_all(dir.join(".cargo"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let main = "template/src/main.rs";
    let bytes = crate::bundle::file(main).with_context(|| format!("bundle lacks {main}"))?;
    write_if_changed(&dir.join("src/main.rs"), bytes)?;
    let config = "template/.cargo/config.toml";
    let config = std::str::from_utf8(
        crate::bundle::file(config).with_context(|| format!("bundle lacks {config}"))?,
    )?
    .replace("@REMAP@", &remap_flags(sources, &dir));
    write_if_changed(&dir.join(".cargo/config.toml"), config.as_bytes())?;
    // Start from the workspace's lock file so the runtime builds with the exact versions it
    // was tested with; cargo keeps it up to date from there.
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        if let Some(bytes) = crate::bundle::file("Cargo.lock") {
            std::fs::write(&lock, bytes).with_context(|| format!("writing {}", lock.display()))?;
        }
    }
    Ok(dir.join("Cargo.toml"))
}

/// The `--remap-path-prefix` flags (as TOML strings) that cut the build machine's
/// directories from file names compiled into the runtime: the bundled sources, the crate
/// itself, and cargo's registry sources (`$CARGO_HOME/registry/src/<index>/`).
fn remap_flags(sources: &Path, crate_dir: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let mut prefixes = vec![sources.to_path_buf(), crate_dir.to_path_buf()];
    if let Some(home) = cargo_home {
        let registry = home.join("registry").join("src");
        // One directory per index (`index.crates.io-<hash>`): remap each to nothing. rustc
        // applies the last matching flag, so the indexes come after the registry.
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(&registry)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        indexes.sort();
        prefixes.push(registry);
        prefixes.extend(indexes);
    }
    prefixes
        .iter()
        .map(|p| toml_string(&format!("--remap-path-prefix={}/=", p.display())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
