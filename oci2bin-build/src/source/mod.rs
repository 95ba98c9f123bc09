//! Where images come from, named the way skopeo names transports.
//!
//! `oci:DIR[:TAG]` is an OCI image layout (skopeo, umoci, buildah, `cargo oci2bin pack`);
//! `docker-archive:FILE[:NAME:TAG]` is what `docker save` and `podman save` write;
//! `docker-daemon:NAME` and `podman:NAME` are exported that way first ([`daemon_save`]);
//! anything else is a registry reference (`nginx`, `docker://host:5000/i:t`), pulled into the
//! build cache ([`registry`]). Every source resolves to one [`ResolvedImage`]: the manifest for
//! the wanted platform, its verified config, and where each layer's bytes are, so the rest of
//! the build does not care where they came from.

pub mod daemon_save;
pub mod docker_archive;
pub mod oci_layout;
pub mod registry;
pub mod select;

use crate::cache::BuildCache;
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::spec::ImageConfiguration;
use oci2bin_rt::oci::{Compression, Digest, Platform, Reference};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// An image source as the user named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `oci:DIR[:TAG]`.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`), if given.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:NAME:TAG]`.
    DockerArchive {
        /// The tar file.
        file: PathBuf,
        /// Which of the archive's `RepoTags` to use, if given.
        reference: Option<String>,
    },
    /// A registry reference (`nginx`, `docker://host:5000/i:t`).
    Registry(Reference),
    /// `docker-daemon:NAME` or `podman:NAME`: exported with `docker save` / `podman save`.
    Daemon {
        /// Which program holds the image.
        tool: daemon_save::Tool,
        /// The image name or id, as that program takes it.
        name: String,
    },
}

