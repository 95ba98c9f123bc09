//! Applying image layers onto a root directory, with Docker's semantics and without ever
//! reaching outside that root.
//!
//! Every path in a layer is untrusted. All file system work is done relative to a directory
//! file descriptor of the root ([`resolve`]), so `..`, absolute paths, symlinked parents and
//! hardlinks cannot name a host file.

pub mod resolve;
