//! `cargo oci2bin pack`: turn a root filesystem directory into a one-layer OCI image layout.
//!
//! Test images (and users' own images) are built from directories — an `mmdebstrap` tree, a
//! `cargo install --root` prefix — without docker or a registry. Packing is reproducible: the
//! same directory, options and `SOURCE_DATE_EPOCH` give byte-identical blobs on any machine, so
//! the digests of packed images can be pinned and compared. The layout can be extended: each
//! pack adds (or replaces) the entry for its tag and platform, so packing per architecture
//! into one directory yields a multi-platform layout.
//!
//! ```no_run
//! use oci2bin_build::pack::{pack, platform_for_arch, PackOptions};
//! let mut opts = PackOptions::new("rootfs".into(), "out/busybox".into(), "latest", platform_for_arch("amd64")?);
//! opts.cmd = Some(vec!["sh".into()]);
//! let outcome = pack(&opts)?;
//! println!("{}", outcome.manifest);
//! # Ok::<(), oci2bin_build::pack::PackError>(())
//! ```

pub(crate) mod canonical_json;
mod cli_values;
mod error;
pub(crate) mod image_documents;
pub(crate) mod layer_blob;
mod layout_dir;
mod layout_index;
pub(crate) mod rfc3339;
pub(crate) mod rootfs_tar;

pub use cli_values::{exec_form, platform_for_arch};
pub use error::PackError;

use crate::compress::CompressSpec;
use oci2bin_rt::oci::{Compression, Digest, Platform};
use std::path::PathBuf;

/// What to pack and how to describe it; the fields map one-to-one to the `pack` command line.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// The directory whose contents become the image's `/`.
    pub rootfs: PathBuf,
    /// The OCI layout directory to create, or to add this image to.
    pub output: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`), as in `oci:OUTPUT:TAG`.
    pub tag: String,
    /// `Entrypoint` of the config; `None` leaves it unset.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd` of the config; `None` leaves it unset.
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries; a default `PATH` is added first unless one is given.
    pub env: Vec<String>,
    /// `WorkingDir` of the config.
    pub workdir: Option<String>,
    /// `User` of the config (`name`, `uid`, `uid:gid`, ...).
    pub user: Option<String>,
    /// Ports such as `6379/tcp` (a bare number means tcp).
    pub exposed_ports: Vec<String>,
    /// The platform the files are for; it goes into the config and the index entry.
    pub platform: Platform,
    /// The layer compression and level (gzip:6 by default: every tool reads it, docker 20.10
    /// included).
    pub compression: CompressSpec,
    /// Every file's mtime and the config's `created` time: `SOURCE_DATE_EPOCH`, or 0.
    pub source_date_epoch: u64,
}

impl PackOptions {
    /// Options with the given paths, tag and platform; no entrypoint, cmd, env, workdir, user
    /// or ports; gzip; epoch 0.
    pub fn new(rootfs: PathBuf, output: PathBuf, tag: &str, platform: Platform) -> Self {
        PackOptions {
            rootfs,
            output,
            tag: tag.to_string(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            exposed_ports: Vec::new(),
            platform,
            compression: CompressSpec {
                codec: Compression::Gzip,
                level: 6,
            },
            source_date_epoch: 0,
        }
    }
}

/// What [`pack`] wrote: the digests a caller prints, pins or compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackOutcome {
    /// Digest of the image manifest (what the index entry points to).
    pub manifest: Digest,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// Digest of the image config (the image ID docker shows).
    pub config: Digest,
    /// Digest of the compressed layer blob.
    pub layer: Digest,
    /// Size of the compressed layer blob in bytes.
    pub layer_size: u64,
    /// Digest of the uncompressed layer tar (the config's diff_id).
    pub diff_id: Digest,
    /// Tar entries written.
    pub entries: u64,
    /// Device nodes left out: the caller should warn, since an image cannot carry them.
    pub skipped_devices: u64,
    /// Unix sockets left out.
    pub skipped_sockets: u64,
}

