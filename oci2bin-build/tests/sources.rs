//! Builds small OCI layouts and docker-archives in a temporary directory and checks that the
//! build side reads, verifies, recompresses and writes them, and refuses every kind of damage
//! with an error naming the problem.

mod common;
use common::{gzip, layer_tar};
use oci2bin_build::{Builder, CompressSpec};
use oci2bin_rt::oci::{Compression, Digest};
use oci2bin_rt::payload::Payload;
use serde_json::json;
use std::io::Read;
use std::path::Path;

fn put_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join(d.blob_path()), bytes).unwrap();
    d
}

struct Layout {
    layer_tars: Vec<Vec<u8>>,
    arch: &'static str,
    /// Applied to the config JSON before it is written.
    config_edit: fn(&mut serde_json::Value),
    /// Applied to the manifest JSON before it is written.
    manifest_edit: fn(&mut serde_json::Value),
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            layer_tars: vec![
                layer_tar(&[("etc/hello", b"hello\n")]),
                layer_tar(&[("etc/world", b"world\n")]),
            ],
            arch: "amd64",
            config_edit: |_| {},
            manifest_edit: |_| {},
        }
    }
}

impl Layout {
    /// Writes the layout; returns the layer blob digests.
    fn write(&self, dir: &Path) -> Vec<Digest> {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for t in &self.layer_tars {
            let gz = gzip(t);
            let d = put_blob(dir, &gz);
            layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": gz.len()}));
            diff_ids.push(Digest::of(t).to_string());
        }
        let mut config = json!({
            "architecture": self.arch, "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        (self.config_edit)(&mut config);
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let cd = put_blob(dir, &config_bytes);
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config_bytes.len()},
            "layers": layers,
        });
        (self.manifest_edit)(&mut manifest);
        let mb = serde_json::to_vec(&manifest).unwrap();
        let md = put_blob(dir, &mb);
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md.to_string(), "size": mb.len(),
                "platform": {"architecture": self.arch, "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        self.layer_tars
            .iter()
            .map(|t| Digest::of(&gzip(t)))
            .collect()
    }
}

const TARGET: &str = "x86_64-unknown-linux-musl";

fn build(dir: &Path, cache: &Path, out: &Path, spec: &str) -> oci2bin_build::Result<()> {
    Builder::new(&format!("oci:{}/img:latest", dir.display()))?
        .compression(CompressSpec::parse(spec)?)
        .cache_dir(cache)
        .write_payload(TARGET, out)
        .map(|_| ())
}

fn layer_contents(payload: &Payload<'_>) -> Vec<Vec<u8>> {
    payload
        .layers
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            oci2bin_rt::decompress::decoder(l.compression, l.bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            out
        })
        .collect()
}

#[test]
fn layout_round_trips_through_every_codec() {
    let t = tempfile::tempdir().unwrap();
    let layout = Layout::default();
    layout.write(&t.path().join("img"));
    for (spec, codec) in [
        ("zstd:3", Compression::Zstd),
        ("gzip:1", Compression::Gzip),
        ("xz:0", Compression::Xz),
        ("none", Compression::None),
    ] {
        let out = t.path().join(format!("payload-{codec}.tar"));
        build(t.path(), &t.path().join("cache"), &out, spec).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let p = Payload::parse(&bytes).unwrap();
        assert_eq!(p.layers.len(), 2);
        assert!(p.layers.iter().all(|l| l.compression == codec), "{spec}");
        // diff_ids stay valid: the uncompressed layers are byte-identical to the source's.
        assert_eq!(layer_contents(&p), layout.layer_tars, "{spec}");
        for (l, t) in p.layers.iter().zip(&layout.layer_tars) {
            assert_eq!(l.diff_id, Digest::of(t));
            assert_eq!(l.digest, Digest::of(l.bytes));
        }
        assert_eq!(p.metadata.compression, spec);
        assert_eq!(p.metadata.platform, "linux/amd64");
        // The docker view names the same blobs.
        let (off, len) = p.entries["manifest.json"];
        let dm: serde_json::Value = serde_json::from_slice(&bytes[off..off + len]).unwrap();
        assert_eq!(dm[0]["Config"], p.config_digest.blob_path());
        assert_eq!(dm[0]["RepoTags"][0], "img:latest");
    }
}