impl ImageSource {
    /// Parses a source string.
    ///
    /// ```
    /// use oci2bin_build::ImageSource;
    /// let s = ImageSource::parse("oci:/images/busybox:latest").unwrap();
    /// assert_eq!(s, ImageSource::OciLayout { dir: "/images/busybox".into(), tag: Some("latest".into()) });
    /// ```
    pub fn parse(input: &str) -> Result<Self> {
        if let Some(rest) = input.strip_prefix("oci:") {
            // oci:DIR[:TAG] — the tag is after the last ':' unless that ':' is inside the path.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') && !d.is_empty() => (d, Some(t.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(BuildError::BadSource {
                    input: input.into(),
                    reason: "oci: needs a directory: oci:DIR[:TAG]".into(),
                });
            }
            return Ok(ImageSource::OciLayout {
                dir: dir.into(),
                tag,
            });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            // docker-archive:FILE[:NAME[:TAG]] — FILE may not contain ':'.
            let (file, reference) = match rest.split_once(':') {
                Some((f, r)) => (f, Some(r.to_string())),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(BuildError::BadSource {
                    input: input.into(),
                    reason: "docker-archive: needs a file: docker-archive:FILE[:NAME:TAG]".into(),
                });
            }
            return Ok(ImageSource::DockerArchive {
                file: file.into(),
                reference,
            });
        }
        for tool in [daemon_save::Tool::Docker, daemon_save::Tool::Podman] {
            if let Some(name) = input.strip_prefix(tool.transport()) {
                tool.check_name(name, input)?;
                return Ok(ImageSource::Daemon {
                    tool,
                    name: name.into(),
                });
            }
        }
        for transport in ["containers-storage:", "dir:", "oci-archive:"] {
            if input.starts_with(transport) {
                return Err(BuildError::BadSource {
                    input: input.into(),
                    reason: format!(
                        "the {transport} transport is not supported; export the image first, e.g. `skopeo copy {input} oci:DIR`, and use oci:DIR"
                    ),
                });
            }
        }
        check_not_local(input)?;
        Ok(ImageSource::Registry(Reference::parse(input)?))
    }

    /// The source as an output binary records it (`inspect` shows it; `update` would read it):
    /// registry references and daemon names as given; for an OCI layout or an archive, the
    /// transport and the file name alone (`oci:busybox:latest`), so a build machine's
    /// directories do not leak into a file people share and the same image builds to the
    /// same bytes from any directory.
    ///
    /// ```
    /// use oci2bin_build::ImageSource;
    /// let s = ImageSource::parse("oci:/home/me/images/busybox:latest").unwrap();
    /// assert_eq!(s.recorded(), "oci:busybox:latest");
    /// ```
    pub fn recorded(&self) -> String {
        let name = |p: &Path| -> PathBuf {
            p.file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        match self {
            ImageSource::OciLayout { dir, tag } => ImageSource::OciLayout {
                dir: name(dir),
                tag: tag.clone(),
            }
            .to_string(),
            ImageSource::DockerArchive { file, reference } => ImageSource::DockerArchive {
                file: name(file),
                reference: reference.clone(),
            }
            .to_string(),
            other => other.to_string(),
        }
    }

    /// Resolves the source to the image for `platform`. Registry and daemon sources use the
    /// default build cache and registry options; see [`ImageSource::resolve_in`].
    pub fn resolve(&self, platform: &Platform) -> Result<ResolvedImage> {
        let cache = match self {
            ImageSource::OciLayout { .. } | ImageSource::DockerArchive { .. } => None,
            ImageSource::Registry(_) | ImageSource::Daemon { .. } => {
                Some(BuildCache::open(BuildCache::default_dir()?)?)
            }
        };
        self.resolve_with(
            platform,
            cache.as_ref(),
            &registry::RegistryOptions::default(),
            &mut |_| {},
        )
    }

    /// Resolves the source for `platform`, pulling registry images into `cache` (or finding
    /// them there) and exporting daemon images into it; `on_download` hears about downloads.
    pub fn resolve_in(
        &self,
        platform: &Platform,
        cache: &BuildCache,
        options: &registry::RegistryOptions,
        on_download: &mut dyn FnMut(registry::DownloadEvent<'_>),
    ) -> Result<ResolvedImage> {
        self.resolve_with(platform, Some(cache), options, on_download)
    }

    /// The one dispatch on the kind of source; `cache` is needed (and given) only for
    /// registry and daemon sources.
    fn resolve_with(
        &self,
        platform: &Platform,
        cache: Option<&BuildCache>,
        options: &registry::RegistryOptions,
        on_download: &mut dyn FnMut(registry::DownloadEvent<'_>),
    ) -> Result<ResolvedImage> {
        let desc = self.to_string();
        let cache = || cache.expect("registry and daemon sources are given a cache");
        let mut image = match self {
            ImageSource::OciLayout { dir, tag } => {
                oci_layout::resolve(dir, tag.as_deref(), platform, &desc)
            }
            ImageSource::DockerArchive { file, reference } => {
                docker_archive::resolve(file, reference.as_deref(), platform, &desc)
            }
            ImageSource::Registry(r) => {
                registry::resolve(r, platform, options, cache(), &desc, on_download)
            }
            ImageSource::Daemon { tool, name } => {
                let archive = daemon_save::export(*tool, name, cache())?;
                docker_archive::resolve(&archive, None, platform, &desc)
            }
        }?;
        image.recorded_source = self.recorded();
        Ok(image)
    }
}

/// The transports [`ImageSource::parse`] knows, for messages.
const TRANSPORTS: &str = "oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG], docker-daemon:NAME, podman:NAME, docker://REFERENCE, or a plain registry reference such as nginx or host:5000/repo:tag";

/// Whether `dir` holds an OCI image layout.
fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() || dir.join("index.json").is_file()
}

/// Refuses what is not a registry reference but would be taken for one: a misspelt
/// transport (`oic:/images/busybox`) and a local path without its transport. Registry
/// lookups of such names fail only after a network round trip, with an unrelated message.
fn check_not_local(input: &str) -> Result<()> {
    let bad = |reason: String| {
        Err(BuildError::BadSource {
            input: input.into(),
            reason,
        })
    };
    if let Some((scheme, rest)) = input.split_once(':') {
        let scheme_like = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '+');
        // `host:5000/repo` has a port before its first slash; `name:tag` has no slash.
        let port_first = rest
            .split('/')
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let path_like = rest.starts_with(['/', '.', '~']) || (rest.contains('/') && !port_first);
        if scheme_like && scheme != "docker" && path_like {
            return bad(format!(
                "unknown transport `{scheme}:`; the known sources are {TRANSPORTS}"
            ));
        }
    }
    let path = Path::new(input);
    let path_syntax = input.starts_with(['/', '~'])
        || input.starts_with("./")
        || input.starts_with("../")
        || input == "."
        || input == "..";
    let meta = std::fs::metadata(path).ok();
    let suggestion = match &meta {
        Some(m) if m.is_dir() && (path_syntax || is_layout(path)) => Some(format!(
            "it is a local directory: did you mean `oci:{input}` (an OCI image layout)?"
        )),
        Some(m) if m.is_file() => Some(format!(
            "it is a local file: did you mean `docker-archive:{input}` (a docker or podman save archive)?"
        )),
        _ if path_syntax => Some(format!(
            "it looks like a path, and {input} does not exist; local images are named oci:DIR or docker-archive:FILE"
        )),
        _ => None,
    };
    match suggestion {
        Some(s) if path_syntax => bad(s),
        Some(s) => bad(format!(
            "{s} To pull the registry image of that name, write docker://{input}"
        )),
        None => Ok(()),
    }
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::OciLayout { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
            ImageSource::DockerArchive { file, reference } => {
                write!(f, "docker-archive:{}", file.display())?;
                if let Some(r) = reference {
                    write!(f, ":{r}")?;
                }
                Ok(())
            }
            ImageSource::Registry(r) => write!(f, "{r}"),
            ImageSource::Daemon { tool, name } => write!(f, "{}{name}", tool.transport()),
        }
    }
}

