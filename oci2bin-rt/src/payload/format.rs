//! Names, order and metadata of the payload tar.

use serde::{Deserialize, Serialize};

/// First entry: oci2bin's own metadata ([`Metadata`]). It comes first so that a reader that
/// only wants to know what a binary holds stops after one header.
pub const METADATA: &str = "oci2bin.json";
/// The OCI layout marker file.
pub const OCI_LAYOUT: &str = "oci-layout";
/// Contents of [`OCI_LAYOUT`].
pub const OCI_LAYOUT_CONTENT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";
/// The OCI index, pointing at the one manifest.
pub const INDEX: &str = "index.json";
/// The docker-archive manifest that `docker load` reads.
pub const DOCKER_MANIFEST: &str = "manifest.json";

/// oci2bin's record of where an embedded image came from and how it was packed.
///
/// Everything here is informational (shown by `--help`, `--version` and `inspect`); the
/// runtime trusts only the digests in the OCI structures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Metadata {
    /// Version of oci2bin-build that wrote the payload.
    pub oci2bin_version: String,
    /// The normalised image name (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The source as given (`oci:DIR:TAG`, `docker-archive:FILE`, a registry reference).
    pub source: String,
    /// The platform that was selected (`linux/amd64`).
    pub platform: String,
    /// How layers were recompressed (`zstd:3`).
    pub compression: String,
    /// Digest of the source's index, when the source had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_index_digest: Option<String>,
    /// Digest of the source's manifest before recompression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_manifest_digest: Option<String>,
}
