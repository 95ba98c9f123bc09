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
    for (from, to) in [
        ("template/src/main.rs", "src/main.rs"),
        ("template/.cargo/config.toml", ".cargo/config.toml"),
    ] {
        let bytes = crate::bundle::file(from).with_context(|| format!("bundle lacks {from}"))?;
        write_if_changed(&dir.join(to), bytes)?;
    }
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

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
