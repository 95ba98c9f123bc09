//! Where pulled registry content lives in the build cache.
//!
//! Manifests, indexes, configs and layers are stored by digest in the same content-addressed
//! `blobs/sha256/` directory as recompressed layers, so a blob is downloaded once whatever
//! reference or build needed it, and only ever appears there after it was verified. A tag is
//! mutable, so it gets a small record (`refs/<hash>.json`: the reference and the digest it last
//! resolved to) that lets an `--offline` build find the image again.

use crate::cache::BuildCache;
use crate::error::{BuildError, Result};
use crate::source::verify_small;
use oci2bin_rt::oci::{Digest, Reference};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The registry view of a [`BuildCache`].
#[derive(Clone, Copy, Debug)]
pub struct Store<'a> {
    cache: &'a BuildCache,
}

/// What a tag record holds.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct TagRecord {
    /// `registry/repository:tag`, for people reading the cache.
    reference: String,
    /// The digest the tag resolved to.
    digest: String,
}

impl<'a> Store<'a> {
    /// Wraps a cache.
    pub fn new(cache: &'a BuildCache) -> Self {
        Store { cache }
    }

    /// The cache directory (for messages).
    pub fn root(&self) -> &Path {
        self.cache.root()
    }

    /// Where the temporary files of downloads go (same file system as the blobs).
    pub fn tmp_dir(&self) -> PathBuf {
        self.cache.tmp_dir()
    }

    /// Where the blob `digest` is (or will be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.cache.blob_path(digest)
    }

    /// Whether the blob is stored with the expected size. Blobs are only renamed into place
    /// after their digest was checked, so a present file of the right size is trusted (layers
    /// are verified again, against their diff_ids, when they are recompressed).
    pub fn has_blob(&self, digest: &Digest, size: Option<u64>) -> bool {
        match std::fs::symlink_metadata(self.blob_path(digest)) {
            Ok(m) => m.is_file() && size.is_none_or(|s| s == m.len()),
            Err(_) => false,
        }
    }

    /// Reads a stored manifest, index or config, checking its digest (and size, if known).
    /// A stored copy that fails the check is removed and reported as missing, so the next
    /// pull replaces it.
    pub fn read_small(&self, digest: &Digest, size: Option<u64>) -> Result<Option<Vec<u8>>> {
        let path = self.blob_path(digest);
        let bytes = match std::fs::metadata(&path) {
            Ok(m) if m.len() > 16 << 20 => {
                return Err(BuildError::Unsupported(format!(
                    "{} is {} bytes: too large for a manifest or config",
                    path.display(),
                    m.len()
                )))
            }
            Ok(_) => std::fs::read(&path).map_err(BuildError::io("reading", &path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BuildError::io("reading", &path)(e)),
        };
        if verify_small(&bytes, digest, size, "cached blob").is_err() {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores a small blob after checking it against `digest`.
    pub fn put_small(&self, digest: &Digest, bytes: &[u8], what: &str) -> Result<()> {
        verify_small(bytes, digest, None, what)?;
        self.cache.write_atomic(&self.blob_path(digest), bytes)
    }

    /// The record of the digest `reference`'s tag resolved to. The file name is a hash of the
    /// reference: registry names come from user input and must not become path components.
    fn tag_path(&self, reference: &Reference) -> PathBuf {
        let key = format!(
            "{}/{}:{}",
            reference.registry,
            reference.repository,
            reference.tag.as_deref().unwrap_or("latest")
        );
        self.cache
            .root()
            .join("refs")
            .join(format!("{}.json", Digest::of(key.as_bytes()).hex()))
    }

    /// The digest the tag of `reference` resolved to when it was last pulled, if recorded.
    pub fn read_tag(&self, reference: &Reference) -> Option<Digest> {
        let bytes = std::fs::read(self.tag_path(reference)).ok()?;
        let record: TagRecord = serde_json::from_slice(&bytes).ok()?;
        Digest::parse(&record.digest).ok()
    }

    /// Records what the tag of `reference` resolves to now.
    pub fn write_tag(&self, reference: &Reference, digest: &Digest) -> Result<()> {
        let record = TagRecord {
            reference: format!(
                "{}/{}:{}",
                reference.registry,
                reference.repository,
                reference.tag.as_deref().unwrap_or("latest")
            ),
            digest: digest.to_string(),
        };
        let bytes = serde_json::to_vec(&record).map_err(BuildError::json("tag record"))?;
        self.cache.write_atomic(&self.tag_path(reference), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_records_round_trip_and_stay_inside_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path()).unwrap();
        let store = Store::new(&cache);
        let r = Reference::parse("../x:1").unwrap();
        assert_eq!(store.read_tag(&r), None);
        let d = Digest::of(b"manifest");
        store.write_tag(&r, &d).unwrap();
        assert_eq!(store.read_tag(&r), Some(d.clone()));
        assert!(store.tag_path(&r).starts_with(dir.path().join("refs")));
        // Another tag of the same repository is another record.
        assert_eq!(store.read_tag(&Reference::parse("../x:2").unwrap()), None);
    }

    #[test]
    fn corrupt_small_blobs_count_as_missing_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path()).unwrap();
        let store = Store::new(&cache);
        let d = Digest::of(b"{}");
        assert_eq!(store.read_small(&d, None).unwrap(), None);
        store.put_small(&d, b"{}", "config").unwrap();
        assert_eq!(
            store.read_small(&d, Some(2)).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert!(store.has_blob(&d, Some(2)));
        assert!(!store.has_blob(&d, Some(3)));
        assert!(store.put_small(&d, b"[]", "config").is_err());
        std::fs::write(store.blob_path(&d), b"[]").unwrap();
        assert_eq!(store.read_small(&d, None).unwrap(), None);
        assert!(!store.blob_path(&d).exists());
    }
}
