//! Reads a payload from memory: the runtime's embedded bytes or a mapped binary.
//!
//! Only tar headers and the small JSON documents are parsed; layer bytes are returned as
//! slices of the input, so nothing is copied and a warm start touches a few pages.

use super::format;
use crate::oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
use crate::oci::{Compression, Digest, DigestError, MediaTypeError};
use std::collections::HashMap;
use std::io::Cursor;

/// What is wrong with a payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not a tar.
    #[error("embedded payload is not a valid tar archive: {0}")]
    Tar(#[source] std::io::Error),
    /// A required entry is absent.
    #[error("embedded payload has no {0}: the binary is truncated or was not built by oci2bin")]
    Missing(String),
    /// A JSON document does not parse.
    #[error("embedded payload's {name} is not valid: {source}")]
    Json {
        /// Entry name.
        name: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// A digest in the payload is malformed.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A layer's media type is unknown.
    #[error(transparent)]
    MediaType(#[from] MediaTypeError),
    /// Structural inconsistency.
    #[error("embedded payload is inconsistent: {0}")]
    Inconsistent(String),
    /// A small blob does not match its digest.
    #[error("embedded {what} does not match its digest {digest}: the binary is corrupt")]
    Corrupt {
        /// Which document.
        what: &'static str,
        /// Expected digest.
        digest: Digest,
    },
}

/// One layer of the embedded image.
#[derive(Clone, Debug)]
pub struct PayloadLayer<'a> {
    /// Digest of the (compressed) blob: checked while unpacking.
    pub digest: Digest,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// How the blob is compressed.
    pub compression: Compression,
    /// The blob's media type as recorded in the manifest.
    pub media_type: String,
    /// The blob bytes.
    pub bytes: &'a [u8],
}

/// A parsed payload.
#[derive(Debug)]
pub struct Payload<'a> {
    /// oci2bin's metadata.
    pub metadata: format::Metadata,
    /// Digest of the embedded manifest.
    pub manifest_digest: Digest,
    /// The embedded manifest.
    pub manifest: ImageManifest,
    /// Digest of the config: the cache key, since it pins every layer's diff_id.
    pub config_digest: Digest,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// The layers, bottom first.
    pub layers: Vec<PayloadLayer<'a>>,
    /// Every entry: name -> (offset, size) within the payload.
    pub entries: HashMap<String, (usize, usize)>,
}

/// Lists a tar held in memory: entry name -> (data offset, size).
pub fn list_entries(bytes: &[u8]) -> Result<HashMap<String, (usize, usize)>, PayloadError> {
    let mut archive = tar::Archive::new(Cursor::new(bytes));
    let mut out = HashMap::new();
    for entry in archive.entries_with_seek().map_err(PayloadError::Tar)? {
        let entry = entry.map_err(PayloadError::Tar)?;
        let name = entry
            .path()
            .map_err(PayloadError::Tar)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let offset = entry.raw_file_position() as usize;
        let size = entry.size() as usize;
        if offset.checked_add(size).is_none_or(|end| end > bytes.len()) {
            return Err(PayloadError::Missing(format!(
                "complete data for {name} (the file is truncated)"
            )));
        }
        out.insert(name, (offset, size));
    }
    Ok(out)
}

/// Parses one JSON document of the payload (once, straight into its type: this runs on every
/// start of an output binary).
fn parse_json<T: serde::de::DeserializeOwned>(name: &str, data: &[u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(data).map_err(|source| PayloadError::Json {
        name: name.to_string(),
        source,
    })
}

impl<'a> Payload<'a> {
    /// Parses a payload.
    ///
    /// The manifest and config are checked against their digests here (they are small);
    /// layer blobs are checked by whoever decompresses them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        let entries = list_entries(bytes)?;
        let get = |name: &str| -> Result<&'a [u8], PayloadError> {
            let (off, len) = entries
                .get(name)
                .ok_or_else(|| PayloadError::Missing(name.to_string()))?;
            Ok(&bytes[*off..*off + *len])
        };
        let metadata: format::Metadata = parse_json(format::METADATA, get(format::METADATA)?)?;
        let index: ImageIndex = parse_json(format::INDEX, get(format::INDEX)?)?;
        let desc = index
            .manifests()
            .first()
            .ok_or_else(|| PayloadError::Inconsistent("index.json lists no manifest".into()))?;
        let manifest_digest = Digest::try_from(desc.digest())?;
        let manifest_bytes = get(&manifest_digest.blob_path())?;
        if Digest::of(manifest_bytes) != manifest_digest {
            return Err(PayloadError::Corrupt {
                what: "manifest",
                digest: manifest_digest,
            });
        }
        let manifest: ImageManifest = parse_json(&manifest_digest.blob_path(), manifest_bytes)?;
        let config_digest = Digest::try_from(manifest.config().digest())?;
        let config_bytes = get(&config_digest.blob_path())?;
        if Digest::of(config_bytes) != config_digest {
            return Err(PayloadError::Corrupt {
                what: "config",
                digest: config_digest,
            });
        }
        let config: ImageConfiguration = parse_json(&config_digest.blob_path(), config_bytes)?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(PayloadError::Inconsistent(format!(
                "manifest has {} layers but config has {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let digest = Digest::try_from(desc.digest())?;
            let blob = get(&digest.blob_path())?;
            if blob.len() as u64 != desc.size() {
                return Err(PayloadError::Inconsistent(format!(
                    "layer {digest} is {} bytes, manifest says {}",
                    blob.len(),
                    desc.size()
                )));
            }
            let media_type = desc.media_type().to_string();
            layers.push(PayloadLayer {
                compression: Compression::from_layer_media_type(&media_type)?,
                digest,
                diff_id: Digest::parse(diff_id)?,
                media_type,
                bytes: blob,
            });
        }
        Ok(Payload {
            metadata,
            manifest_digest,
            manifest,
            config_digest,
            config,
            layers,
            entries,
        })
    }
}
