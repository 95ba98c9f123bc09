//! From a registry reference to a [`ResolvedImage`]: tag, index, manifest, config, layers.
//!
//! The walk is the same whether the bytes come from the network or only from the build cache:
//! a [`Fetch`] makes sure each document or blob is in the [`Store`] (downloading it, or
//! reporting it missing), and everything is then read and verified from the store. So an online
//! pull, an `--offline` build and the build script of the generated crate all select the same
//! manifest and produce the same image.

use super::store::Store;
use crate::error::{BuildError, Result};
use crate::source::select::select;
use crate::source::{check_config, verify_small, BlobLocation, ResolvedImage, SourceLayer};
use oci2bin_rt::oci::spec::{ImageIndex, ImageManifest};
use oci2bin_rt::oci::{media, Compression, Digest, Platform, Reference};
use serde::Deserialize;

/// A blob the image needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size from the manifest.
    pub size: u64,
    /// What it is, for progress and errors ("config", "layer 2/5").
    pub what: String,
}

/// Gets documents and blobs into the store, from a registry or not at all.
pub trait Fetch {
    /// The digest the tag of `reference` points to.
    fn resolve_tag(&mut self, reference: &Reference) -> Result<Digest>;
    /// Makes sure the manifest or index `digest` is in the store.
    fn manifest(&mut self, digest: &Digest, what: &str) -> Result<()>;
    /// Makes sure all of `blobs` are in the store.
    fn blobs(&mut self, blobs: &[WantedBlob]) -> Result<()>;
}

/// The document kinds a manifest endpoint returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An OCI index or a Docker manifest list.
    Index,
    /// An OCI or Docker v2 schema 2 image manifest.
    Manifest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
}

/// Tells an index from a manifest by its `mediaType`, or by its shape when the field is
/// absent (it is optional in OCI documents).
pub fn kind_of(bytes: &[u8], what: &str) -> Result<Kind> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(BuildError::json(what))?;
    if probe.schema_version == Some(1) {
        return Err(BuildError::Unsupported(format!(
            "{what} is a Docker v2 schema 1 manifest, which is deprecated and not supported; \
             push the image again with a current docker, podman or skopeo"
        )));
    }
    match probe.media_type.as_deref() {
        Some(media::OCI_INDEX | media::DOCKER_MANIFEST_LIST) => Ok(Kind::Index),
        Some(media::OCI_MANIFEST | media::DOCKER_MANIFEST) => Ok(Kind::Manifest),
        Some(other) => Err(BuildError::Unsupported(format!(
            "{what} has media type {other:?}, which is not an image manifest or index"
        ))),
        None if probe.manifests.is_some() => Ok(Kind::Index),
        None if probe.layers.is_some() => Ok(Kind::Manifest),
        None => Err(BuildError::Unsupported(format!(
            "{what} is neither an image manifest nor an index"
        ))),
    }
}

fn read(store: &Store<'_>, digest: &Digest, size: Option<u64>, what: &str) -> Result<Vec<u8>> {
    // The Fetch put it there; if it is gone (another process cleaned the cache), say so.
    store
        .read_small(digest, size)?
        .ok_or_else(|| BuildError::MissingBlob {
            digest: digest.clone(),
            source_desc: what.into(),
            path: store.blob_path(digest),
        })
}

