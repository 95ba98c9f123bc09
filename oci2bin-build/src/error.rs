//! The one error type of the build side.
//!
//! A build script's error ends up in cargo's output, often far from the command the user
//! typed, so every variant names the blob, file or reference involved and, where there is one,
//! what to do about it.

use oci2bin_rt::oci::{Digest, DigestError, MediaTypeError, ReferenceError};
use std::path::PathBuf;

/// Everything that can stop a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "creating", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document of the image does not parse.
    #[error("{what} is not valid JSON for its type: {source}")]
    Json {
        /// Which document (with its digest or path).
        what: String,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// An image edit (`--env`, `--add-file`, `--strip`, `--squash`, ...) failed.
    #[error(transparent)]
    Edit(#[from] crate::edit::EditError),
    /// A digest in the image is malformed (refused before any path is built from it).
    #[error("{what}: {source}")]
    BadDigest {
        /// Where the digest was found.
        what: String,
        /// Why it is refused.
        #[source]
        source: DigestError,
    },
    /// A blob's content does not match its digest or size.
    #[error("{what} does not match its descriptor: expected {expected}, got {actual}; the image is corrupt or was tampered with")]
    Mismatch {
        /// The blob, e.g. "layer sha256:... of oci:DIR".
        what: String,
        /// Expected digest or size.
        expected: String,
        /// What the content hashes or measures to.
        actual: String,
    },
    /// A blob named by the image is not in the source.
    #[error("blob {digest} is missing from {source_desc} (looked for {})", path.display())]
    MissingBlob {
        /// The blob's digest.
        digest: Digest,
        /// The source, as the user named it.
        source_desc: String,
        /// Where it should have been.
        path: PathBuf,
    },
    /// No manifest for the wanted platform.
    #[error("{source_desc} has no image for platform {wanted}; it has: {available}. Pick another --target or pass --platform")]
    NoPlatform {
        /// The source.
        source_desc: String,
        /// The platform wanted.
        wanted: String,
        /// The platforms present, comma-separated.
        available: String,
    },
    /// No manifest with the wanted tag.
    #[error("{source_desc} has no image tagged {tag:?}; tags present: {available}")]
    NoTag {
        /// The source.
        source_desc: String,
        /// The tag asked for.
        tag: String,
        /// The tags present.
        available: String,
    },
    /// The image source string is not understood.
    #[error("cannot use image source {input:?}: {reason}")]
    BadSource {
        /// What was given.
        input: String,
        /// Why it is refused, and what is accepted.
        reason: String,
    },
    /// A registry image (or part of one) is needed but not in the build cache, and this build
    /// may not download it (`--offline`, or oci2bin-build without its `registry` feature).
    #[error("{reference}: not in the build cache {}: {}; {hint}", cache.display(), missing.join(", "))]
    NotCached {
        /// The image reference.
        reference: String,
        /// What is missing ("the tag record of ...", "layer sha256:... (12 MB)").
        missing: Vec<String>,
        /// The build cache directory.
        cache: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// A registry answered 401/403: the credentials are missing or were refused.
    #[error("registry {registry} refused access to {reference} ({detail}); {credentials}. Log in with `docker login {registry}` or `podman login {registry}`, or pass --username with --password-stdin; if the repository does not exist or is private, check the name")]
    RegistryAuth {
        /// The registry host, as in the reference.
        registry: String,
        /// The image reference.
        reference: String,
        /// The registry's answer.
        detail: String,
        /// Which credentials were sent, or every place that was searched for them.
        credentials: String,
    },
    /// The registry does not have the repository, tag or manifest.
    #[error("registry {registry} has no {reference} ({detail}); check the repository name and tag (`skopeo list-tags docker://{registry}/REPOSITORY` lists the tags)")]
    RegistryNotFound {
        /// The registry host.
        registry: String,
        /// The image reference.
        reference: String,
        /// The registry's answer.
        detail: String,
    },
    /// The registry could not be reached at all (name not found, connection refused, TLS):
    /// reported after the first attempt, as retrying would only delay the same answer.
    #[error("cannot reach registry {registry} (for {reference}): {detail}; check the registry name, the network and the proxy settings")]
    RegistryUnreachable {
        /// The registry host.
        registry: String,
        /// The image reference.
        reference: String,
        /// The innermost cause, e.g. "failed to lookup address information: Name or service not known".
        detail: String,
    },
    /// A registry request failed for another reason (after retries, when it was transient).
    #[error("{action} {reference} from registry {registry} failed: {source}")]
    Registry {
        /// What was being done ("fetching manifest sha256:... of", "downloading layer ... of").
        action: String,
        /// The registry host.
        registry: String,
        /// The image reference.
        reference: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading credentials failed (a credential helper failed or a file is unreadable).
    #[error("looking up credentials for registry {registry} with {place}: {detail}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// The file or helper program consulted.
        place: String,
        /// What went wrong and what to do.
        detail: String,
    },
    /// Exporting an image from a local docker or podman failed.
    #[error("exporting {name:?} with `{command}` failed: {detail}")]
    Export {
        /// The image name given to the tool.
        name: String,
        /// The command line run, or the tool looked for.
        command: String,
        /// Why, and what to do instead.
        detail: String,
    },
    /// The image uses something oci2bin does not support.
    #[error("{0}")]
    Unsupported(String),
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// A layer media type is unknown.
    #[error(transparent)]
    MediaType(#[from] MediaTypeError),
    /// An image reference is invalid.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A platform or target is unknown.
    #[error(transparent)]
    Platform(#[from] oci2bin_rt::oci::platform::PlatformError),
}

impl BuildError {
    /// Shorthand for [`BuildError::Io`].
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BuildError::Io {
            action,
            path,
            source,
        }
    }

    /// Shorthand for [`BuildError::Json`].
    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| BuildError::Json { what, source }
    }

    /// Shorthand for [`BuildError::BadDigest`].
    pub fn digest(what: impl Into<String>) -> impl FnOnce(DigestError) -> Self {
        let what = what.into();
        move |source| BuildError::BadDigest { what, source }
    }

    /// Like [`BuildError::json`] for an index or manifest whose text is `bytes`: the OCI types
    /// refuse a malformed descriptor digest while deserializing, with a message that does not
    /// say it is a digest, so a document that fails to parse is searched for one and that is
    /// reported as [`BuildError::BadDigest`].
    pub fn json_doc<'a>(
        what: impl Into<String>,
        bytes: &'a [u8],
    ) -> impl FnOnce(serde_json::Error) -> Self + 'a {
        let what = what.into();
        move |source| match serde_json::from_slice(bytes)
            .ok()
            .and_then(|v| first_bad_digest(&v))
        {
            Some(bad) => BuildError::BadDigest {
                what: format!("a descriptor digest in {what}"),
                source: bad,
            },
            None => BuildError::Json { what, source },
        }
    }
}

/// The first `"digest"` string in a JSON document that is not a valid digest.
fn first_bad_digest(v: &serde_json::Value) -> Option<DigestError> {
    match v {
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("digest", serde_json::Value::String(s)) => Digest::parse(s).err(),
            _ => first_bad_digest(v),
        }),
        serde_json::Value::Array(a) => a.iter().find_map(first_bad_digest),
        _ => None,
    }
}

/// Result alias for the build side.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_descriptor_digests_are_named_as_digests() {
        let doc = br#"{"layers": [{"digest": "sha256:../../etc/passwd", "size": 1}]}"#;
        let parse_err = serde_json::from_slice::<u32>(doc).unwrap_err();
        let err = BuildError::json_doc("manifest M", doc)(parse_err).to_string();
        assert!(
            err.contains("invalid digest")
                && err.contains("../../etc/passwd")
                && err.contains("manifest M"),
            "{err}"
        );
        let ok = br#"{"layers": [{"digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#;
        let parse_err = serde_json::from_slice::<u32>(ok).unwrap_err();
        assert!(matches!(
            BuildError::json_doc("manifest M", ok)(parse_err),
            BuildError::Json { .. }
        ));
    }
}
