//! The build-script entry point: from an image source to a linked payload.

use crate::cache::BuildCache;
use crate::compress::CompressSpec;
use crate::edit::{EditReport, ImageEdits};
use crate::error::{BuildError, Result};
use crate::payload::{plan, PayloadPlan};
use crate::prepare::{prepare_layer, PreparedLayer};
use crate::source::registry::{Credentials, DownloadEvent, RegistryOptions};
use crate::source::{daemon_save, ImageSource, ResolvedImage};
use oci2bin_rt::oci::Platform;
use std::path::{Path, PathBuf};

/// Progress events, for a caller that shows progress (the cargo subcommand does).
#[derive(Debug)]
pub enum Event<'a> {
    /// Image resolved: how many layers and bytes will be read.
    Resolved {
        /// The image.
        image: &'a ResolvedImage,
        /// Sum of the layer blob sizes.
        total_bytes: u64,
    },
    /// A layer is being verified and recompressed.
    LayerStart {
        /// Index from 0.
        index: usize,
        /// Its size as stored.
        size: u64,
    },
    /// Bytes of the current layer consumed.
    Bytes(u64),
    /// A blob is being downloaded from a registry (before [`Event::Resolved`]; several at a
    /// time, so each event names its blob).
    Download(DownloadEvent<'a>),
    /// The layer is done.
    LayerDone {
        /// Index from 0.
        index: usize,
        /// The result.
        layer: &'a PreparedLayer,
    },
    /// The edits (see [`Builder::edits`]) are about to run; they read every layer once or
    /// twice when stripping or squashing.
    EditStart {
        /// The edits.
        edits: &'a ImageEdits,
    },
    /// The edits were applied (sent only when there were some).
    Edited {
        /// What they did.
        report: &'a EditReport,
    },
}

/// What was embedded.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The image that was selected.
    pub image: ResolvedImage,
    /// The layers as embedded.
    pub layers: Vec<PreparedLayer>,
    /// Size of the payload tar.
    pub payload_len: u64,
    /// The object file (for [`Builder::embed`]) or tar (for [`Builder::write_payload`]).
    pub output: PathBuf,
}

/// Configures and runs an embedding.
///
/// In a build script (see `examples/banner` in the repository):
///
/// ```no_run
/// // build.rs
/// fn main() {
///     oci2bin_build::Builder::new("oci:images/busybox:latest")
///         .unwrap()
///         .embed()
///         .unwrap_or_else(|e| panic!("{e}"));
/// }
/// ```
///
/// and in `main.rs`, `oci2bin_rt::main!();`.
#[derive(Clone, Debug)]
pub struct Builder {
    source: ImageSource,
    platform: Option<Platform>,
    compress: CompressSpec,
    cache_dir: Option<PathBuf>,
    registry: RegistryOptions,
    edits: ImageEdits,
}

impl Builder {
    /// Starts from an image source string (`oci:DIR[:TAG]`, `docker-archive:FILE`, a registry
    /// reference such as `nginx` or `host:5000/i@sha256:...`, `docker-daemon:NAME`,
    /// `podman:NAME`).
    pub fn new(source: &str) -> Result<Self> {
        Ok(Builder {
            source: ImageSource::parse(source)?,
            platform: None,
            compress: CompressSpec::default(),
            cache_dir: None,
            registry: RegistryOptions::default(),
            edits: ImageEdits::default(),
        })
    }

    /// Reads the image settings from the environment, for a build script that leaves the
    /// choice to whoever runs cargo: `OCI2BIN_IMAGE` (required), `OCI2BIN_COMPRESS`,
    /// `OCI2BIN_PLATFORM`, `OCI2BIN_CACHE_DIR` (see [`BuildCache::default_dir`]); prints the
    /// matching `cargo:rerun-if-env-changed` lines.
    pub fn from_env() -> Result<Self> {
        for var in [
            "OCI2BIN_IMAGE",
            "OCI2BIN_COMPRESS",
            "OCI2BIN_PLATFORM",
            "OCI2BIN_CACHE_DIR",
        ] {
            println!("cargo:rerun-if-env-changed={var}");
        }
        let image = std::env::var("OCI2BIN_IMAGE").map_err(|_| {
            BuildError::Config(
                "OCI2BIN_IMAGE is not set: set it to the image to embed, e.g. OCI2BIN_IMAGE=oci:DIR:TAG".into(),
            )
        })?;
        let mut b = Builder::new(&image)?;
        if let Ok(c) = std::env::var("OCI2BIN_COMPRESS") {
            b = b.compression(CompressSpec::parse(&c)?);
        }
        if let Ok(p) = std::env::var("OCI2BIN_PLATFORM") {
            if !p.is_empty() {
                b = b.platform(Platform::parse(&p)?);
            }
        }
        Ok(b)
    }

