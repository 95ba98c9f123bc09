//! docker-archive tars (`docker save`, `podman save`): `docker-archive:FILE[:NAME:TAG]`.
//!
//! The archive is indexed once (tar headers only) and blobs are then read as byte ranges of
//! the file, so a multi-gigabyte archive is never unpacked or held in memory.

use super::{check_config, verify_small, BlobLocation, ResolvedImage, SourceLayer};
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::{Digest, Platform, Reference};
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let f = File::open(file).map_err(BuildError::io("opening", file))?;
    let mut archive = tar::Archive::new(f);
    let mut out = HashMap::new();
    let bad = |e: std::io::Error| BuildError::BadSource {
        input: file.display().to_string(),
        reason: format!("not a readable tar archive: {e}"),
    };
    for entry in archive.entries_with_seek().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
        let name = name.trim_start_matches("./").to_string();
        out.insert(name, (entry.raw_file_position(), entry.size()));
    }
    Ok(out)
}

/// Resolves `docker-archive:FILE[:NAME:TAG]` for `platform`.
pub fn resolve(
    file: &Path,
    wanted: Option<&str>,
    platform: &Platform,
    source_desc: &str,
) -> Result<ResolvedImage> {
    let entries = index_tar(file)?;
    let locate = |name: &str| -> Result<BlobLocation> {
        let name = name.trim_start_matches("./");
        let (offset, len) = entries.get(name).ok_or_else(|| BuildError::BadSource {
            input: source_desc.into(),
            reason: format!(
                "the archive has no member {name:?} (truncated or not a docker-archive)"
            ),
        })?;
        Ok(BlobLocation {
            path: file.to_path_buf(),
            offset: *offset,
            len: *len,
        })
    };
    let manifest_bytes = locate("manifest.json")?.read_small()?;
    let manifests: Vec<ArchiveManifest> = serde_json::from_slice(&manifest_bytes)
        .map_err(BuildError::json(format!("manifest.json of {source_desc}")))?;
    let wanted_ref = wanted.map(Reference::parse).transpose()?;
    let chosen = match &wanted_ref {
        None => manifests.first(),
        Some(w) => manifests.iter().find(|m| {
            m.repo_tags
                .iter()
                .flatten()
                .any(|t| Reference::parse(t).is_ok_and(|r| &r == w))
        }),
    }
    .ok_or_else(|| BuildError::NoTag {
        source_desc: source_desc.into(),
        tag: wanted.unwrap_or("(any)").into(),
        available: manifests
            .iter()
            .flat_map(|m| m.repo_tags.iter().flatten().cloned())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let config_bytes = locate(&chosen.config)?.read_small()?;
    let config_digest = Digest::of(&config_bytes);
    // Docker names the config after its digest: check it when it does.
    let stem = chosen
        .config
        .trim_start_matches("blobs/sha256/")
        .trim_end_matches(".json");
    if stem.len() == 64 {
        let named = Digest::parse(&format!("sha256:{stem}"))
            .map_err(BuildError::digest(format!("config name in {source_desc}")))?;
        verify_small(
            &config_bytes,
            &named,
            None,
            &format!("config {} of {source_desc}", chosen.config),
        )?;
    }
    let (config, found_platform, diff_ids) = check_config(
        &config_bytes,
        &config_digest,
        platform,
        source_desc,
        chosen.layers.len(),
        &format!("manifest.json of {source_desc}"),
    )?;
    let mut layers = Vec::new();
    for (name, diff_id) in chosen.layers.iter().zip(diff_ids) {
        layers.push(SourceLayer {
            digest: None,
            size: None,
            diff_id,
            compression: None,
            location: locate(name)?,
        });
    }
    let reference = match (
        &wanted_ref,
        chosen.repo_tags.as_ref().and_then(|t| t.first()),
    ) {
        (Some(w), _) => w.clone(),
        (None, Some(t)) => Reference::parse(t)?,
        (None, None) => Reference::parse(&format!("{}:latest", config_digest.short()))?,
    };
    Ok(ResolvedImage {
        source_desc: source_desc.into(),
        recorded_source: String::new(),
        reference,
        platform: found_platform,
        index_digest: None,
        manifest_digest: None,
        config_bytes,
        config_digest,
        config,
        layers,
        inputs: vec![file.to_path_buf()],
    })
}
