//! oci2bin-build: embed an OCI/Docker image into a Rust binary from its build script.
//!
//! The build side of oci2bin. It reads an image from an OCI layout, a docker-archive, a
//! registry (pulled with the `registry` feature; from the cache alone without it) or a local
//! docker/podman daemon,
//! picks the manifest for the cargo target's platform (not the build host's), verifies every
//! blob against its digest and size and every layer against its diff_id while streaming,
//! recompresses the layers into a cache keyed by (input digest, codec, level), and writes the
//! payload (a tar that is both a docker-archive and an OCI layout) into an object file that is
//! linked into the binary, where `oci2bin-rt` finds it.
//!
//! `cargo oci2bin` uses the same steps but, instead of linking the payload, appends it to a
//! runtime built once per target ([`payload::PayloadPlan::write_to`]), which makes a new
//! image cost a file copy rather than a relink.
//!
//! ```no_run
//! // build.rs of a crate whose main.rs is `oci2bin_rt::main!();`
//! fn main() {
//!     if let Err(e) = oci2bin_build::Builder::from_env().and_then(|b| b.embed()) {
//!         panic!("oci2bin: {e}");
//!     }
//! }
//! ```
#![deny(missing_docs)]
// The examples are build scripts, whose `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

pub mod builder;
pub mod cache;
pub mod compress;
pub mod edit;
pub mod embed;
pub mod error;
pub mod pack;
pub mod payload;
pub mod prepare;
pub mod source;

pub use builder::{Builder, Embedded, Event};
pub use compress::CompressSpec;
pub use edit::{EditReport, ImageEdits};
pub use error::{BuildError, Result};
pub use source::ImageSource;
