//! Building executables from the test images with `cargo oci2bin`, and running them as an
//! ordinary user: busybox from its OCI layout (with the output name derived from the image)
//! and from its docker-archive, redis answering on loopback, every layer compression, the
//! corrupt fixtures refused with a message that names the damage, and reproducible output.

use oci2bin_rt::oci::Digest;
use oci2bin_tests::built::{assert_built, inspect_json, oci2bin_in, strings};
use oci2bin_tests::oci_layout::{read_config, read_manifest};
use oci2bin_tests::paths::e2e_dir;
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{
    assert_echo_hi, fixture_images, free_port, image_source, redis_command, redis_ping,
    test_images, test_user, wait_for_port, TestDir, TmpfsMount, UserCommand,
};
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Names in `dir` other than `keep`: a build must leave nothing else behind.
fn stray_files(dir: &Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn busybox_layout_gets_its_name_from_the_image() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_default_name");
    let cwd = dir.join("out");
    fs::create_dir(&cwd).unwrap();
    let built = oci2bin_in(&cwd, &["--image", &image_source(&images, "busybox"), "-q"]);
    assert_built(&built, "busybox layout without -o");
    let bin = cwd.join("busybox_latest");
    assert!(
        bin.is_file(),
        "no busybox_latest in the working directory; it has {:?}",
        stray_files(&cwd, &[])
    );
    assert_eq!(stray_files(&cwd, &["busybox_latest"]), Vec::<String>::new());
    let info = inspect_json(&bin);
    assert_eq!(info["reference"], "docker.io/library/busybox:latest");
    assert_echo_hi(&bin, &user, &dir, "cache");
}

#[test]
#[ignore = "e2e: needs root (mount), mmdebstrap images; run with --include-ignored"]
fn full_output_disk_is_reported_and_leaves_nothing() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_full_disk");
    // The busybox executable is about 2 MB.
    let mount = TmpfsMount::new(&dir.join("tiny"), 0, "size=1m", &user);
    let out = mount.path().join("busybox");
    let built = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &image_source(&images, "busybox"),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ],
    );
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(
        !built.status.success(),
        "the build succeeded on a full disk"
    );
    assert!(
        stderr.contains("not enough space") && stderr.contains(&*out.display().to_string()),
        "{stderr}"
    );
    assert_eq!(stray_files(mount.path(), &[]), Vec::<String>::new());
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn busybox_docker_archive_builds_the_same_image() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_docker_archive");
    let archive = images.join("busybox.docker-archive.tar");
    let bin = dir.join("bb_archive");
    let built = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &format!("docker-archive:{}", archive.display()),
            "-o",
            bin.to_str().unwrap(),
            "-q",
        ],
    );
    assert_built(&built, "busybox docker-archive");
    let info = inspect_json(&bin);
    assert!(
        info["source"]
            .as_str()
            .unwrap()
            .starts_with("docker-archive:"),
        "{info}"
    );
    assert_eq!(info["reference"], "docker.io/library/busybox:latest");
    // The archive was exported from the layout: same config, so the same image id.
    let layout_manifest = read_manifest(&images.join("busybox"), "latest");
    assert_eq!(info["config_digest"], layout_manifest["config"]["digest"]);
    assert_echo_hi(&bin, &user, &dir, "cache");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn redis_answers_ping_on_loopback() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_redis");
    let bin = dir.join("redis_latest");
    let built = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &image_source(&images, "redis"),
            "-o",
            bin.to_str().unwrap(),
            "-q",
        ],
    );
    assert_built(&built, "redis layout");
    // Like the official image: docker-entrypoint.sh hands flags to redis-server, so the port
    // is given as with `docker run redis --port N`, after `--` (the runtime's own options end
    // there; the container shares the host's network).
    let config = read_config(&images.join("redis"), "latest");
    assert_eq!(
        strings(&config["config"]["Entrypoint"]),
        Some(vec!["docker-entrypoint.sh".to_string()]),
        "the redis test image changed: {config}"
    );
    let port = free_port();
    let port_arg = port.to_string();
    let args = ["--", "--port", port_arg.as_str()];
    let mut server = UserCommand::new(&user, &bin)
        .args(args)
        .cache_dir(&dir.user_dir("cache", &user))
        .current_dir(dir.path())
        .spawn(&dir.join("redis.log"))
        .unwrap();
    assert!(
        wait_for_port(port, Duration::from_secs(120)),
        "redis did not listen on 127.0.0.1:{port} (exit: {:?}):\n{}",
        server.try_status(),
        server.log()
    );
    assert_eq!(redis_ping(port).unwrap(), "+PONG", "{}", server.log());
    assert_eq!(
        redis_command(port, &["SET", "oci2bin", "works"]).unwrap(),
        "+OK"
    );
    assert_eq!(redis_command(port, &["GET", "oci2bin"]).unwrap(), "works");
    server.stop();
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn every_compression_builds_a_binary_that_runs() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_compressions");
    let mut sizes = Vec::new();
    for (codec, media_suffix) in [("xz", ".tar+xz"), ("gzip", ".tar+gzip"), ("none", ".tar")] {
        let bin = dir.join(format!("bb_{codec}"));
        let built = oci2bin_in(
            dir.path(),
            &[
                "--image",
                &image_source(&images, "busybox"),
                "--compress",
                codec,
                "-o",
                bin.to_str().unwrap(),
                "-q",
            ],
        );
        assert_built(&built, &format!("--compress {codec}"));
        let info = inspect_json(&bin);
        let compression = info["compression"].as_str().unwrap();
        assert!(
            compression == codec || compression.starts_with(&format!("{codec}:")),
            "--compress {codec} reported as {compression}"
        );
        for layer in info["layers"].as_array().unwrap() {
            let media = layer["media_type"].as_str().unwrap();
            assert!(
                media.ends_with(media_suffix),
                "--compress {codec}: layer media type {media}"
            );
        }
        assert_echo_hi(&bin, &user, &dir, &format!("cache-{codec}"));
        sizes.push((codec, info["payload_size"].as_u64().unwrap()));
    }
    // An uncompressed payload is larger than either compressed one.
    let none = sizes.iter().find(|(c, _)| *c == "none").unwrap().1;
    for (codec, size) in &sizes {
        assert!(
            *codec == "none" || *size < none,
            "{codec} payload {size} bytes, uncompressed {none}"
        );
    }
}

