//! The OCI model shared by the build side, `inspect` and the runtime.
//!
//! Manifests, indexes and configs are `oci-spec` types; this module adds what oci-spec leaves
//! to its users: strict digests that are safe to turn into file names ([`digest`]), the
//! compression implied by a layer media type ([`media`]), platform matching for a cargo target
//! ([`platform`]) and docker-style image references ([`reference`]).

pub mod digest;
pub mod media;
pub mod platform;
pub mod reference;

pub use digest::{Digest, DigestError, Sha256Reader, Sha256Writer};
pub use media::{Compression, MediaTypeError};
pub use platform::Platform;
pub use reference::{Reference, ReferenceError};

/// Re-export of the oci-spec image types, so users of the model need not depend on oci-spec.
pub use oci_spec::image as spec;
