//! Why packing a root filesystem into an OCI layout failed.
//!
//! Each variant names the path involved and what the user can do about it, because `pack` is
//! driven from the command line and its errors are read by people, not matched by programs.

use std::io;
use std::path::PathBuf;

/// An error from [`pack`](super::pack).
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The root filesystem to pack is missing or not a directory.
    #[error("root filesystem {path} is not a directory: pass the directory that holds the image's files")]
    RootfsNotDirectory {
        /// The path given as the root filesystem.
        path: PathBuf,
    },

    /// The output layout would be inside the directory being packed, so the pack would read
    /// its own half-written blobs.
    #[error("output {output} is inside the root filesystem {rootfs}: choose an output directory outside it")]
    OutputInsideRootfs {
        /// The output layout directory.
        output: PathBuf,
        /// The root filesystem.
        rootfs: PathBuf,
    },

    /// The tag cannot be used as an image reference tag.
    #[error("invalid tag {tag:?}: a tag is 1-128 characters of [A-Za-z0-9_.-] and must not start with '.' or '-'")]
    InvalidTag {
        /// The refused tag.
        tag: String,
    },

    /// An `--entrypoint`/`--cmd` value that is neither a word nor a JSON array of strings.
    #[error("invalid command {value:?}: {reason}; give one word or a JSON array of strings such as '[\"redis-server\", \"--port\", \"6379\"]'")]
    InvalidExecForm {
        /// The refused value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An `--arch` value with no known OCI platform.
    #[error("unknown architecture {arch:?}: use amd64, arm64 (or x86_64, aarch64) or a platform such as linux/arm/v7")]
    InvalidArch {
        /// The refused value.
        arch: String,
    },

    /// A file of the root filesystem could not be read or listed.
    #[error("cannot read {path} while packing the root filesystem: {source} (pack as a user that can read every file, e.g. root)")]
    ReadRootfs {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Writing an entry of the layer (reading the file or writing the compressed stream) failed.
    #[error("cannot add {path} to the layer: {source} (check that the file is not being modified and that the output disk has space)")]
    LayerEntry {
        /// The file whose entry failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Writing into the output layout failed.
    #[error("cannot write {path} in the OCI layout: {source} (check permissions and free space of the output directory)")]
    WriteLayout {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The output exists but is not an OCI layout that can be extended.
    #[error("{path} is not a usable OCI image layout: {reason}; remove it or choose another output directory")]
    BadLayout {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The image JSON documents could not be built (an option value oci-spec refuses).
    #[error("cannot build the image {document}: {source}")]
    Spec {
        /// Which document: config, manifest or index descriptor.
        document: &'static str,
        /// The underlying error.
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl PackError {
    /// Wraps an I/O error that happened while writing `path` in the layout.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> PackError {
        let path = path.into();
        move |source| PackError::WriteLayout { path, source }
    }

    /// Wraps an I/O error that happened while reading `path` of the root filesystem.
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> PackError {
        let path = path.into();
        move |source| PackError::ReadRootfs { path, source }
    }
}
