//! Resolving a registry image from the build cache alone.
//!
//! Used for `--offline`, and always by a build of oci2bin-build without the `registry` feature
//! (the generated crate's build script, which runs after `cargo oci2bin` pulled the image).
//! Nothing is downloaded: anything missing is reported by name, all layers at once, with what
//! to run to get it.

use super::resolve::{Fetch, WantedBlob};
use super::store::Store;
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::{Digest, Reference};

/// Why the cache is all there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The user asked for `--offline`.
    Offline,
    /// oci2bin-build was built without its `registry` feature.
    NoRegistryFeature,
}

/// A [`Fetch`] that only checks the store.
pub struct CacheOnly<'a> {
    store: Store<'a>,
    reference: &'a Reference,
    why: Why,
}

impl<'a> CacheOnly<'a> {
    /// Checks `store` for the parts of `reference`.
    pub fn new(store: Store<'a>, reference: &'a Reference, why: Why) -> Self {
        CacheOnly {
            store,
            reference,
            why,
        }
    }

    fn missing(&self, missing: Vec<String>) -> BuildError {
        let hint = match self.why {
            Why::Offline => format!(
                "--offline allows no downloads: run the same command once without --offline to pull {}",
                self.reference
            ),
            Why::NoRegistryFeature => format!(
                "this oci2bin-build was built without its `registry` feature and cannot download: \
                 pull the image into this cache first with `cargo oci2bin pull {r}` (or a \
                 `cargo oci2bin --image {r}` build) using the same OCI2BIN_CACHE_DIR, or enable \
                 the `registry` feature of oci2bin-build",
                r = self.reference
            ),
        };
        BuildError::NotCached {
            reference: self.reference.to_string(),
            missing,
            cache: self.store.root().to_path_buf(),
            hint,
        }
    }
}

impl Fetch for CacheOnly<'_> {
    fn resolve_tag(&mut self, reference: &Reference) -> Result<Digest> {
        self.store.read_tag(reference).ok_or_else(|| {
            self.missing(vec![format!(
                "no record of what tag {:?} resolves to (pin the image by digest, NAME@sha256:..., or pull it once)",
                reference.tag.as_deref().unwrap_or("latest")
            )])
        })
    }

    fn manifest(&mut self, digest: &Digest, what: &str) -> Result<()> {
        if self.store.has_blob(digest, None) {
            Ok(())
        } else {
            Err(self.missing(vec![what.to_string()]))
        }
    }

    fn blobs(&mut self, blobs: &[WantedBlob]) -> Result<()> {
        let missing: Vec<String> = blobs
            .iter()
            .filter(|b| !self.store.has_blob(&b.digest, Some(b.size)))
            .map(|b| format!("{} {} ({:.1} MB)", b.what, b.digest, b.size as f64 / 1e6))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.missing(missing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::BuildCache;

    #[test]
    fn names_everything_missing_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path()).unwrap();
        let store = Store::new(&cache);
        let r = Reference::parse("127.0.0.1:5000/busybox:1").unwrap();
        let mut f = CacheOnly::new(store, &r, Why::Offline);
        let e = f.resolve_tag(&r).unwrap_err().to_string();
        assert!(
            e.contains("tag \"1\"") && e.contains("without --offline"),
            "{e}"
        );

        let present = Digest::of(b"present");
        store.put_small(&present, b"present", "test").unwrap();
        let absent = Digest::of(b"absent");
        let want = |d: &Digest, size, what: &str| WantedBlob {
            digest: d.clone(),
            size,
            what: what.into(),
        };
        f.blobs(&[want(&present, 7, "layer 1/1")]).unwrap();
        let e = f
            .blobs(&[
                want(&present, 7, "layer 1/3"),
                want(&absent, 6, "layer 2/3"),
                // Present but with the wrong size: as good as missing.
                want(&present, 8, "layer 3/3"),
            ])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("layer 2/3 {absent}")), "{e}");
        assert!(e.contains("layer 3/3") && !e.contains("layer 1/3"), "{e}");

        let mut f = CacheOnly::new(store, &r, Why::NoRegistryFeature);
        let e = f.manifest(&absent, "manifest X").unwrap_err().to_string();
        assert!(
            e.contains("manifest X") && e.contains("cargo oci2bin --image"),
            "{e}"
        );
    }
}