/// Packs `opts.rootfs` into the layout `opts.output` as a one-layer image tagged `opts.tag`
/// for `opts.platform`, replacing a previous image with the same tag and platform.
///
/// Blobs are written first and `index.json` is replaced atomically last, so an interrupted
/// pack leaves the layout as it was (plus unreferenced blobs).
pub fn pack(opts: &PackOptions) -> Result<PackOutcome, PackError> {
    layout_index::validate_tag(&opts.tag)?;
    if !opts.rootfs.is_dir() {
        return Err(PackError::RootfsNotDirectory {
            path: opts.rootfs.clone(),
        });
    }
    check_output_outside_rootfs(opts)?;
    let layout = layout_dir::LayoutDir::open_or_create(&opts.output)?;
    let layer = layer_blob::write_layer_blob(
        &layout,
        &opts.rootfs,
        opts.compression,
        opts.source_date_epoch,
    )?;
    let config = layout.put_blob(&image_documents::config_json(opts, &layer.diff_id)?)?;
    let manifest = layout.put_blob(&image_documents::manifest_json(
        &config,
        &layer.blob,
        opts.compression.codec,
    )?)?;
    let descriptor = image_documents::index_descriptor(&manifest, &opts.tag, &opts.platform)?;
    layout_index::add_manifest(&layout, descriptor, &opts.tag, &opts.platform)?;
    Ok(PackOutcome {
        manifest: manifest.digest,
        manifest_size: manifest.size,
        config: config.digest,
        layer: layer.blob.digest,
        layer_size: layer.blob.size,
        diff_id: layer.diff_id,
        entries: layer.stats.entries,
        skipped_devices: layer.stats.skipped_devices,
        skipped_sockets: layer.stats.skipped_sockets,
    })
}