/// The file `rel` of a JSON document in `layout`, if it exists and parses.
fn layout_json(layout: &Path, rel: &str) -> Option<Value> {
    serde_json::from_slice(&fs::read(layout.join(rel)).ok()?).ok()
}

fn blob_rel(digest: &str) -> Option<String> {
    Digest::parse(digest).ok().map(|d| d.blob_path())
}

/// Every `"digest"` string in `v`.
fn digests_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("digest", Value::String(s)) => out.push(s.clone()),
                    _ => digests_in(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| digests_in(v, out)),
        _ => {}
    }
}

/// The manifest of a fixture's `latest` entry and its config, where they can be read.
fn fixture_docs(layout: &Path) -> (Value, Option<Value>, Option<Value>) {
    let index = layout_json(layout, "index.json").expect("fixture index.json");
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .and_then(blob_rel)
        .and_then(|rel| layout_json(layout, &rel));
    let config = manifest
        .as_ref()
        .and_then(|m| m["config"]["digest"].as_str().and_then(blob_rel))
        .and_then(|rel| layout_json(layout, &rel));
    (index, manifest, config)
}

/// What the error for fixture `name` (expected failure `failure`) must mention, worked out
/// from the fixture's files rather than copied from the program's output.
fn expected_mentions(layout: &Path, failure: &str) -> Vec<String> {
    let (index, manifest, config) = fixture_docs(layout);
    let layer_digest = || {
        manifest.as_ref().expect("fixture manifest")["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    match failure {
        "no manifest for the platform" => {
            let p = &index["manifests"][0]["platform"];
            vec![
                "platform".into(),
                format!("linux/{}", host_oci_arch()),
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
            ]
        }
        "invalid digest" => {
            let mut all = Vec::new();
            digests_in(&index, &mut all);
            if let Some(m) = &manifest {
                digests_in(m, &mut all);
            }
            let bad: Vec<String> = all
                .into_iter()
                .filter(|d| Digest::parse(d).is_err())
                .collect();
            assert_eq!(
                bad.len(),
                1,
                "{}: malformed digests {bad:?}",
                layout.display()
            );
            vec!["invalid digest".into(), bad[0].clone()]
        }
        "missing blob" => {
            let mut all = Vec::new();
            digests_in(manifest.as_ref().expect("fixture manifest"), &mut all);
            let missing: Vec<String> = all
                .into_iter()
                .filter(|d| !layout.join(blob_rel(d).unwrap()).exists())
                .collect();
            assert_eq!(
                missing.len(),
                1,
                "{}: missing {missing:?}",
                layout.display()
            );
            vec!["missing".into(), missing[0].clone()]
        }
        "digest mismatch" => {
            let digest = layer_digest();
            let actual = Digest::of(&fs::read(layout.join(blob_rel(&digest).unwrap())).unwrap());
            assert_ne!(actual.to_string(), digest, "the fixture is not tampered");
            vec!["does not match".into(), digest, actual.to_string()]
        }
        "diff_id mismatch" => {
            let digest = layer_digest();
            let blob = fs::read(layout.join(blob_rel(&digest).unwrap())).unwrap();
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
            let claimed = config.expect("fixture config")["rootfs"]["diff_ids"][0]
                .as_str()
                .unwrap()
                .to_string();
            let actual = Digest::of(&tar).to_string();
            assert_ne!(actual, claimed, "the fixture's diff_id is right");
            vec!["diff_id".into(), claimed, actual]
        }
        other => panic!("fixture failure {other:?} is new: teach this test what it must say"),
    }
}

/// The image architecture of the build host, as OCI names it.
fn host_oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
#[ignore = "e2e: needs root and the fixture images; run with --include-ignored"]
fn corrupt_fixtures_fail_with_a_message_naming_the_damage() {
    let fixtures = fixture_images();
    let index: Value =
        serde_json::from_slice(&fs::read(fixtures.join("fixtures.json")).unwrap()).unwrap();
    let dir = TestDir::new("build_corrupt");
    let mut names: Vec<(String, String)> = index["fixtures"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, f)| f["kind"] == "corrupt")
        .map(|(n, f)| (n.clone(), f["failure"].as_str().unwrap().to_string()))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "corrupt fixtures: {names:?}");
    for (name, failure) in names {
        let layout = fixtures.join(&name);
        let want = expected_mentions(&layout, &failure);
        let out_dir = dir.join(&name);
        fs::create_dir(&out_dir).unwrap();
        let out = out_dir.join("bin");
        // A fresh oci2bin home per fixture: an intact copy of the same layer verified by an
        // earlier build would otherwise be taken from the build cache by digest, and the
        // damaged source blob never read. The builds fail before cargo runs, so this is cheap.
        let home = dir.join(format!("home-{name}"));
        let built = oci2bin_in(
            &out_dir,
            &[
                "--image",
                &format!("oci:{}:latest", layout.display()),
                "-o",
                out.to_str().unwrap(),
                "--cache-dir",
                home.to_str().unwrap(),
                "-q",
            ],
        );
        let stderr = String::from_utf8_lossy(&built.stderr);
        assert!(
            !built.status.success(),
            "{name} ({failure}) was built:\n{stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{name}: not a clean error:\n{stderr}"
        );
        for needle in &want {
            assert!(
                stderr.contains(needle.as_str()),
                "{name} ({failure}): the error does not mention {needle:?}:\n{stderr}"
            );
        }
        assert!(
            !out.exists(),
            "{name}: a failed build left {}",
            out.display()
        );
        assert_eq!(
            stray_files(&out_dir, &[]),
            Vec::<String>::new(),
            "{name}: a failed build left files"
        );
        // Nothing reached cargo: no generated crate, no target directory.
        assert!(
            !home.join("target").exists(),
            "{name}: cargo ran for a corrupt image"
        );
    }
}