/// Where a blob's bytes are: a whole file or a range of one (a member of a tar).
#[derive(Clone, Debug)]
pub struct BlobLocation {
    /// The file.
    pub path: PathBuf,
    /// Start of the blob in the file.
    pub offset: u64,
    /// Length of the blob.
    pub len: u64,
}

impl BlobLocation {
    /// A whole file.
    pub fn file(path: &Path) -> Result<Self> {
        let len = std::fs::metadata(path)
            .map_err(BuildError::io("reading", path))?
            .len();
        Ok(BlobLocation {
            path: path.to_path_buf(),
            offset: 0,
            len,
        })
    }

    /// Opens the blob for streaming.
    pub fn open(&self) -> Result<io::Take<File>> {
        let mut f = File::open(&self.path).map_err(BuildError::io("opening", &self.path))?;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(BuildError::io("seeking in", &self.path))?;
        Ok(f.take(self.len))
    }

    /// Reads a small blob (a manifest or config) whole, refusing anything over 16 MiB.
    pub fn read_small(&self) -> Result<Vec<u8>> {
        if self.len > 16 << 20 {
            return Err(BuildError::Unsupported(format!(
                "{} is {} bytes: too large for a manifest or config",
                self.path.display(),
                self.len
            )));
        }
        let mut out = Vec::with_capacity(self.len as usize);
        self.open()?
            .read_to_end(&mut out)
            .map_err(BuildError::io("reading", &self.path))?;
        Ok(out)
    }
}

/// One layer of a resolved image, not yet verified.
#[derive(Clone, Debug)]
pub struct SourceLayer {
    /// Digest of the blob as stored, when the source records one (docker-archive does not).
    pub digest: Option<Digest>,
    /// Size of the blob as stored, when recorded.
    pub size: Option<u64>,
    /// The uncompressed digest the config promises.
    pub diff_id: Digest,
    /// Compression from the media type; `None` means sniff the bytes.
    pub compression: Option<Compression>,
    /// Where the bytes are.
    pub location: BlobLocation,
}

