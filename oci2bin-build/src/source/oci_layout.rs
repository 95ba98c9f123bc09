//! OCI image layout directories (`oci:DIR[:TAG]`).

use super::select::{select, IMAGE_NAME};
use super::{check_config, verify_small, BlobLocation, ResolvedImage, SourceLayer};
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::spec::{ImageIndex, ImageManifest};
use oci2bin_rt::oci::{Compression, Digest, Platform, Reference};
use std::path::{Path, PathBuf};

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.blob_path())
}

fn blob(dir: &Path, digest: &Digest, source_desc: &str) -> Result<BlobLocation> {
    let path = blob_path(dir, digest);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => BlobLocation::file(&path),
        Ok(_) => Err(BuildError::Unsupported(format!(
            "blob {} of {source_desc} is not a regular file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BuildError::MissingBlob {
            digest: digest.clone(),
            source_desc: source_desc.into(),
            path,
        }),
        Err(e) => Err(BuildError::io("reading", path)(e)),
    }
}

/// The image name for a layout: the `io.containerd.image.name` annotation, else the
/// directory's name with the tag.
fn name_for(dir: &Path, tag: Option<&str>, full_name: Option<String>) -> Result<Reference> {
    if let Some(name) = full_name {
        if let Ok(r) = Reference::parse(&name) {
            return Ok(r);
        }
    }
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "image".into());
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let base = base.trim_start_matches(['.', '_', '-']);
    let base = if base.is_empty() { "image" } else { base };
    Ok(Reference::parse(&format!(
        "{base}:{}",
        tag.unwrap_or("latest")
    ))?)
}

/// Resolves `oci:DIR[:TAG]` for `platform`.
pub fn resolve(
    dir: &Path,
    tag: Option<&str>,
    platform: &Platform,
    source_desc: &str,
) -> Result<ResolvedImage> {
    let index_path = dir.join("index.json");
    let index_bytes = std::fs::read(&index_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::BadSource {
                input: source_desc.into(),
                reason: format!(
                    "{} does not exist: not an OCI image layout",
                    index_path.display()
                ),
            }
        } else {
            BuildError::io("reading", &index_path)(e)
        }
    })?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(BuildError::json_doc(
        index_path.display().to_string(),
        &index_bytes,
    ))?;
    let mut inputs = vec![index_path];
    let mut load =
        |_: &oci2bin_rt::oci::spec::Descriptor, d: &Digest| blob(dir, d, source_desc)?.read_small();
    let selected = select(&index, tag, platform, source_desc, &mut load)?;
    let full_name = selected
        .descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(IMAGE_NAME).cloned());
    let manifest_loc = blob(dir, &selected.digest, source_desc)?;
    let manifest_bytes = manifest_loc.read_small()?;
    let what = format!("manifest {} of {source_desc}", selected.digest);
    verify_small(
        &manifest_bytes,
        &selected.digest,
        Some(selected.descriptor.size()),
        &what,
    )?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(BuildError::json_doc(what.clone(), &manifest_bytes))?;
    let config_digest = Digest::try_from(manifest.config().digest())
        .map_err(BuildError::digest(format!("config digest in {what}")))?;
    let config_bytes = blob(dir, &config_digest, source_desc)?.read_small()?;
    verify_small(
        &config_bytes,
        &config_digest,
        Some(manifest.config().size()),
        &format!("config {config_digest} of {source_desc}"),
    )?;
    let (config, found_platform, diff_ids) = check_config(
        &config_bytes,
        &config_digest,
        platform,
        source_desc,
        manifest.layers().len(),
        &what,
    )?;
    let mut layers = Vec::new();
    for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let digest = Digest::try_from(desc.digest())
            .map_err(BuildError::digest(format!("layer digest in {what}")))?;
        let location = blob(dir, &digest, source_desc)?;
        inputs.push(location.path.clone());
        layers.push(SourceLayer {
            compression: Some(Compression::from_layer_media_type(
                desc.media_type().as_ref(),
            )?),
            digest: Some(digest),
            size: Some(desc.size()),
            diff_id,
            location,
        });
    }
    inputs.push(blob_path(dir, &selected.digest));
    inputs.push(blob_path(dir, &config_digest));
    Ok(ResolvedImage {
        source_desc: source_desc.into(),
        recorded_source: String::new(),
        reference: name_for(dir, tag.or(selected.ref_name.as_deref()), full_name)?,
        platform: found_platform,
        index_digest: selected.index_digest,
        manifest_digest: Some(selected.digest),
        config_bytes,
        config_digest,
        config,
        layers,
        inputs,
    })
}
