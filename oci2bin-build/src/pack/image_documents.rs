//! The image config, the manifest and the index descriptor of a packed image.
//!
//! All three are built with oci-spec's builders (so they are valid documents) and serialized
//! with sorted keys (so they are reproducible). The config's `created` is the caller's
//! `SOURCE_DATE_EPOCH`, never the clock.

use super::canonical_json;
use super::error::PackError;
use super::layout_dir::StoredBlob;
use super::rfc3339;
use super::PackOptions;
use oci2bin_rt::oci::spec::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder, ANNOTATION_REF_NAME,
};
use oci2bin_rt::oci::{Compression, Digest, Platform};
use std::collections::HashMap;
use std::str::FromStr;

/// The `PATH` docker puts into images that set none; without it most images cannot find their
/// own programs.
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Recorded as the layer's history entry.
const CREATED_BY: &str = "cargo oci2bin pack";

fn spec_err(document: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> PackError {
    move |source| PackError::Spec { document, source }
}

fn spec_digest(d: &Digest) -> Result<oci_spec::image::Digest, PackError> {
    oci_spec::image::Digest::from_str(&d.to_string()).map_err(spec_err("descriptor digest"))
}

/// The environment stored in the config: the caller's entries, with the default `PATH` put
/// first when they set none.
pub(crate) fn config_env(env: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(env.len() + 1);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        out.push(DEFAULT_PATH.to_string());
    }
    out.extend(env.iter().cloned());
    out
}

/// Exposed ports in docker's `port/proto` form (`6379` becomes `6379/tcp`), sorted, without
/// duplicates.
pub(crate) fn exposed_ports(ports: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ports
        .iter()
        .map(|p| {
            if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The image config JSON for a single-layer image whose tar has digest `diff_id`.
pub(crate) fn config_json(opts: &PackOptions, diff_id: &Digest) -> Result<Vec<u8>, PackError> {
    let created = rfc3339::format_utc(opts.source_date_epoch);
    let mut config = ConfigBuilder::default().env(config_env(&opts.env));
    if let Some(entrypoint) = &opts.entrypoint {
        config = config.entrypoint(entrypoint.clone());
    }
    if let Some(cmd) = &opts.cmd {
        config = config.cmd(cmd.clone());
    }
    if let Some(workdir) = &opts.workdir {
        config = config.working_dir(workdir.clone());
    }
    if let Some(user) = &opts.user {
        config = config.user(user.clone());
    }
    if !opts.exposed_ports.is_empty() {
        config = config.exposed_ports(exposed_ports(&opts.exposed_ports));
    }
    let config = config.build().map_err(spec_err("config"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id.to_string()])
        .build()
        .map_err(spec_err("config"))?;
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(CREATED_BY)
        .build()
        .map_err(spec_err("config"))?;
    let mut image = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(opts.platform.architecture.as_str()))
        .os(Os::from(opts.platform.os.as_str()))
        .config(config)
        .rootfs(rootfs)
        .history(vec![history]);
    if let Some(variant) = &opts.platform.variant {
        image = image.variant(variant.clone());
    }
    let image = image.build().map_err(spec_err("config"))?;
    canonical_json::to_vec(&image).map_err(|e| spec_err("config")(e.into()))
}

fn descriptor(media_type: MediaType, blob: &StoredBlob) -> Result<Descriptor, PackError> {
    Ok(Descriptor::new(
        media_type,
        blob.size,
        spec_digest(&blob.digest)?,
    ))
}

/// The manifest JSON of an image with config `config` and the one layer `layer`.
pub(crate) fn manifest_json(
    config: &StoredBlob,
    layer: &StoredBlob,
    compression: Compression,
) -> Result<Vec<u8>, PackError> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config)?)
        .layers(vec![descriptor(
            MediaType::from(compression.oci_layer_media_type()),
            layer,
        )?])
        .build()
        .map_err(spec_err("manifest"))?;
    canonical_json::to_vec(&manifest).map_err(|e| spec_err("manifest")(e.into()))
}

