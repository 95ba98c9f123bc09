//! The build-side blob cache: verified, recompressed layers keyed by what they came from.
//!
//! Recompressing a large image takes seconds to minutes; keying the result by (input digest,
//! codec, level) makes every rebuild of the same image free. Entries are written to a temporary
//! file in the cache and renamed into place, so an interrupted build never leaves a partial
//! blob under a real digest.

use crate::error::{BuildError, Result};
use oci2bin_rt::oci::Digest;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod tmp;
pub use tmp::remove_live_temporaries;

/// What a cached file looked like right after its content was verified: inode, size and
/// change time.
///
/// Writing a payload checks each blob against its stamp instead of hashing it again, which
/// makes embedding cost what copying costs. Any write to the file, or replacing it, changes
/// its ctime (which, unlike the mtime, cannot be set back), so a file that no longer matches
/// its stamp is hashed in full as before.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stamp {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub len: u64,
    /// Change time, seconds.
    pub ctime: i64,
    /// Change time, nanoseconds.
    pub ctime_nsec: i64,
}

impl Stamp {
    /// The stamp of `path` now.
    pub fn of(path: &Path) -> std::io::Result<Stamp> {
        std::fs::metadata(path).map(|m| Stamp::from_metadata(&m))
    }

    /// The stamp of a file with metadata `m`.
    pub fn from_metadata(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            len: m.len(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        }
    }
}

/// The cache directory.
#[derive(Clone, Debug)]
pub struct BuildCache {
    root: PathBuf,
    /// This build's temporary directory under `tmp/` (see [`tmp`]).
    session: Arc<tmp::TmpSession>,
}

impl BuildCache {
    /// The default location: `build/` under the oci2bin cache root shared by every oci2bin
    /// tool on the machine, `$OCI2BIN_CACHE_DIR`, else `$XDG_CACHE_HOME/oci2bin`, else
    /// `~/.cache/oci2bin` (the runtime keeps its unpacked images under the same root).
    ///
    /// The names of earlier versions (`OCI2BIN_BUILD_CACHE`, `OCI2BIN_HOME`) are refused
    /// with the new name rather than silently ignored.
    pub fn default_dir() -> Result<PathBuf> {
        check_renamed_variables()?;
        oci2bin_rt::location::cache_root()
            .map(|root| root.join("build"))
            .ok_or_else(|| {
                BuildError::Config(
                    "no cache directory: set OCI2BIN_CACHE_DIR, XDG_CACHE_HOME or HOME".into(),
                )
            })
    }

    /// Opens (creating) a cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "recompressed", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(BuildError::io("creating", &p))?;
        }
        let tmp = root.join("tmp");
        let session = tmp::TmpSession::create(&tmp)
            .map_err(BuildError::io("creating a temporary directory in", &tmp))?;
        Ok(BuildCache {
            root,
            session: Arc::new(session),
        })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob with this digest lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    /// Where this build's temporary files go: its own directory under `tmp/`, on the same
    /// file system as the blobs (renames are atomic), removed when the last clone of this
    /// cache is dropped, or by a later build if this one is killed.
    pub fn tmp_dir(&self) -> PathBuf {
        self.session.dir().to_path_buf()
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
        write_atomic(&self.tmp_dir(), path, bytes)
    }
}

/// Fails when a cache variable of an earlier version is set: `OCI2BIN_CACHE_DIR` replaced
/// `OCI2BIN_HOME` (the same root) and `OCI2BIN_BUILD_CACHE` (its `build/` subdirectory).
pub fn check_renamed_variables() -> Result<()> {
    for (old, new) in [
        ("OCI2BIN_HOME", "OCI2BIN_CACHE_DIR=DIR"),
        (
            "OCI2BIN_BUILD_CACHE",
            "OCI2BIN_CACHE_DIR=DIR (the build cache is its build/ subdirectory)",
        ),
    ] {
        if std::env::var_os(old).is_some_and(|v| !v.is_empty()) {
            return Err(BuildError::Config(format!(
                "{old} is no longer read: set {new} instead, and unset {old}"
            )));
        }
    }
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file in `tmp_dir` (on the same file system)
/// renamed into place, so `dest` is never seen half-written.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .map_err(BuildError::io("creating a temporary file in", tmp_dir))?;
    tmp.write_all(bytes)
        .map_err(BuildError::io("writing", tmp.path()))?;
    tmp.persist(dest)
        .map_err(|e| BuildError::io("renaming into", dest)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod stamp_tests {
    use super::Stamp;

    #[test]
    fn any_write_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, b"verified").unwrap();
        let before = Stamp::of(&p).unwrap();
        assert_eq!(Stamp::of(&p).unwrap(), before);
        // Same size, same mtime put back: the ctime still moves.
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, b"tampered").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_ne!(Stamp::of(&p).unwrap(), before);
    }
}
