//! The fixture images of `tests/fixtures/mkimage.py`: valid where they should be, broken
//! exactly where they should be, deterministic, and with an expected tree that an independent
//! unpacker (umoci) agrees with.

use oci2bin_rt::oci::Digest;
use oci2bin_tests::images::generate_fixtures;
use oci2bin_tests::oci_layout::{manifests_for_tag, read_blob_json, read_config, read_manifest};
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{fixture_images, is_root};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn fixtures_json(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("fixtures.json")).unwrap()).unwrap()
}

fn names_of_kind(index: &Value, kind: &str) -> Vec<String> {
    index["fixtures"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, f)| f["kind"] == kind)
        .map(|(n, _)| n.clone())
        .collect()
}

fn skopeo_inspect(layout: &Path) -> std::process::Output {
    Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:latest", layout.display())])
        .output()
        .unwrap()
}

fn blob_path(layout: &Path, digest: &Value) -> std::path::PathBuf {
    layout.join(Digest::parse(digest.as_str().unwrap()).unwrap().blob_path())
}

#[test]
fn valid_fixtures_are_readable_by_skopeo() {
    let dir = fixture_images();
    let index = fixtures_json(&dir);
    let mut names = names_of_kind(&index, "hostile");
    assert!(names.len() >= 15, "hostile cases: {names:?}");
    names.push("layered".into());
    for name in names {
        let out = skopeo_inspect(&dir.join(&name));
        assert!(
            out.status.success(),
            "skopeo cannot inspect {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            info["Architecture"], index["platform"]["architecture"],
            "{name}"
        );
        // Every layer blob matches its digest and its diff_id.
        let layout = dir.join(&name);
        let manifest = read_manifest(&layout, "latest");
        let config = read_config(&layout, "latest");
        for (layer, diff_id) in manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            let blob = fs::read(blob_path(&layout, &layer["digest"])).unwrap();
            assert_eq!(Digest::of(&blob).to_string(), layer["digest"], "{name}");
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
            assert_eq!(&Digest::of(&tar).to_string(), diff_id, "{name}");
        }
    }
}

#[test]
fn corrupt_fixtures_are_corrupt_in_exactly_one_way() {
    let dir = fixture_images();
    let index = fixtures_json(&dir);
    let corrupt = names_of_kind(&index, "corrupt");
    assert_eq!(corrupt.len(), 7, "{corrupt:?}");

    // Tampered blob: named by a digest its bytes no longer have.
    let layout = dir.join("corrupt-tampered-blob");
    let layer = &read_manifest(&layout, "latest")["layers"][0];
    let bytes = fs::read(blob_path(&layout, &layer["digest"])).unwrap();
    assert_eq!(bytes.len() as u64, layer["size"].as_u64().unwrap());
    assert_ne!(Digest::of(&bytes).to_string(), layer["digest"]);

    // Wrong diff_id: the blob is intact, the config lies about its tar.
    let layout = dir.join("corrupt-wrong-diffid");
    let layer = &read_manifest(&layout, "latest")["layers"][0];
    let bytes = fs::read(blob_path(&layout, &layer["digest"])).unwrap();
    assert_eq!(Digest::of(&bytes).to_string(), layer["digest"]);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut tar)
        .unwrap();
    let config = read_config(&layout, "latest");
    assert_ne!(
        Digest::of(&tar).to_string(),
        config["rootfs"]["diff_ids"][0]
    );

    // Path-like digests: refused by a strict parser.
    for (name, bad_at) in [
        ("corrupt-digest-traversal", "manifest"),
        ("corrupt-digest-slash", "manifest"),
        ("corrupt-index-digest-traversal", "index"),
    ] {
        let layout = dir.join(name);
        let entry = &manifests_for_tag(&layout, "latest")[0];
        let digest = if bad_at == "index" {
            entry["digest"].clone()
        } else {
            let manifest = read_blob_json(&layout, entry["digest"].as_str().unwrap());
            manifest["layers"][0]["digest"].clone()
        };
        let digest = digest.as_str().unwrap();
        assert!(digest.contains('/'), "{name}: {digest}");
        assert!(Digest::parse(digest).is_err(), "{name}: {digest} parses");
    }

    // Missing blob.
    let layout = dir.join("corrupt-missing-blob");
    let layer = &read_manifest(&layout, "latest")["layers"][0];
    assert!(!blob_path(&layout, &layer["digest"]).exists());

    // Only an arm64 manifest.
    let layout = dir.join("corrupt-arm64-only");
    let entries = manifests_for_tag(&layout, "latest");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["platform"]["architecture"], "arm64");
    assert_eq!(read_config(&layout, "latest")["architecture"], "arm64");
}