/// Refuses an output at or below the root filesystem (compared after resolving symlinks of
/// the output's nearest existing ancestor, since the output may not exist yet).
fn check_output_outside_rootfs(opts: &PackOptions) -> Result<(), PackError> {
    let rootfs = opts
        .rootfs
        .canonicalize()
        .map_err(PackError::read(&opts.rootfs))?;
    let absolute = std::path::absolute(&opts.output).map_err(PackError::write(&opts.output))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut output = existing
        .canonicalize()
        .map_err(PackError::write(existing))?;
    output.extend(rest.iter().rev());
    if output.starts_with(&rootfs) {
        return Err(PackError::OutputInsideRootfs {
            output: opts.output.clone(),
            rootfs: opts.rootfs.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci2bin_rt::oci::spec::{ImageConfiguration, ImageIndex, ImageManifest};
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    fn sample_rootfs(root: &Path) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("tool", root.join("bin/alias")).unwrap();
        fs::hard_link(root.join("bin/tool"), root.join("bin/hard")).unwrap();
        fs::write(root.join("etc/motd"), "welcome\n").unwrap();
    }

    fn blob_bytes(layout: &Path, digest: &Digest) -> Vec<u8> {
        fs::read(layout.join(digest.blob_path())).unwrap()
    }

    fn all_blobs(layout: &Path) -> Vec<(String, Vec<u8>)> {
        let mut blobs: Vec<_> = fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        blobs.sort();
        blobs
    }

    fn index(layout: &Path) -> ImageIndex {
        ImageIndex::from_file(layout.join("index.json")).unwrap()
    }

    #[test]
    fn packing_twice_gives_identical_bytes_whatever_the_file_times() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        sample_rootfs(&rootfs);
        for compression in [Compression::Gzip, Compression::Zstd] {
            let mut opts = PackOptions::new(
                rootfs.clone(),
                dir.path().join(format!("a-{compression}")),
                "latest",
                platform_for_arch("amd64").unwrap(),
            );
            opts.compression = CompressSpec::parse(compression.name()).unwrap();
            opts.source_date_epoch = 1_700_000_000;
            opts.cmd = Some(vec!["sh".into()]);
            opts.exposed_ports = vec!["80".into(), "443/tcp".into(), "53/udp".into()];
            let first = pack(&opts).unwrap();
            // Touch a file: mtimes must not leak into the layer.
            let f = fs::File::options()
                .append(true)
                .open(rootfs.join("etc/motd"))
                .unwrap();
            f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5))
                .unwrap();
            opts.output = dir.path().join(format!("b-{compression}"));
            let second = pack(&opts).unwrap();
            assert_eq!(first, second);
            assert_eq!(
                all_blobs(&dir.path().join(format!("a-{compression}"))),
                all_blobs(&opts.output)
            );
            assert_eq!(
                fs::read(dir.path().join(format!("a-{compression}/index.json"))).unwrap(),
                fs::read(opts.output.join("index.json")).unwrap()
            );
            // Repacking into the same layout replaces the entry instead of adding one.
            pack(&opts).unwrap();
            assert_eq!(index(&opts.output).manifests().len(), 1);
        }
    }

    #[test]
    fn layout_documents_reference_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        sample_rootfs(&rootfs);
        let out = dir.path().join("layout");
        let mut opts = PackOptions::new(
            rootfs,
            out.clone(),
            "v1",
            platform_for_arch("arm64").unwrap(),
        );
        opts.entrypoint = Some(vec!["/bin/tool".into()]);
        opts.compression = CompressSpec::parse("xz").unwrap();
        let outcome = pack(&opts).unwrap();
        assert_eq!(outcome.entries, 6);

        let idx = index(&out);
        let entry = &idx.manifests()[0];
        assert_eq!(entry.digest().to_string(), outcome.manifest.to_string());
        assert_eq!(entry.size(), outcome.manifest_size);
        let platform = entry.platform().as_ref().unwrap();
        assert_eq!(platform.architecture().to_string(), "arm64");
        assert_eq!(platform.variant().as_deref(), Some("v8"));
        assert_eq!(
            entry.annotations().as_ref().unwrap()["org.opencontainers.image.ref.name"],
            "v1"
        );

        let manifest: ImageManifest =
            serde_json::from_slice(&blob_bytes(&out, &outcome.manifest)).unwrap();
        assert_eq!(
            manifest.config().digest().to_string(),
            outcome.config.to_string()
        );
        let layer = &manifest.layers()[0];
        assert_eq!(layer.digest().to_string(), outcome.layer.to_string());
        assert_eq!(layer.size(), outcome.layer_size);
        assert_eq!(
            layer.media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar+xz"
        );
        let config: ImageConfiguration =
            serde_json::from_slice(&blob_bytes(&out, &outcome.config)).unwrap();
        assert_eq!(config.rootfs().diff_ids(), &[outcome.diff_id.to_string()]);
        assert_eq!(
            config.config().as_ref().unwrap().entrypoint().as_deref(),
            Some(&["/bin/tool".to_string()][..])
        );
        assert_eq!(
            fs::read_to_string(out.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
    }

    #[test]
    fn packing_per_arch_builds_a_multi_platform_layout() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        sample_rootfs(&rootfs);
        let out = dir.path().join("multi");
        let mut opts = PackOptions::new(
            rootfs.clone(),
            out.clone(),
            "latest",
            platform_for_arch("amd64").unwrap(),
        );
        let amd = pack(&opts).unwrap();
        opts.platform = platform_for_arch("arm64").unwrap();
        let arm = pack(&opts).unwrap();
        assert_ne!(amd.config, arm.config);
        assert_eq!(amd.layer, arm.layer);

        // New amd64 content replaces only the amd64 entry.
        fs::write(rootfs.join("etc/motd"), "changed\n").unwrap();
        opts.platform = platform_for_arch("amd64").unwrap();
        let amd2 = pack(&opts).unwrap();
        assert_ne!(amd2.manifest, amd.manifest);

        let entries: Vec<(String, String)> = index(&out)
            .manifests()
            .iter()
            .map(|d| {
                (
                    d.platform().as_ref().unwrap().architecture().to_string(),
                    d.digest().to_string(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("arm64".to_string(), arm.manifest.to_string()),
                ("amd64".to_string(), amd2.manifest.to_string()),
            ]
        );
    }

    #[test]
    fn bad_inputs_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let opts = PackOptions::new(
            dir.path().join("missing"),
            out.clone(),
            "latest",
            platform_for_arch("amd64").unwrap(),
        );
        let err = pack(&opts).unwrap_err();
        assert!(matches!(err, PackError::RootfsNotDirectory { .. }), "{err}");
        let mut opts = opts;
        opts.rootfs = dir.path().to_path_buf();
        opts.tag = "bad:tag".into();
        assert!(matches!(
            pack(&opts).unwrap_err(),
            PackError::InvalidTag { .. }
        ));
        assert!(!out.exists());

        // An output inside the rootfs, also through a symlinked parent.
        let rootfs = dir.path().join("rootfs");
        sample_rootfs(&rootfs);
        symlink(&rootfs, dir.path().join("alias")).unwrap();
        opts.tag = "latest".into();
        opts.rootfs = rootfs.clone();
        for output in [
            rootfs.join("out"),
            dir.path().join("alias/new/out"),
            rootfs.clone(),
        ] {
            opts.output = output;
            let err = pack(&opts).unwrap_err();
            assert!(matches!(err, PackError::OutputInsideRootfs { .. }), "{err}");
        }
        assert!(!rootfs.join("out").exists() && !rootfs.join("new").exists());
        // A sibling whose name merely starts with the rootfs name is fine.
        opts.output = dir.path().join("rootfs-layout");
        pack(&opts).unwrap();
    }
}
