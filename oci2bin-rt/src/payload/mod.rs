//! The embedded payload: one uncompressed tar that is at once a docker-archive
//! (`manifest.json`) and an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`),
//! with the blobs shared between the two views.
//!
//! `oci2bin-build` writes it ([`format`] fixes the names and order), the runtime and
//! `cargo oci2bin inspect` read it ([`reader`]). Because it is a plain tar, `docker load`,
//! `podman load`, `skopeo` and `tar` understand it without oci2bin.
//!
//! A payload reaches the runtime in one of two ways: linked into the binary as an object file
//! by a build script (`oci2bin_build::Builder::embed`, the [`crate::payload!`] macro), or
//! appended to the finished runtime by `cargo oci2bin` and found through the [`slot`]
//! ([`attached`]).

#[cfg(feature = "runtime")]
pub mod attached;
pub mod format;
pub mod reader;
pub mod slot;

pub use format::Metadata;
pub use reader::{Payload, PayloadError, PayloadLayer};
