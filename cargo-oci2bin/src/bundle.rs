//! The oci2bin sources bundled into this binary, and unpacking them where cargo can build them.
//!
//! Unpacked once per bundle hash into `<cache>/src/<version>-<hash>/`, written to a temporary
//! directory and renamed into place so a concurrent or interrupted run never sees half a tree.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// Version and hash naming this bundle.
pub fn id() -> String {
    format!("{}-{}", env!("CARGO_PKG_VERSION"), &generated::HASH[..12])
}

/// The bundled file at `path`, if any.
pub fn file(path: &str) -> Option<&'static [u8]> {
    generated::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| *b)
}

/// The bundled files under `prefix` (`oci2bin-rt/`, `oci2bin-build/`), with their paths.
pub fn files_under(prefix: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    generated::FILES
        .iter()
        .filter(move |(p, _)| p.starts_with(prefix))
        .map(|(p, b)| (*p, *b))
}

/// Unpacks the bundle under `cache/src`, returning its directory.
pub fn unpack(cache: &Path) -> Result<PathBuf> {
    let dest = cache.join("src").join(id());
    if dest.join(".complete").exists() {
        return Ok(dest);
    }
    let parent = cache.join("src");
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    for (rel, bytes) in generated::FILES
        .iter()
        .filter(|(rel, _)| !rel.starts_with("oci2bin-build/"))
    {
        let p = tmp.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    std::fs::write(tmp.path().join(".complete"), id())?;
    let tmp = tmp.keep();
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        // Another run won the race: its copy is identical.
        Err(_) if dest.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => {
            Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
        }
    }
}
