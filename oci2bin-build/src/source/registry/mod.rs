//! Registry images: `nginx`, `ghcr.io/o/i:tag`, `host:5000/i@sha256:...`, `docker://...`.
//!
//! A pull fills the build cache (see [`store`]): manifests and configs by digest, layers
//! streamed to disk and verified as they arrive, and a record of what each tag resolved to.
//! The image is then resolved from the cache like any local source, so the layers go through
//! the same diff_id verification and recompression as layers from a layout.
//!
//! The network side (oci-client and tokio) is behind the `registry` feature. Without it (a
//! build script that wants no network code), a registry source resolves from the cache alone:
//! `cargo oci2bin pull` fills the cache first and prints the reference pinned by digest.

pub mod cache_only;
pub mod progress;
pub mod resolve;
pub mod store;

#[cfg(feature = "registry")]
pub mod blob_fetch;
#[cfg(feature = "registry")]
pub mod client;
#[cfg(feature = "registry")]
pub mod credentials;
#[cfg(feature = "registry")]
pub mod pull;

use crate::cache::BuildCache;
use crate::error::Result;
use crate::source::ResolvedImage;
use oci2bin_rt::oci::{Platform, Reference};
pub use progress::DownloadEvent;

/// How many blobs download at once by default: enough to hide per-request latency, few
/// enough not to compete for one link's bandwidth.
pub const DEFAULT_PARALLEL: usize = 3;

/// A user name and password (or token) given for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Builders and errors end up in build logs: never print the password.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How to talk to registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Use only what is in the build cache; fail, naming what is missing, otherwise.
    pub offline: bool,
    /// Registries (`HOST:PORT`, or `HOST`) to reach over plain HTTP. `localhost`, `127.0.0.0/8`
    /// and `[::1]` always are, as docker does.
    pub insecure: Vec<String>,
    /// Credentials to use instead of looking them up in docker's and podman's files.
    pub credentials: Option<Credentials>,
    /// How many blobs to download at once (0: [`DEFAULT_PARALLEL`]).
    pub parallel: usize,
}

/// Resolves `reference` for `platform`, pulling what the cache lacks (with the `registry`
/// feature and not `offline`) or from the cache alone. `on_event` hears about downloads.
pub fn resolve(
    reference: &Reference,
    platform: &Platform,
    options: &RegistryOptions,
    cache: &BuildCache,
    source_desc: &str,
    on_event: &mut dyn FnMut(DownloadEvent<'_>),
) -> Result<ResolvedImage> {
    let store = store::Store::new(cache);
    #[cfg(feature = "registry")]
    if !options.offline {
        let mut pull = pull::Pull::new(store, reference, options, on_event);
        return resolve::resolve(reference, platform, &store, &mut pull, source_desc);
    }
    #[cfg(not(feature = "registry"))]
    let _ = on_event;
    let why = if options.offline {
        cache_only::Why::Offline
    } else {
        cache_only::Why::NoRegistryFeature
    };
    let mut fetch = cache_only::CacheOnly::new(store, reference, why);
    resolve::resolve(reference, platform, &store, &mut fetch, source_desc)
}