/// Resolves `reference` for `platform` through `fetch`.
pub fn resolve(
    reference: &Reference,
    platform: &Platform,
    store: &Store<'_>,
    fetch: &mut dyn Fetch,
    source_desc: &str,
) -> Result<ResolvedImage> {
    let top = match &reference.digest {
        Some(d) => d.clone(),
        None => fetch.resolve_tag(reference)?,
    };
    let top_what = format!("manifest {top} of {source_desc}");
    fetch.manifest(&top, &top_what)?;
    let top_bytes = read(store, &top, None, &top_what)?;
    let (index_digest, manifest_digest, manifest_size) = match kind_of(&top_bytes, &top_what)? {
        Kind::Manifest => (None, top.clone(), None),
        Kind::Index => {
            let index: ImageIndex = serde_json::from_slice(&top_bytes).map_err(
                BuildError::json_doc(format!("index {top} of {source_desc}"), &top_bytes),
            )?;
            let mut load = |_: &oci2bin_rt::oci::spec::Descriptor, d: &Digest| {
                let what = format!("index {d} of {source_desc}");
                fetch.manifest(d, &what)?;
                read(store, d, None, &what)
            };
            let selected = select(&index, None, platform, source_desc, &mut load)?;
            let size = selected.descriptor.size();
            (Some(top.clone()), selected.digest, Some(size))
        }
    };
    let what = format!("manifest {manifest_digest} of {source_desc}");
    let manifest_bytes = if index_digest.is_none() {
        // The top document is the manifest: already read, verified and classified.
        top_bytes
    } else {
        fetch.manifest(&manifest_digest, &what)?;
        let bytes = read(store, &manifest_digest, None, &what)?;
        verify_small(&bytes, &manifest_digest, manifest_size, &what)?;
        if kind_of(&bytes, &what)? != Kind::Manifest {
            return Err(BuildError::Unsupported(format!(
                "{what} is an index where the index entry promised an image manifest"
            )));
        }
        bytes
    };
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(BuildError::json_doc(what.clone(), &manifest_bytes))?;

    let config_digest = Digest::try_from(manifest.config().digest())
        .map_err(BuildError::digest(format!("config digest in {what}")))?;
    fetch.blobs(&[WantedBlob {
        digest: config_digest.clone(),
        size: manifest.config().size(),
        what: "config".into(),
    }])?;
    let config_what = format!("config {config_digest} of {source_desc}");
    let config_bytes = read(
        store,
        &config_digest,
        Some(manifest.config().size()),
        &config_what,
    )?;
    let (config, found_platform, diff_ids) = check_config(
        &config_bytes,
        &config_digest,
        platform,
        source_desc,
        manifest.layers().len(),
        &what,
    )?;

    let count = manifest.layers().len();
    let mut wanted = Vec::new();
    let mut compressions = Vec::new();
    for (i, desc) in manifest.layers().iter().enumerate() {
        let digest = Digest::try_from(desc.digest())
            .map_err(BuildError::digest(format!("layer digest in {what}")))?;
        compressions.push(Compression::from_layer_media_type(
            desc.media_type().as_ref(),
        )?);
        wanted.push(WantedBlob {
            digest,
            size: desc.size(),
            what: format!("layer {}/{count}", i + 1),
        });
    }
    fetch.blobs(&wanted)?;

    let mut layers = Vec::new();
    let mut inputs = vec![
        store.blob_path(&top),
        store.blob_path(&manifest_digest),
        store.blob_path(&config_digest),
    ];
    for ((want, diff_id), compression) in wanted.into_iter().zip(diff_ids).zip(compressions) {
        let path = store.blob_path(&want.digest);
        let location = BlobLocation::file(&path)?;
        if location.len != want.size {
            return Err(BuildError::Mismatch {
                what: format!("cached {} {} of {source_desc}", want.what, want.digest),
                expected: format!("{} bytes", want.size),
                actual: format!("{} bytes in {}", location.len, path.display()),
            });
        }
        inputs.push(path);
        layers.push(SourceLayer {
            digest: Some(want.digest),
            size: Some(want.size),
            diff_id,
            compression: Some(compression),
            location,
        });
    }
    inputs.dedup();
    // The digests are recorded separately; the name keeps its tag (for RepoTags) and only
    // carries a digest when it was given without a tag.
    let mut name = reference.clone();
    if name.tag.is_some() {
        name.digest = None;
    }
    Ok(ResolvedImage {
        source_desc: source_desc.into(),
        recorded_source: String::new(),
        reference: name,
        platform: found_platform,
        index_digest,
        manifest_digest: Some(manifest_digest),
        config_bytes,
        config_digest,
        config,
        layers,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::cache_only::{CacheOnly, Why};
    use super::*;
    use crate::cache::BuildCache;
    use serde_json::json;

    /// Stores a JSON document; returns its descriptor fields (digest, size).
    fn put(store: &Store<'_>, value: serde_json::Value) -> (Digest, usize) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let d = Digest::of(&bytes);
        store.put_small(&d, &bytes, "test").unwrap();
        (d, bytes.len())
    }

    /// A cached two-platform index whose arm64 manifest was never pulled.
    fn cached_index(store: &Store<'_>) -> (Digest, Digest, Digest) {
        let layer = b"not really a tar, never decoded here".to_vec();
        let layer_digest = Digest::of(&layer);
        store.put_small(&layer_digest, &layer, "layer").unwrap();
        let (cd, cn) = put(
            store,
            json!({"architecture": "amd64", "os": "linux",
                   "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"tar").to_string()]}}),
        );
        let (md, mn) = put(
            store,
            json!({"schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST,
                   "config": {"mediaType": media::DOCKER_CONFIG, "digest": cd.to_string(), "size": cn},
                   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                               "digest": layer_digest.to_string(), "size": layer.len()}]}),
        );
        let arm = Digest::of(b"arm64 manifest, not cached");
        let (id, _) = put(
            store,
            json!({"schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST_LIST, "manifests": [
                {"mediaType": media::DOCKER_MANIFEST, "digest": md.to_string(), "size": mn,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": media::DOCKER_MANIFEST, "digest": arm.to_string(), "size": 10,
                 "platform": {"architecture": "arm64", "os": "linux"}}]}),
        );
        (id, md, layer_digest)
    }

    #[test]
    fn resolves_from_the_cache_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path()).unwrap();
        let store = Store::new(&cache);
        let (index, manifest, layer) = cached_index(&store);
        let tagged = Reference::parse("example.com/app:1").unwrap();
        store.write_tag(&tagged, &index).unwrap();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let run = |r: &Reference, p: &Platform| {
            let mut f = CacheOnly::new(store, r, Why::NoRegistryFeature);
            resolve(r, p, &store, &mut f, &r.to_string())
        };

        let img = run(&tagged, &amd64).unwrap();
        assert_eq!(img.index_digest.as_ref(), Some(&index));
        assert_eq!(img.manifest_digest.as_ref(), Some(&manifest));
        assert_eq!(img.reference.to_string(), "example.com/app:1");
        assert_eq!(img.layers[0].location.path, store.blob_path(&layer));
        assert_eq!(img.layers[0].compression, Some(Compression::Gzip));

        // Pinned by digest (as `cargo oci2bin pull` prints it): no tag record used.
        let mut pinned = Reference::parse("example.com/other:2").unwrap();
        pinned.digest = Some(index.clone());
        let img = run(&pinned, &amd64).unwrap();
        assert_eq!(img.manifest_digest.as_ref(), Some(&manifest));
        assert_eq!(img.reference.to_string(), "example.com/other:2");

        let e = run(&tagged, &Platform::parse("linux/arm64").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not in the build cache") && e.contains("sha256:"),
            "{e}"
        );
        assert!(e.contains("registry` feature"), "{e}");

        std::fs::remove_file(store.blob_path(&layer)).unwrap();
        let e = run(&tagged, &amd64).unwrap_err().to_string();
        assert!(e.contains(&format!("layer 1/1 {layer}")), "{e}");
    }

    #[test]
    fn tells_indexes_from_manifests() {
        let k = |s: &str| kind_of(s.as_bytes(), "doc");
        assert_eq!(
            k(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#).unwrap(),
            Kind::Index
        );
        assert_eq!(
            k(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}"#).unwrap(),
            Kind::Manifest
        );
        assert_eq!(
            k(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            Kind::Index
        );
        assert_eq!(
            k(r#"{"schemaVersion":2,"layers":[]}"#).unwrap(),
            Kind::Manifest
        );
        let e = k(r#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        assert!(
            k(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.config.v1+json"}"#)
                .is_err()
        );
        assert!(k("[]").is_err());
    }
}