/// An image selected from a source, with its manifest and config verified.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The source as the user named it.
    pub source_desc: String,
    /// The source as the output records it (see [`ImageSource::recorded`]).
    pub recorded_source: String,
    /// The image's name, used for `RepoTags` and the output file name.
    pub reference: Reference,
    /// The platform of the selected image (from its config).
    pub platform: Platform,
    /// Digest of the index the manifest was selected from, if any.
    pub index_digest: Option<Digest>,
    /// Digest of the source manifest, if the source has one.
    pub manifest_digest: Option<Digest>,
    /// The config, byte for byte (its digest is the image id and the runtime's cache key).
    pub config_bytes: Vec<u8>,
    /// Digest of `config_bytes`.
    pub config_digest: Digest,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Layers, bottom first.
    pub layers: Vec<SourceLayer>,
    /// Files the image was read from, for `cargo:rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
}

/// Parses a config and checks it against the wanted platform and the layer count.
/// `manifest_layers` is the number of layers the manifest lists and `manifest_what` names the
/// manifest in the error when the config's diff_ids disagree with it.
pub(crate) fn check_config(
    bytes: &[u8],
    digest: &Digest,
    platform: &Platform,
    source_desc: &str,
    manifest_layers: usize,
    manifest_what: &str,
) -> Result<(ImageConfiguration, Platform, Vec<Digest>)> {
    let config: ImageConfiguration = serde_json::from_slice(bytes).map_err(BuildError::json(
        format!("config {digest} of {source_desc}"),
    ))?;
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    let variant = config.variant().clone();
    if !platform.matches(&os, &arch, variant.as_deref()) {
        let have = Platform {
            os,
            architecture: arch,
            variant,
        };
        return Err(BuildError::NoPlatform {
            source_desc: source_desc.into(),
            wanted: platform.to_string(),
            available: have.to_string(),
        });
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            Digest::parse(d).map_err(BuildError::digest(format!("diff_id in config {digest}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if diff_ids.len() != manifest_layers {
        return Err(BuildError::Mismatch {
            what: format!("{manifest_what}: layer count"),
            expected: format!("{} layers (config diff_ids)", diff_ids.len()),
            actual: format!("{manifest_layers} layers in the manifest"),
        });
    }
    let found = Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    };
    Ok((config, found, diff_ids))
}

/// Checks a small blob against its digest and size.
pub(crate) fn verify_small(
    bytes: &[u8],
    digest: &Digest,
    size: Option<u64>,
    what: &str,
) -> Result<()> {
    let actual = Digest::of(bytes);
    if &actual != digest {
        return Err(BuildError::Mismatch {
            what: what.into(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    if let Some(size) = size {
        if size != bytes.len() as u64 {
            return Err(BuildError::Mismatch {
                what: what.into(),
                expected: format!("{size} bytes"),
                actual: format!("{} bytes", bytes.len()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            ImageSource::parse("oci:dir").unwrap(),
            ImageSource::OciLayout {
                dir: "dir".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageSource::parse("docker-archive:/t/b.tar:busybox:1").unwrap(),
            ImageSource::DockerArchive {
                file: "/t/b.tar".into(),
                reference: Some("busybox:1".into())
            }
        );
        assert!(matches!(
            ImageSource::parse("nginx").unwrap(),
            ImageSource::Registry(_)
        ));
        assert!(ImageSource::parse("oci:").is_err());
        assert_eq!(
            ImageSource::parse("docker-daemon:nginx:1").unwrap(),
            ImageSource::Daemon {
                tool: daemon_save::Tool::Docker,
                name: "nginx:1".into()
            }
        );
        assert_eq!(
            ImageSource::parse("podman:x").unwrap().to_string(),
            "podman:x"
        );
        assert!(ImageSource::parse("docker-daemon:").is_err());
        assert!(ImageSource::parse("containers-storage:x").is_err());
    }
}
