//! The one error type of layer application.
//!
//! Every variant names the layer entry it is about, as the path the image gives it
//! (`/usr/bin/env`), so a failed unpack can be traced to the entry that caused it.

use std::io;
use std::path::PathBuf;

/// Why a layer could not be applied.
///
/// A failed layer leaves the root half-applied; the caller is expected to throw the whole
/// unpack directory away (see [`super::remove_tree`]) rather than use it.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry would reach outside the root or destroy the root itself. Such a layer is
    /// malformed or hostile, and nothing of it should be used.
    #[error(
        "refusing layer entry {}: {reason}; the layer is malformed or hostile, do not use this image",
        path.display()
    )]
    Unsafe {
        /// The entry's name as stored in the tar (lossless bytes).
        path: PathBuf,
        /// What makes it unsafe.
        reason: String,
    },
    /// A file system operation on an entry failed.
    #[error("layer entry {}: {op} failed: {source}{}", path.display(), io_hint(source))]
    Io {
        /// The operation, e.g. "create directory".
        op: &'static str,
        /// The entry's path inside the image.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A hardlink entry whose target cannot be linked, usually because the target does not
    /// exist in the layers applied so far.
    #[error(
        "layer entry {}: hardlink to {} failed: {source} (the target must be a file earlier in this or a lower layer)",
        path.display(),
        target.display()
    )]
    Link {
        /// The hardlink's path inside the image.
        path: PathBuf,
        /// The target path inside the image.
        target: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An entry type that has no meaning in an image layer (GNU volume labels, multi-volume
    /// continuations, unknown type bytes).
    #[error("layer entry {}: unsupported tar entry type {kind:?}", path.display())]
    Unsupported {
        /// The entry's path inside the image.
        path: PathBuf,
        /// The raw type flag byte.
        kind: char,
    },
    /// The stream is not a valid tar (or ends early). `near` is the entry being read or the
    /// last one read successfully, to locate the damage.
    #[error(
        "reading the layer tar failed {}: {source} (is the layer still compressed, or truncated?)",
        match near { Some(p) => format!("near entry {}", p.display()), None => "at its first entry".to_string() }
    )]
    Tar {
        /// The entry being read or the last one read successfully, if any.
        near: Option<PathBuf>,
        /// The underlying parse or read error.
        #[source]
        source: io::Error,
    },
}

/// What the user can do about a failed file system operation, by its cause.
fn io_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => " (free some disk space and retry)",
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
            " (check that the unpack directory is writable by you)"
        }
        Some(libc::ENOTDIR | libc::ELOOP | libc::EEXIST) => {
            " (the layer does not fit the layers below it: a parent is not a directory or is a symlink loop)"
        }
        _ => "",
    }
}

impl LayerError {
    /// Shorthand for [`LayerError::Io`] from a nix errno.
    pub(crate) fn io(
        op: &'static str,
        path: &std::path::Path,
        source: impl Into<io::Error>,
    ) -> Self {
        LayerError::Io {
            op,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    /// Shorthand for [`LayerError::Unsafe`].
    pub(crate) fn unsafe_entry(path: &std::path::Path, reason: impl Into<String>) -> Self {
        LayerError::Unsafe {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