/// The recompressed layer blobs in a build cache.
fn cached_blobs(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn a_cached_blob_changed_after_verification_is_caught() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    Layout::default().write(&t.path().join("img"));
    let cache = t.path().join("cache");
    let (a, b) = (t.path().join("a.tar"), t.path().join("b.tar"));
    build(t.path(), &cache, &a, "zstd:3").unwrap();
    let blobs = cached_blobs(&cache);
    assert_eq!(blobs.len(), 2);
    // Cached blobs are read-only; a touch (new ctime, same bytes) only costs a re-hash.
    let blob = &blobs[0];
    assert_eq!(
        std::fs::metadata(blob).unwrap().permissions().mode() & 0o777,
        0o444
    );
    std::fs::set_permissions(blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    build(t.path(), &cache, &b, "zstd:3").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Same size, other bytes: refused, naming the cached file, and nothing half-written
    // is passed off as a payload.
    let mut bytes = std::fs::read(blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(blob, &bytes).unwrap();
    let err = build(t.path(), &cache, &b, "zstd:3")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cached blob") && err.contains(&*blob.display().to_string()),
        "{err}"
    );
}

#[test]
fn rebuilds_are_identical_and_reuse_the_cache() {
    let t = tempfile::tempdir().unwrap();
    Layout::default().write(&t.path().join("img"));
    let cache = t.path().join("cache");
    let (a, b) = (t.path().join("a.tar"), t.path().join("b.tar"));
    build(t.path(), &cache, &a, "zstd:3").unwrap();
    let records = std::fs::read_dir(cache.join("recompressed/zstd-3"))
        .unwrap()
        .count();
    assert_eq!(records, 2);
    build(t.path(), &cache, &b, "zstd:3").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A fresh cache recompresses and still gives the same bytes.
    let c = t.path().join("c.tar");
    build(t.path(), &t.path().join("cache2"), &c, "zstd:3").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

fn expect_err(layout: &Layout, tamper: impl Fn(&Path, &[Digest]), needle: &str) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("img");
    let digests = layout.write(&dir);
    tamper(&dir, &digests);
    let digests = if needle == "does not match" {
        digests
    } else {
        vec![]
    };
    let out = t.path().join("out.tar");
    let err = build(t.path(), &t.path().join("cache"), &out, "zstd:3")
        .expect_err("build should fail")
        .to_string();
    assert!(
        err.contains(needle),
        "error {err:?} does not mention {needle:?}"
    );
    assert!(!out.exists(), "a failed build left {}", out.display());
    // Only intact layers before the damage were cached; nothing for the damaged ones.
    let records = t.path().join("cache/recompressed/zstd-3");
    let cached = std::fs::read_dir(&records).map(|d| d.count()).unwrap_or(0);
    let blobs = std::fs::read_dir(t.path().join("cache/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        cached <= 1 && blobs == cached,
        "a failed build cached {cached} records, {blobs} blobs"
    );
    if let Some(d) = digests.get(1) {
        assert!(!records.join(format!("{}.json", d.hex())).exists());
    }
}

#[test]
fn tampered_blob_is_refused() {
    expect_err(
        &Layout::default(),
        |dir, d| {
            let p = dir.join(d[1].blob_path());
            let mut bytes = std::fs::read(&p).unwrap();
            let n = bytes.len();
            bytes[n - 9] ^= 0xff; // inside the gzip trailer's CRC: still decodes
            std::fs::write(&p, bytes).unwrap();
        },
        "does not match",
    );
}

#[test]
fn wrong_diff_id_is_refused() {
    let layout = Layout {
        config_edit: |c| {
            c["rootfs"]["diff_ids"][0] =
                json!("sha256:0000000000000000000000000000000000000000000000000000000000000000")
        },
        ..Layout::default()
    };
    expect_err(&layout, |_, _| {}, "diff_id");
}

#[test]
fn path_like_digests_are_refused() {
    for bad in ["sha256:../../../../etc/passwd", "sha256:abc/def"] {
        let layout = Layout {
            manifest_edit: if bad.contains("..") {
                |m| m["layers"][0]["digest"] = json!("sha256:../../../../etc/passwd")
            } else {
                |m| m["layers"][0]["digest"] = json!("sha256:abc/def")
            },
            ..Layout::default()
        };
        expect_err(&layout, |_, _| {}, &bad["sha256:".len()..]);
    }
}

#[test]
fn missing_blob_is_refused() {
    expect_err(
        &Layout::default(),
        |dir, d| std::fs::remove_file(dir.join(d[0].blob_path())).unwrap(),
        "missing",
    );
}

#[test]
fn missing_platform_names_the_platforms_present() {
    let layout = Layout {
        arch: "arm64",
        ..Layout::default()
    };
    expect_err(&layout, |_, _| {}, "linux/arm64");
}

#[test]
fn docker_archive_is_read_and_verified_by_diff_id() {
    let t = tempfile::tempdir().unwrap();
    let layers = Layout::default().layer_tars;
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| Digest::of(l).to_string()).collect::<Vec<_>>()},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let cd = Digest::of(&config_bytes);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{}.json", cd.hex()), &config_bytes);
    add("l1/layer.tar", &layers[0]);
    add("l2/layer.tar", &gzip(&layers[1]));
    let manifest = json!([{"Config": format!("{}.json", cd.hex()), "RepoTags": ["busybox:1.36"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let archive = t.path().join("img.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let out = t.path().join("out.tar");
    let e = Builder::new(&format!("docker-archive:{}", archive.display()))
        .unwrap()
        .cache_dir(t.path().join("cache"))
        .write_payload(TARGET, &out)
        .unwrap();
    assert_eq!(e.image.reference.repo_tag(), "busybox:1.36");
    let bytes = std::fs::read(&out).unwrap();
    let p = Payload::parse(&bytes).unwrap();
    assert_eq!(p.config_digest, cd);
    assert_eq!(layer_contents(&p), layers);
}