    /// Overrides the platform (default: from the cargo target).
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// Sets the layer compression (default `zstd:3`).
    pub fn compression(mut self, spec: CompressSpec) -> Self {
        self.compress = spec;
        self
    }

    /// Edits the image before it is embedded: config changes, a layer of added files,
    /// stripping, squashing (see [`crate::edit`]). The edited image gets its own config
    /// digest and layers, so it never shares the runtime's image cache with the unedited one.
    pub fn edits(mut self, edits: ImageEdits) -> Self {
        self.edits = edits;
        self
    }

    /// Uses this build cache directory instead of the default.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Builds from the build cache only: a registry image that is not fully cached fails with
    /// a list of what is missing instead of being downloaded.
    pub fn offline(mut self, offline: bool) -> Self {
        self.registry.offline = offline;
        self
    }

    /// Talks plain HTTP to this registry (`HOST:PORT`), as docker's `insecure-registries`.
    /// Loopback registries (`localhost`, `127.0.0.1`, `[::1]`) always are.
    pub fn insecure_registry(mut self, registry: impl Into<String>) -> Self {
        self.registry.insecure.push(registry.into());
        self
    }

    /// Uses these credentials for the registry instead of those stored by `docker login` or
    /// `podman login`.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.registry.credentials = Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// How many blobs download at once (default 3).
    pub fn parallel_downloads(mut self, n: usize) -> Self {
        self.registry.parallel = n;
        self
    }

    fn open_cache(&self) -> Result<BuildCache> {
        BuildCache::open(match &self.cache_dir {
            Some(d) => d.clone(),
            None => BuildCache::default_dir()?,
        })
    }

    /// The source string that makes a later build (a build script, perhaps without the
    /// `registry` feature) find exactly `image` in the build cache: a registry image pinned by the
    /// digest it resolved to (`host/repo:tag@sha256:...`, index digest when there was an
    /// index), a daemon image as the archive it was exported to, other sources unchanged.
    pub fn pinned_source(&self, image: &ResolvedImage) -> Result<String> {
        Ok(match &self.source {
            ImageSource::Registry(r) => {
                let mut pinned = r.clone();
                pinned.digest = image
                    .index_digest
                    .clone()
                    .or_else(|| image.manifest_digest.clone());
                ImageSource::Registry(pinned).to_string()
            }
            ImageSource::Daemon { tool, name } => ImageSource::DockerArchive {
                file: daemon_save::export_path(&self.open_cache()?, *tool, name),
                reference: None,
            }
            .to_string(),
            other => other.to_string(),
        })
    }

