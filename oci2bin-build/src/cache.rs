//! The build-side blob cache: verified, recompressed layers keyed by what they came from.
//!
//! Recompressing a large image takes seconds to minutes; keying the result by (input digest,
//! codec, level) makes every rebuild of the same image free. Entries are written to a temporary
//! file in the cache and renamed into place, so an interrupted build never leaves a partial
//! blob under a real digest.

use crate::error::{BuildError, Result};
use oci2bin_rt::oci::Digest;
use std::path::{Path, PathBuf};

/// The cache directory.
#[derive(Clone, Debug)]
pub struct BuildCache {
    root: PathBuf,
}

impl BuildCache {
    /// The default location: `$OCI2BIN_BUILD_CACHE`, else `$XDG_CACHE_HOME/oci2bin/build`,
    /// else `~/.cache/oci2bin/build`.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(d) = std::env::var_os("OCI2BIN_BUILD_CACHE").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(d).join("oci2bin/build"));
        }
        if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(h).join(".cache/oci2bin/build"));
        }
        Err(BuildError::Config(
            "no cache directory: set OCI2BIN_BUILD_CACHE, XDG_CACHE_HOME or HOME".into(),
        ))
    }

    /// Opens (creating) a cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "recompressed", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(BuildError::io("creating", &p))?;
        }
        Ok(BuildCache { root })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob with this digest lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    /// Where temporary files go (same file system as the blobs, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The record of a recompression of input `key` with codec-and-level `spec`.
    pub fn record_path(&self, key: &str, spec: &str) -> PathBuf {
        self.root
            .join("recompressed")
            .join(spec.replace(':', "-"))
            .join(format!("{key}.json"))
    }

    /// Atomically writes a small file.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(BuildError::io("creating", dir))?;
        let tmp = tempfile::NamedTempFile::new_in(self.tmp_dir()).map_err(BuildError::io(
            "creating a temporary file in",
            self.tmp_dir(),
        ))?;
        std::fs::write(tmp.path(), bytes).map_err(BuildError::io("writing", tmp.path()))?;
        tmp.persist(path)
            .map_err(|e| BuildError::io("renaming into", path)(e.error))?;
        Ok(())
    }
}
