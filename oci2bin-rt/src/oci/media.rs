//! Media types and the layer compression they imply.
//!
//! Registries and archives use both the OCI and the Docker v2 spellings; the runtime only
//! needs to know how to decompress a layer, and the build side how to label one it wrote.

use std::fmt;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (the docker default; the only one docker 20.10 loads).
    Gzip,
    /// zstd (fast to decode; oci2bin's default).
    Zstd,
    /// xz (smallest, slowest to decode).
    Xz,
}

/// A layer media type this model does not know how to unpack.
#[derive(Debug, thiserror::Error)]
#[error("unsupported layer media type {0:?} (supported: OCI and Docker tar layers, uncompressed or gzip/zstd/xz)")]
pub struct MediaTypeError(pub String);

impl Compression {
    /// The compression implied by a layer media type (OCI or Docker spelling, including the
    /// non-distributable variants).
    ///
    /// ```
    /// use oci2bin_rt::oci::Compression;
    /// assert_eq!(Compression::from_layer_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(), Compression::Zstd);
    /// assert_eq!(Compression::from_layer_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(), Compression::Gzip);
    /// ```
    pub fn from_layer_media_type(mt: &str) -> Result<Self, MediaTypeError> {
        let known_prefix = mt.starts_with("application/vnd.oci.image.layer.")
            || mt.starts_with("application/vnd.docker.image.rootfs.");
        if !known_prefix {
            return Err(MediaTypeError(mt.to_string()));
        }
        Ok(if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
            Compression::Gzip
        } else if mt.ends_with("+zstd") {
            Compression::Zstd
        } else if mt.ends_with("+xz") {
            Compression::Xz
        } else if mt.ends_with(".tar") {
            Compression::None
        } else {
            return Err(MediaTypeError(mt.to_string()));
        })
    }

    /// The OCI media type for a layer compressed this way.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Xz => "application/vnd.oci.image.layer.v1.tar+xz",
        }
    }

    /// Guesses the compression of a blob from its first bytes (docker-archive layers carry no
    /// media type).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// Lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