    fn platform_for(&self, target: Option<&str>) -> Result<Platform> {
        match (&self.platform, target) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(t)) => Ok(Platform::for_target(t)?),
            (None, None) => Err(BuildError::Config(
                "no platform: pass a cargo target or a platform".into(),
            )),
        }
    }

    /// Resolves the image for `target`: pulls a registry image into the build cache (or finds
    /// it there), exports a daemon image, reads a local one. Blobs are verified against their
    /// digests; layers are not yet checked against their diff_ids or recompressed (see
    /// [`Builder::prepare`]). `cargo oci2bin pull` is this alone.
    pub fn resolve(
        &self,
        target: &str,
        on_download: &mut dyn FnMut(DownloadEvent<'_>),
    ) -> Result<ResolvedImage> {
        self.resolve_cached(target, &self.open_cache()?, on_download)
    }

    fn resolve_cached(
        &self,
        target: &str,
        cache: &BuildCache,
        on_download: &mut dyn FnMut(DownloadEvent<'_>),
    ) -> Result<ResolvedImage> {
        let platform = self.platform_for(Some(target))?;
        self.source
            .resolve_in(&platform, cache, &self.registry, on_download)
    }

    /// Resolves, verifies and recompresses the image for `target` without writing a payload.
    /// `cargo oci2bin` calls this with a progress callback, then writes the payload itself
    /// (see [`crate::payload::plan`]).
    pub fn prepare(
        &self,
        target: &str,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<(ResolvedImage, Vec<PreparedLayer>)> {
        let cache = self.open_cache()?;
        let image = self.resolve_cached(target, &cache, &mut |d| on_event(Event::Download(d)))?;
        let total_bytes = image.layers.iter().map(|l| l.location.len).sum();
        on_event(Event::Resolved {
            image: &image,
            total_bytes,
        });
        let mut layers = Vec::new();
        for (index, layer) in image.layers.iter().enumerate() {
            on_event(Event::LayerStart {
                index,
                size: layer.location.len,
            });
            let what = format!(
                "layer {} ({}) of {}",
                index + 1,
                layer
                    .digest
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| format!("diff_id {}", layer.diff_id)),
                image.source_desc
            );
            let prepared = prepare_layer(layer, self.compress, &cache, &what, &mut |n| {
                on_event(Event::Bytes(n))
            })?;
            on_event(Event::LayerDone {
                index,
                layer: &prepared,
            });
            layers.push(prepared);
        }
        if self.edits.is_empty() {
            return Ok((image, layers));
        }
        on_event(Event::EditStart { edits: &self.edits });
        let (image, layers, report) =
            crate::edit::apply(image, layers, &self.edits, self.compress, &cache)?;
        on_event(Event::Edited { report: &report });
        Ok((image, layers))
    }

    fn plan_for(&self, target: &str) -> Result<(ResolvedImage, Vec<PreparedLayer>, PayloadPlan)> {
        let (image, layers) = self.prepare(target, &mut |_| {})?;
        let plan = plan(&image, &layers, self.compress)?;
        Ok((image, layers, plan))
    }

    /// Writes the payload as a plain tar file (what the binary would embed): for tests and
    /// for inspecting a payload without linking. Written beside `out` and renamed, so a
    /// failure leaves no partial tar behind.
    pub fn write_payload(&self, target: &str, out: &Path) -> Result<Embedded> {
        let (image, layers, plan) = self.plan_for(target)?;
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(BuildError::io("creating a temporary file in", dir))?;
        plan.write_to(tmp.as_file_mut())?;
        tmp.persist(out)
            .map_err(|e| BuildError::io("renaming into", out)(e.error))?;
        Ok(Embedded {
            image,
            layers,
            payload_len: plan.len(),
            output: out.to_path_buf(),
        })
    }

    /// In a build script: embeds the image into the package's binaries.
    ///
    /// Reads `TARGET`, `CARGO_CFG_TARGET_ARCH` and `OUT_DIR`, writes
    /// `OUT_DIR/oci2bin-payload.o`, and prints `cargo:rustc-link-arg-bins=` for it plus
    /// `cargo:rerun-if-changed=` for every file the image was read from.
    pub fn embed(&self) -> Result<Embedded> {
        let env = |k: &str| {
            std::env::var(k).map_err(|_| {
                BuildError::Config(format!(
                    "{k} is not set: Builder::embed must run in a build script"
                ))
            })
        };
        let target = env("TARGET")?;
        let arch = env("CARGO_CFG_TARGET_ARCH")?;
        let out_dir = PathBuf::from(env("OUT_DIR")?);
        let (image, layers, plan) = self.plan_for(&target)?;
        let object = out_dir.join("oci2bin-payload.o");
        crate::embed::write_object(&object, &arch, &plan)?;
        for input in &image.inputs {
            println!("cargo:rerun-if-changed={}", input.display());
        }
        println!("cargo:rustc-link-arg-bins={}", object.display());
        Ok(Embedded {
            image,
            layers,
            payload_len: plan.len(),
            output: object,
        })
    }
}
