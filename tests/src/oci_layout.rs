//! Reading an OCI layout's documents, to check what was packed or to run an image's
//! entrypoint under another tool.

use oci2bin_rt::oci::Digest;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The JSON blob `digest` (a `sha256:...` string from a descriptor) of `layout`.
pub fn read_blob_json(layout: &Path, digest: &str) -> Value {
    let digest = Digest::parse(digest).unwrap_or_else(|e| panic!("{}: {e}", layout.display()));
    read_json(&layout.join(digest.blob_path()))
}

/// The `index.json` entries of `layout` tagged `tag`.
pub fn manifests_for_tag(layout: &Path, tag: &str) -> Vec<Value> {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: index.json has no manifests", layout.display()))
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .cloned()
        .collect()
}

/// The manifest of the only image tagged `tag` in `layout`.
pub fn read_manifest(layout: &Path, tag: &str) -> Value {
    let entries = manifests_for_tag(layout, tag);
    assert_eq!(
        entries.len(),
        1,
        "{}: expected one manifest tagged {tag}, found {}",
        layout.display(),
        entries.len()
    );
    read_blob_json(layout, entries[0]["digest"].as_str().expect("digest"))
}

/// The image config of the only image tagged `tag` in `layout`.
pub fn read_config(layout: &Path, tag: &str) -> Value {
    let manifest = read_manifest(layout, tag);
    read_blob_json(
        layout,
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    )
}

/// `Entrypoint` followed by `Cmd` of a config, as a container runtime starts it.
pub fn start_command(config: &Value) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut argv = strings(&config["config"]["Entrypoint"]);
    argv.extend(strings(&config["config"]["Cmd"]));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_index_to_manifest_to_config() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path();
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        let put = |v: &Value| {
            let bytes = serde_json::to_vec(v).unwrap();
            let d = Digest::of(&bytes);
            fs::write(layout.join(d.blob_path()), bytes).unwrap();
            d.to_string()
        };
        let config = json!({"config": {"Entrypoint": ["/e"], "Cmd": ["a", "b"]}});
        let manifest = json!({"config": {"digest": put(&config)}});
        let index = json!({"manifests": [
            {"digest": put(&manifest), "annotations": {"org.opencontainers.image.ref.name": "t"}},
            {"digest": put(&json!({})), "annotations": {"org.opencontainers.image.ref.name": "u"}},
        ]});
        fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        assert_eq!(read_config(layout, "t"), config);
        assert_eq!(start_command(&config), ["/e", "a", "b"]);
        assert_eq!(manifests_for_tag(layout, "v").len(), 0);
    }
}
