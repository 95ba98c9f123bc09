//! The output OCI image layout on disk: its directory, `oci-layout` marker and blob store.
//!
//! Blobs are written to a temporary file inside `blobs/sha256/` and renamed to their digest
//! only once complete, so an interrupted pack never leaves a blob whose name lies about its
//! bytes. Everything is created world-readable (0644 files, 0755 directories, subject to the
//! umask) because layouts packed as root are read by unprivileged users building or running
//! images.

use super::error::PackError;
use oci2bin_rt::oci::{Digest, Sha256Writer};
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Contents of the `oci-layout` marker file.
const LAYOUT_MARKER: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// A blob as referenced by a descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBlob {
    /// Its digest (and file name).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// An OCI layout directory that blobs can be added to.
pub(crate) struct LayoutDir {
    root: PathBuf,
}

impl LayoutDir {
    /// Opens the layout at `root`, creating it (and its marker and blob directory) when it
    /// does not exist or is an empty directory. A non-empty directory without an `oci-layout`
    /// file is refused rather than written into.
    pub(crate) fn open_or_create(root: &Path) -> Result<Self, PackError> {
        let marker = root.join("oci-layout");
        match fs::symlink_metadata(root) {
            Ok(md) if !md.is_dir() => {
                return Err(PackError::BadLayout {
                    path: root.to_path_buf(),
                    reason: "it exists and is not a directory".into(),
                })
            }
            Ok(_) => {
                if marker.exists() {
                    check_marker(&marker)?;
                } else if fs::read_dir(root)
                    .map_err(PackError::write(root))?
                    .next()
                    .is_some()
                {
                    return Err(PackError::BadLayout {
                        path: root.to_path_buf(),
                        reason: "the directory is not empty and has no oci-layout file".into(),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PackError::write(root)(e)),
        }
        let blobs = root.join("blobs/sha256");
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&blobs)
            .map_err(PackError::write(&blobs))?;
        let layout = LayoutDir {
            root: root.to_path_buf(),
        };
        if !marker.exists() {
            layout.replace_file("oci-layout", LAYOUT_MARKER.as_bytes())?;
        }
        Ok(layout)
    }

    /// The layout's root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// A new readable temporary file in the blob directory, for streaming a blob into before
    /// its digest is known.
    pub(crate) fn temp_blob(&self) -> Result<NamedTempFile, PackError> {
        let dir = self.blob_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".pack-")
            .tempfile_in(&dir)
            .map_err(PackError::write(&dir))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(PackError::write(tmp.path()))?;
        Ok(tmp)
    }

    /// Flushes `tmp` to disk and renames it to the blob file for `digest`.
    pub(crate) fn commit_blob(&self, tmp: NamedTempFile, digest: &Digest) -> Result<(), PackError> {
        tmp.as_file()
            .sync_all()
            .map_err(PackError::write(tmp.path()))?;
        let dest = self.root.join(digest.blob_path());
        tmp.persist(&dest)
            .map_err(|e| PackError::write(&dest)(e.error))?;
        Ok(())
    }

    /// Stores `bytes` as a blob and returns its descriptor data.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<StoredBlob, PackError> {
        let tmp = self.temp_blob()?;
        let mut writer = Sha256Writer::new(tmp.as_file());
        writer
            .write_all(bytes)
            .map_err(PackError::write(tmp.path()))?;
        let (digest, size, _) = writer.finish();
        self.commit_blob(tmp, &digest)?;
        Ok(StoredBlob { digest, size })
    }

    /// The bytes of blob `digest`, or `None` when it is absent or unreadable (callers use this
    /// for best-effort inspection of existing entries).
    pub(crate) fn read_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        fs::read(self.root.join(digest.blob_path())).ok()
    }

    /// Atomically replaces the top-level file `name` with `bytes`.
    pub(crate) fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<(), PackError> {
        let dest = self.root.join(name);
        let mut tmp = tempfile::Builder::new()
            .prefix(".pack-")
            .tempfile_in(&self.root)
            .map_err(PackError::write(&self.root))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .and_then(|()| tmp.write_all(bytes))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(PackError::write(&dest))?;
        tmp.persist(&dest)
            .map_err(|e| PackError::write(&dest)(e.error))?;
        Ok(())
    }
}

/// Refuses a marker file that is not a JSON object with a string `imageLayoutVersion`.
fn check_marker(marker: &Path) -> Result<(), PackError> {
    let bad = |reason: String| PackError::BadLayout {
        path: marker.to_path_buf(),
        reason,
    };
    let file = File::open(marker).map_err(PackError::write(marker))?;
    let value: serde_json::Value =
        serde_json::from_reader(io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    match value.get("imageLayoutVersion") {
        Some(serde_json::Value::String(_)) => Ok(()),
        _ => Err(bad("it has no imageLayoutVersion".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_a_layout_and_stores_blobs_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/layout");
        let layout = LayoutDir::open_or_create(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("oci-layout")).unwrap(),
            LAYOUT_MARKER
        );
        let blob = layout.put_blob(b"hello").unwrap();
        assert_eq!(blob.digest, Digest::of(b"hello"));
        assert_eq!(blob.size, 5);
        let path = root.join(blob.digest.blob_path());
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(layout.read_blob(&blob.digest).unwrap(), b"hello");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [blob.digest.hex()]);
        // Reopening an existing layout works and keeps its blobs.
        LayoutDir::open_or_create(&root).unwrap();
        assert!(path.exists());
    }

    #[test]
    fn refuses_directories_that_are_not_layouts() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious"), "x").unwrap();
        let err = LayoutDir::open_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("no oci-layout file"), "{err}");
        assert!(!dir.path().join("blobs").exists());

        let file = dir.path().join("precious");
        let err = LayoutDir::open_or_create(&file).err().unwrap();
        assert!(err.to_string().contains("not a directory"), "{err}");

        let bad = dir.path().join("bad");
        fs::create_dir(&bad).unwrap();
        fs::write(bad.join("oci-layout"), "{}").unwrap();
        let err = LayoutDir::open_or_create(&bad).err().unwrap();
        assert!(err.to_string().contains("imageLayoutVersion"), "{err}");
    }

    #[test]
    fn empty_directory_becomes_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        LayoutDir::open_or_create(dir.path()).unwrap();
        assert!(dir.path().join("oci-layout").is_file());
        assert!(dir.path().join("blobs/sha256").is_dir());
    }
}
