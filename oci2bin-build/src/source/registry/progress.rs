//! What a pull reports while it downloads, so a caller can draw a bar per blob.
//!
//! Layers download a few at a time, so every event names its blob by digest; a caller keeps
//! one bar per digest.

use oci2bin_rt::oci::Digest;

/// One step of a blob download from a registry.
#[derive(Debug, Clone, Copy)]
pub enum DownloadEvent<'a> {
    /// The blob starts downloading.
    Start {
        /// Its digest.
        digest: &'a Digest,
        /// What it is ("config", "layer 2/5").
        what: &'a str,
        /// Its size from the manifest.
        size: u64,
    },
    /// More bytes arrived.
    Bytes {
        /// The blob.
        digest: &'a Digest,
        /// How many (since the last event for this blob).
        bytes: u64,
    },
    /// The transfer failed with a transient error and is being retried.
    Retry {
        /// The blob.
        digest: &'a Digest,
        /// Attempt number of the retry (2 for the first retry).
        attempt: u32,
        /// Bytes kept: the retry asks for the rest with a Range request. Zero when the
        /// download starts over.
        resume_from: u64,
        /// The error that caused the retry.
        error: &'a str,
    },
    /// The blob is verified and stored.
    Done {
        /// The blob.
        digest: &'a Digest,
        /// Its size.
        size: u64,
    },
}
