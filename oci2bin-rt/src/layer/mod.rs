//! Applying image layers onto a root directory, with Docker's semantics and without ever
//! reaching outside that root.
//!
//! Every path in a layer is untrusted. All file system work is done relative to a directory
//! file descriptor of the root ([`resolve`]), so `..`, absolute paths, symlinked parents and
//! hardlinks cannot name a host file. [`apply_layer`] applies one uncompressed layer tar;
//! [`remove_tree`] removes what an unprivileged unpack left behind.

mod apply;
mod entry_name;
mod error;
mod meta;
pub(crate) mod remove;
pub mod resolve;
mod whiteout;

#[cfg(test)]
mod tests;

pub use apply::{apply_layer, ApplyOptions, ApplyReport};
pub use error::LayerError;
pub use remove::remove_tree;
pub use resolve::ResolveMode;
