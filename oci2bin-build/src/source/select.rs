//! Choosing one manifest from an index: by tag, then by platform.
//!
//! Indexes nest (a layout's `index.json` may point at a multi-platform index), carry
//! attestation manifests (`unknown/unknown`) next to real ones, and omit variants, so the rules
//! live here once for every source.

use crate::error::{BuildError, Result};
use crate::source::verify_small;
use oci2bin_rt::oci::media;
use oci2bin_rt::oci::spec::{Descriptor, ImageIndex};
use oci2bin_rt::oci::{Digest, Platform};

/// The annotation OCI layouts use for a manifest's tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and podman use for the full image name.
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// A manifest chosen from an index.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Its digest (validated).
    pub digest: Digest,
    /// The digest of the innermost index it was chosen from, if nested.
    pub index_digest: Option<Digest>,
    /// The tag or name annotation of the top-level entry, if any.
    pub ref_name: Option<String>,
}

fn is_index(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_MANIFEST_LIST
}

fn is_attestation(d: &Descriptor) -> bool {
    let annotated = d
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = d.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" || p.architecture().to_string() == "unknown"
    });
    annotated || unknown
}

fn platform_of(d: &Descriptor) -> Option<String> {
    d.platform().as_ref().map(|p| {
        let mut s = format!("{}/{}", p.os(), p.architecture());
        if let Some(v) = p.variant() {
            s.push('/');
            s.push_str(v);
        }
        s
    })
}

/// Picks the manifest for `tag` and `platform` from `index`, loading nested indexes with
/// `load` (which must return verified bytes).
///
/// Entries without a platform are accepted here; the caller checks the config's platform.
pub fn select(
    index: &ImageIndex,
    tag: Option<&str>,
    platform: &Platform,
    source_desc: &str,
    load: &mut dyn FnMut(&Descriptor, &Digest) -> Result<Vec<u8>>,
) -> Result<Selected> {
    let annotation =
        |d: &Descriptor, key: &str| d.annotations().as_ref().and_then(|a| a.get(key)).cloned();
    let mut candidates: Vec<&Descriptor> = index.manifests().iter().collect();
    if let Some(tag) = tag {
        candidates.retain(|d| {
            annotation(d, REF_NAME).as_deref() == Some(tag)
                || annotation(d, IMAGE_NAME).is_some_and(|n| n.ends_with(&format!(":{tag}")))
        });
        if candidates.is_empty() {
            let mut tags: Vec<String> = index
                .manifests()
                .iter()
                .filter_map(|d| annotation(d, REF_NAME))
                .collect();
            tags.dedup();
            return Err(BuildError::NoTag {
                source_desc: source_desc.into(),
                tag: tag.into(),
                available: if tags.is_empty() {
                    "none".into()
                } else {
                    tags.join(", ")
                },
            });
        }
    }
    let ref_name = candidates.first().and_then(|d| annotation(d, REF_NAME));
    candidates.retain(|d| !is_attestation(d));
    let mut available = Vec::new();
    let mut chosen = None;
    for d in &candidates {
        match d.platform() {
            Some(p) => {
                available.push(platform_of(d).unwrap_or_default());
                if chosen.is_none()
                    && platform.matches(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    )
                {
                    chosen = Some(*d);
                }
            }
            None => {
                if chosen.is_none() {
                    chosen = Some(*d);
                }
            }
        }
    }
    let chosen = chosen.ok_or_else(|| BuildError::NoPlatform {
        source_desc: source_desc.into(),
        wanted: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })?;
    let digest = Digest::try_from(chosen.digest()).map_err(BuildError::digest(format!(
        "manifest entry in the index of {source_desc}"
    )))?;
    if is_index(chosen.media_type().as_ref()) {
        let bytes = load(chosen, &digest)?;
        verify_small(
            &bytes,
            &digest,
            Some(chosen.size()),
            &format!("index {digest} of {source_desc}"),
        )?;
        let nested: ImageIndex = serde_json::from_slice(&bytes).map_err(BuildError::json_doc(
            format!("index {digest} of {source_desc}"),
            &bytes,
        ))?;
        let mut inner = select(&nested, None, platform, source_desc, load)?;
        inner.index_digest = Some(digest);
        inner.ref_name = inner.ref_name.or(ref_name);
        return Ok(inner);
    }
    Ok(Selected {
        descriptor: chosen.clone(),
        digest,
        index_digest: None,
        ref_name,
    })
}