/// The `index.json` entry for the manifest: its platform, and the tag as
/// `org.opencontainers.image.ref.name` so `oci:DIR:TAG` finds it.
pub(crate) fn index_descriptor(
    manifest: &StoredBlob,
    tag: &str,
    platform: &Platform,
) -> Result<serde_json::Value, PackError> {
    let mut spec_platform = PlatformBuilder::default()
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()));
    if let Some(variant) = &platform.variant {
        spec_platform = spec_platform.variant(variant.clone());
    }
    let descriptor = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(spec_digest(&manifest.digest)?)
        .size(manifest.size)
        .platform(
            spec_platform
                .build()
                .map_err(spec_err("index descriptor"))?,
        )
        .annotations(HashMap::from([(
            ANNOTATION_REF_NAME.to_string(),
            tag.to_string(),
        )]))
        .build()
        .map_err(spec_err("index descriptor"))?;
    serde_json::to_value(&descriptor).map_err(|e| spec_err("index descriptor")(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::path::PathBuf;

    fn opts() -> PackOptions {
        PackOptions::new(
            PathBuf::from("/nonexistent"),
            PathBuf::from("/nonexistent"),
            "latest",
            Platform::parse("linux/arm64/v8").unwrap(),
        )
    }

    fn blob(bytes: &[u8]) -> StoredBlob {
        StoredBlob {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn config_holds_every_option_and_sorted_ports() {
        let mut o = opts();
        o.entrypoint = Some(vec!["/entry.sh".into()]);
        o.cmd = Some(vec!["redis-server".into(), "--port".into(), "6379".into()]);
        o.env = vec!["A=1".into()];
        o.workdir = Some("/data".into());
        o.user = Some("999:999".into());
        o.exposed_ports = vec!["9000/udp".into(), "6379".into(), "6379/tcp".into()];
        o.source_date_epoch = 1_700_000_000;
        let diff_id = Digest::of(b"tar");
        let bytes = config_json(&o, &diff_id).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({
                "architecture": "arm64",
                "os": "linux",
                "variant": "v8",
                "created": "2023-11-14T22:13:20Z",
                "config": {
                    "Entrypoint": ["/entry.sh"],
                    "Cmd": ["redis-server", "--port", "6379"],
                    "Env": [DEFAULT_PATH, "A=1"],
                    "WorkingDir": "/data",
                    "User": "999:999",
                    "ExposedPorts": {"6379/tcp": {}, "9000/udp": {}},
                },
                "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
                "history": [{"created": "2023-11-14T22:13:20Z", "created_by": CREATED_BY}],
            })
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.find("\"6379/tcp\"").unwrap() < text.find("\"9000/udp\"").unwrap());
        // Reproducible across calls (HashMap order inside oci-spec must not leak).
        for _ in 0..5 {
            assert_eq!(config_json(&o, &diff_id).unwrap(), bytes);
        }
    }

    #[test]
    fn minimal_config_gets_default_path_and_no_empty_fields() {
        let mut o = opts();
        o.platform = Platform::parse("linux/amd64").unwrap();
        let v: Value = serde_json::from_slice(&config_json(&o, &Digest::of(b"")).unwrap()).unwrap();
        assert_eq!(v["config"], json!({"Env": [DEFAULT_PATH]}));
        assert_eq!(v["architecture"], "amd64");
        assert_eq!(v["created"], "1970-01-01T00:00:00Z");
        assert!(v.get("variant").is_none());
    }

    #[test]
    fn caller_path_is_not_overridden() {
        assert_eq!(config_env(&["PATH=/x".into()]), ["PATH=/x"]);
        assert_eq!(config_env(&["PATHX=1".into()]), [DEFAULT_PATH, "PATHX=1"]);
    }

    #[test]
    fn manifest_and_descriptor_use_oci_media_types() {
        let (config, layer) = (blob(b"config"), blob(b"layer"));
        let m: Value =
            serde_json::from_slice(&manifest_json(&config, &layer, Compression::Zstd).unwrap())
                .unwrap();
        assert_eq!(
            m,
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest.to_string(),
                    "size": 6,
                },
                "layers": [{
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                    "digest": layer.digest.to_string(),
                    "size": 5,
                }],
            })
        );
        let xz: Value =
            serde_json::from_slice(&manifest_json(&config, &layer, Compression::Xz).unwrap())
                .unwrap();
        assert_eq!(
            xz["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+xz"
        );

        let manifest = blob(b"manifest");
        let d = index_descriptor(&manifest, "v1", &opts().platform).unwrap();
        assert_eq!(
            d,
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.digest.to_string(),
                "size": 8,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            })
        );
    }
}
