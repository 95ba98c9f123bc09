//! Adding a tagged manifest to a layout's `index.json`.
//!
//! An index may hold one entry per tag *and platform*: packing the same tag for amd64 and then
//! arm64 into one layout yields a multi-platform layout, while packing amd64 again replaces
//! only the amd64 entry. Existing entries are kept verbatim (as JSON values, so fields this
//! program does not model survive). An entry with the same tag whose platform is neither on its
//! descriptor nor readable from its config is replaced, since keeping it would leave the tag
//! ambiguous.

use super::canonical_json;
use super::error::PackError;
use super::layout_dir::LayoutDir;
use oci2bin_rt::oci::spec::{ImageIndex, ANNOTATION_REF_NAME};
use oci2bin_rt::oci::{Digest, Platform};
use serde_json::{json, Value};
use std::fs;
use std::io;

const INDEX_FILE: &str = "index.json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Whether `tag` can be used as `ref.name` in `oci:DIR:TAG` (docker's tag grammar).
pub(crate) fn validate_tag(tag: &str) -> Result<(), PackError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PackError::InvalidTag {
            tag: tag.to_string(),
        })
    }
}

/// Adds `descriptor` (a manifest descriptor carrying `tag` and `platform`) to the layout's
/// index, dropping any entry it supersedes, and rewrites `index.json` atomically.
pub(crate) fn add_manifest(
    layout: &LayoutDir,
    descriptor: Value,
    tag: &str,
    platform: &Platform,
) -> Result<(), PackError> {
    let path = layout.root().join(INDEX_FILE);
    let mut index = match fs::read(&path) {
        Ok(bytes) => parse_index(layout, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
        }),
        Err(e) => return Err(PackError::write(&path)(e)),
    };
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("parse_index checked that manifests is an array");
    manifests
        .retain(|entry| !(ref_name(entry) == Some(tag) && same_platform(layout, entry, platform)));
    manifests.push(descriptor);
    let bytes = canonical_json::to_vec(&index).map_err(|e| PackError::Spec {
        document: "index",
        source: e.into(),
    })?;
    layout.replace_file(INDEX_FILE, &bytes)
}

fn parse_index(layout: &LayoutDir, bytes: &[u8]) -> Result<Value, PackError> {
    let bad = |reason: String| PackError::BadLayout {
        path: layout.root().join(INDEX_FILE),
        reason,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    serde_json::from_value::<ImageIndex>(value.clone())
        .map_err(|e| bad(format!("not an OCI image index: {e}")))?;
    if !value["manifests"].is_array() {
        return Err(bad("it has no manifests array".into()));
    }
    Ok(value)
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry["annotations"][ANNOTATION_REF_NAME].as_str()
}

/// Whether an existing entry is for `platform`: by its descriptor's platform, else by its
/// manifest's config; `true` when neither can be read.
fn same_platform(layout: &LayoutDir, entry: &Value, platform: &Platform) -> bool {
    let described = if entry["platform"].is_object() {
        Some(entry["platform"].clone())
    } else {
        config_of(layout, entry)
    };
    match described {
        Some(p) => match (p["os"].as_str(), p["architecture"].as_str()) {
            (Some(os), Some(arch)) => platform.matches(os, arch, p["variant"].as_str()),
            _ => true,
        },
        None => true,
    }
}

/// The config of the manifest an index entry points to, if it is a readable image manifest.
fn config_of(layout: &LayoutDir, entry: &Value) -> Option<Value> {
    let read = |digest: &Value| -> Option<Value> {
        let digest = Digest::parse(digest.as_str()?).ok()?;
        serde_json::from_slice(&layout.read_blob(&digest)?).ok()
    };
    let manifest = read(&entry["digest"])?;
    read(&manifest["config"]["digest"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: &str, digest: &Digest, platform: Option<Value>) -> Value {
        let mut e = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(),
            "size": 1,
            "annotations": {ANNOTATION_REF_NAME: tag},
        });
        if let Some(p) = platform {
            e["platform"] = p;
        }
        e
    }

    fn digests(layout: &LayoutDir) -> Vec<(String, String)> {
        let index: Value =
            serde_json::from_slice(&fs::read(layout.root().join(INDEX_FILE)).unwrap()).unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    ref_name(e).unwrap().to_string(),
                    e["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn replaces_same_tag_and_platform_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutDir::open_or_create(dir.path()).unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        let amd_p = json!({"os": "linux", "architecture": "amd64"});
        let arm_p = json!({"os": "linux", "architecture": "arm64"});
        let (d1, d2, d3, d4) = (
            Digest::of(b"1"),
            Digest::of(b"2"),
            Digest::of(b"3"),
            Digest::of(b"4"),
        );
        add_manifest(
            &layout,
            entry("latest", &d1, Some(amd_p.clone())),
            "latest",
            &amd,
        )
        .unwrap();
        add_manifest(&layout, entry("latest", &d2, Some(arm_p)), "latest", &arm).unwrap();
        add_manifest(
            &layout,
            entry("other", &d3, Some(amd_p.clone())),
            "other",
            &amd,
        )
        .unwrap();
        add_manifest(&layout, entry("latest", &d4, Some(amd_p)), "latest", &amd).unwrap();
        assert_eq!(
            digests(&layout),
            [
                ("latest".into(), d2.to_string()),
                ("other".into(), d3.to_string()),
                ("latest".into(), d4.to_string()),
            ]
        );
    }

    #[test]
    fn entries_without_platform_are_resolved_through_their_config() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutDir::open_or_create(dir.path()).unwrap();
        let config = layout
            .put_blob(br#"{"os":"linux","architecture":"arm64"}"#)
            .unwrap();
        let manifest = layout
            .put_blob(
                json!({"config": {"digest": config.digest.to_string()}})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        let unknown = Digest::of(b"unreadable");
        let index = json!({
            "schemaVersion": 2,
            "manifests": [
                entry("latest", &manifest.digest, None),
                entry("latest", &unknown, None),
            ],
            "annotations": {"kept": "yes"},
        });
        layout
            .replace_file(INDEX_FILE, index.to_string().as_bytes())
            .unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let new = Digest::of(b"new");
        add_manifest(&layout, entry("latest", &new, None), "latest", &amd).unwrap();
        // The arm64 entry stays; the unresolvable one is replaced.
        assert_eq!(
            digests(&layout),
            [
                ("latest".into(), manifest.digest.to_string()),
                ("latest".into(), new.to_string()),
            ]
        );
        let index: Value =
            serde_json::from_slice(&fs::read(layout.root().join(INDEX_FILE)).unwrap()).unwrap();
        assert_eq!(index["annotations"]["kept"], "yes");
    }

    #[test]
    fn corrupt_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutDir::open_or_create(dir.path()).unwrap();
        layout
            .replace_file(INDEX_FILE, b"{\"manifests\": 3}")
            .unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let err = add_manifest(&layout, json!({}), "latest", &amd).unwrap_err();
        assert!(matches!(err, PackError::BadLayout { .. }), "{err}");
        assert!(err.to_string().contains("index.json"), "{err}");
    }

    #[test]
    fn tags_follow_the_docker_grammar() {
        for good in ["latest", "v1.2.3", "a", "A_b-c.d", &"x".repeat(128)] {
            validate_tag(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a:b",
            "a/b",
            "tag with space",
            &"x".repeat(129),
        ] {
            assert!(validate_tag(bad).is_err(), "{bad:?} accepted");
        }
    }
}