#[test]
fn generator_is_deterministic() {
    let cached = fixture_images();
    let fresh = tempfile::tempdir().unwrap();
    generate_fixtures(fresh.path());
    let index = fixtures_json(fresh.path());
    for name in index["fixtures"].as_object().unwrap().keys() {
        assert_eq!(
            fs::read(cached.join(name).join("index.json")).unwrap(),
            fs::read(fresh.path().join(name).join("index.json")).unwrap(),
            "{name} differs between runs"
        );
    }
    assert_eq!(
        fs::read(cached.join("layered.expected.json")).unwrap(),
        fs::read(fresh.path().join("layered.expected.json")).unwrap()
    );
}

/// Checks every expected entry against the unpacked tree; returns the mismatches.
fn compare_tree(root: &Path, expected: &[Value], check_owner: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            seen.insert(
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                (),
            );
        }
    }
    for e in expected {
        let rel = e["path"].as_str().unwrap();
        let path = root.join(rel);
        if seen.remove(rel).is_none() {
            problems.push(format!("{rel}: missing"));
            continue;
        }
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind_ok = match e["type"].as_str().unwrap() {
            "file" => ft.is_file(),
            "dir" => ft.is_dir(),
            "symlink" => ft.is_symlink(),
            "fifo" => std::os::unix::fs::FileTypeExt::is_fifo(&ft),
            other => panic!("unknown type {other}"),
        };
        if !kind_ok {
            problems.push(format!("{rel}: not a {}", e["type"]));
            continue;
        }
        if ft.is_symlink() {
            if fs::read_link(&path).unwrap().to_str() != e["target"].as_str() {
                problems.push(format!("{rel}: wrong target"));
            }
            continue;
        }
        if md.permissions().mode() & 0o7777 != e["mode"].as_u64().unwrap() as u32 {
            problems.push(format!(
                "{rel}: mode {:o} != {}",
                md.mode() & 0o7777,
                e["mode_octal"]
            ));
        }
        if check_owner
            && (u64::from(md.uid()), u64::from(md.gid()))
                != (e["uid"].as_u64().unwrap(), e["gid"].as_u64().unwrap())
        {
            problems.push(format!("{rel}: owner {}:{}", md.uid(), md.gid()));
        }
        if ft.is_file() {
            let data = fs::read(&path).unwrap();
            if Digest::of(&data).hex() != e["sha256"].as_str().unwrap() {
                problems.push(format!("{rel}: content differs"));
            }
            if md.mtime() as u64 != e["mtime"].as_u64().unwrap() {
                problems.push(format!("{rel}: mtime {} != {}", md.mtime(), e["mtime"]));
            }
            if let Some(other) = e["same_inode_as"].as_str() {
                if fs::symlink_metadata(root.join(other)).unwrap().ino() != md.ino() {
                    problems.push(format!("{rel}: not a hardlink of {other}"));
                }
            }
        }
    }
    problems.extend(seen.keys().map(|p| format!("{p}: unexpected")));
    problems
}

#[test]
fn layered_expected_tree_matches_umoci() {
    let dir = fixture_images();
    let expected: Value =
        serde_json::from_slice(&fs::read(dir.join("layered.expected.json")).unwrap()).unwrap();
    let expected = expected["entries"].as_array().unwrap();
    assert!(expected.len() > 40);
    let bundle = tempfile::tempdir().unwrap();
    let bundle = bundle.path().join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !is_root() {
        unpack.arg("--rootless");
    }
    run_ok(
        unpack
            .args([
                "--image",
                &format!("{}:latest", dir.join("layered").display()),
            ])
            .arg(&bundle),
    );
    let problems = compare_tree(&bundle.join("rootfs"), expected, is_root());
    assert!(
        problems.is_empty(),
        "umoci disagrees with layered.expected.json:\n{}",
        problems.join("\n")
    );
}