/// Copies the layout directory `from` (flat files and `blobs/sha256`) to `to`.
fn copy_layout(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-r").arg(from).arg(to));
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images, and minutes for a first build in its own cache; run with --include-ignored"]
fn same_input_gives_byte_identical_binaries() {
    let images = test_images();
    let dir = TestDir::new("build_reproducible");
    // Its own oci2bin home, kept between runs (the runtime compiles there once), so that its
    // build cache can be emptied without disturbing anyone else's builds.
    let home: PathBuf = e2e_dir().join("homes/build_reproducible");
    fs::create_dir_all(&home).unwrap();
    let layout = dir.join("busybox");
    copy_layout(&images.join("busybox"), &layout);
    let build = |out: &Path| {
        let built = oci2bin_in(
            dir.path(),
            &[
                "--image",
                &format!("oci:{}:latest", layout.display()),
                "-o",
                out.to_str().unwrap(),
                "--cache-dir",
                home.to_str().unwrap(),
                "-q",
            ],
        );
        assert_built(&built, &format!("reproducible build {}", out.display()));
        built
    };
    let first = dir.join("first");
    build(&first);

    // A fresh build cache and newer inputs, so the layers are recompressed again.
    fs::remove_dir_all(home.join("build")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let started = SystemTime::now();
    for entry in fs::read_dir(&layout).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let f = fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(started).unwrap();
        }
    }
    let second = dir.join("second");
    build(&second);
    assert!(
        home.join("build/recompressed").read_dir().unwrap().count() > 0,
        "the second build did not fill its fresh build cache"
    );

    assert_same(&first, &second);

    // A damaged kept runtime is noticed and built again, to the same bytes. (The home is kept
    // between test runs: the newest runtime is this cargo-oci2bin's.)
    let kept = glob_files(&home.join("runtimes"), "oci2bin-runtime-zstd")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().modified().unwrap())
        .expect("no kept runtime");
    let mut bytes = fs::read(&kept).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&kept, &bytes).unwrap();
    let third = dir.join("third");
    let built = build(&third);
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(
        stderr.contains("does not match its digest"),
        "no warning about the damaged runtime: {stderr}"
    );
    assert_same(&first, &third);
}

/// Every file named `name` under `dir`, recursively.
fn glob_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == name {
                found.push(e.path());
            }
        }
    }
    found
}

/// Panics unless the files `a` and `b` are byte-identical, naming the first difference.
fn assert_same(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert_eq!(
        x.len(),
        y.len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    if let Some(at) = x.iter().zip(&y).position(|(p, q)| p != q) {
        panic!(
            "{} and {} differ from byte {at} on",
            a.display(),
            b.display()
        );
    }
}
