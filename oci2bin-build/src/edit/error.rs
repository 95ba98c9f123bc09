//! Why an image edit failed.
//!
//! Edits come from the command line (`cargo oci2bin --env ... --add-file ...`) or a build
//! script, so each variant names the flag or file involved and what to change.

use crate::pack::PackError;
use std::io;
use std::path::PathBuf;

/// An error from parsing or applying [`ImageEdits`](super::ImageEdits).
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// A `KEY=VALUE` option (`--env`, `--label`) without `=` or with an empty key.
    #[error("{flag} {value:?} is not KEY=VALUE: write it as {flag} NAME=VALUE (the value may be empty, the name may not)")]
    KeyValue {
        /// The option, e.g. `--env`.
        flag: &'static str,
        /// The refused value.
        value: String,
    },
    /// An `--expose` value that is not `PORT[/tcp|udp|sctp]`.
    #[error("--expose {value:?} is not PORT[/PROTO]: give a port 1-65535 and optionally /tcp, /udp or /sctp, e.g. --expose 8080/tcp")]
    Port {
        /// The refused value.
        value: String,
    },
    /// A path inside the image that is not absolute or contains `.`/`..` components.
    #[error("{flag} {value:?}: {reason}")]
    ContainerPath {
        /// The option, e.g. `--workdir` or `--add-file`.
        flag: &'static str,
        /// The refused value.
        value: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// An `--add-file`/`--add-dir` value that does not split into its parts.
    #[error("{flag} {value:?} is not {syntax}: {reason}")]
    AddSyntax {
        /// The option.
        flag: &'static str,
        /// The refused value.
        value: String,
        /// The expected syntax.
        syntax: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A host file or directory to add is missing or of the wrong kind.
    #[error("{flag}: {}: {reason}", path.display())]
    AddSource {
        /// The option.
        flag: &'static str,
        /// The host path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Two added paths cannot both exist: a file where another addition needs a directory.
    #[error("added paths conflict: {path} is added as a file but {child} needs it to be a directory; change one of the --add-file/--add-dir destinations")]
    AddConflict {
        /// The path added as a non-directory.
        path: String,
        /// The path below it.
        child: String,
    },
    /// A `--strip-path` pattern that is not a valid glob, or not anchored.
    #[error("--strip-path {pattern:?}: {reason}")]
    Glob {
        /// The refused pattern.
        pattern: String,
        /// Why (globset's message, or that it must start with / or **).
        reason: String,
    },
    /// The image config is not a JSON object of the expected shape.
    #[error("the image config {what}; it cannot be edited (is the image valid? `skopeo inspect --config` shows it)")]
    Config {
        /// What is wrong.
        what: String,
    },
    /// Reading a layer of the image, or writing an edited one, failed.
    #[error("{action} {what}: {source} (check free space in the build cache; if it persists, delete the cache's build/ directory and retry)")]
    Layer {
        /// What was being done ("reading", "writing the squashed layer into", ...).
        action: &'static str,
        /// The layer or file.
        what: String,
        /// The I/O or tar error.
        #[source]
        source: io::Error,
    },
    /// A cached layer no longer hashes to its diff_id.
    #[error("{what} does not match its diff_id: expected {expected}, got {actual}; delete the build cache (cargo oci2bin cache prune --all) and retry")]
    Corrupt {
        /// The layer.
        what: String,
        /// The diff_id it should have.
        expected: String,
        /// What it hashed to.
        actual: String,
    },
    /// Writing the layer of added files failed (reading a host file, writing the tar).
    #[error(transparent)]
    Pack(#[from] PackError),
}

impl EditError {
    /// Wraps an I/O error of `action` on `what`.
    pub(crate) fn layer(
        action: &'static str,
        what: impl Into<String>,
    ) -> impl FnOnce(io::Error) -> EditError {
        let what = what.into();
        move |source| EditError::Layer {
            action,
            what,
            source,
        }
    }
}
