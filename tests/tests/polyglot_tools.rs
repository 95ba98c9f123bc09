//! The ELF+tar polyglot read by tools that know nothing of oci2bin: GNU tar, Python's
//! `tarfile`, skopeo (as a docker-archive and as an oci-archive), a Python ELF reader, a real
//! `dockerd` (`docker load`, then `docker run`), rootless `podman load`; and `cargo oci2bin
//! inspect` checked against the source layouts' configs and against files it must refuse.

use oci2bin_rt::oci::Digest;
use oci2bin_tests::arm64::busybox_rootfs;
use oci2bin_tests::built::{assert_built, inspect, inspect_json, oci2bin_in, pack, strings};
use oci2bin_tests::dockerd::Dockerd;
use oci2bin_tests::elf::{read_elf, EM_X86_64};
use oci2bin_tests::oci_layout::{manifests_for_tag, read_config, read_manifest};
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{
    assert_echo_hi, image_source, shared_binary, test_images, test_user, TestDir, TestUser,
    UserCommand,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The busybox test image built with the default compression (zstd), once per test process.
fn busybox_zstd() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        shared_binary(
            "polyglot_tools",
            "busybox_latest",
            &image_source(&test_images(), "busybox"),
        )
    })
    .clone()
}

/// Builds `source` into `out` with `extra` options.
fn build(source: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["--image", source, "-o", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    assert_built(&oci2bin_in(out.parent().unwrap(), &args), source);
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The payload entries an executable's `inspect --json` says it holds, as tar member names.
fn expected_members(info: &Value) -> BTreeSet<String> {
    let blob = |d: &Value| Digest::parse(d.as_str().unwrap()).unwrap().blob_path();
    let mut names: BTreeSet<String> = [
        "oci2bin.json",
        "oci-layout",
        "index.json",
        "manifest.json",
        "blobs/",
        "blobs/sha256/",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    names.insert(blob(&info["config_digest"]));
    names.insert(blob(&info["manifest_digest"]));
    for l in info["layers"].as_array().unwrap() {
        names.insert(blob(&l["digest"]));
    }
    names
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn gnu_tar_lists_the_payload() {
    let bin = busybox_zstd();
    let info = inspect_json(&bin);
    let listing = stdout(&run_ok(Command::new("tar").arg("tf").arg(&bin)));
    let lines: Vec<&str> = listing.lines().collect();
    // The first entry is the executable itself, named by the ELF header's bytes.
    assert!(
        lines[0].starts_with("\\177ELF"),
        "first entry {:?}",
        lines[0]
    );
    let rest: BTreeSet<String> = lines[1..].iter().map(|s| s.to_string()).collect();
    assert_eq!(rest.len(), lines.len() - 1, "duplicate entries: {lines:?}");
    assert_eq!(rest, expected_members(&info));
    // The metadata comes first in the payload, where the runtime looks for it.
    assert_eq!(lines[1], "oci2bin.json");

    // GNU tar extracts the documents intact.
    let manifest: Value = serde_json::from_slice(
        &run_ok(
            Command::new("tar")
                .arg("xOf")
                .arg(&bin)
                .arg("manifest.json"),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        manifest[0]["Config"],
        Digest::parse(info["config_digest"].as_str().unwrap())
            .unwrap()
            .blob_path()
    );
}

/// Reads a tar with Python's `tarfile` and prints, as JSON, each member's type, size and the
/// sha256 of regular files' contents, in order.
const TARFILE_PY: &str = r#"
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t:
        entry = {"name": m.name, "type": m.type.decode(), "size": m.size}
        if m.isfile():
            entry["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        out.append(entry)
print(json.dumps(out))
"#;

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn python_tarfile_reads_every_blob_intact() {
    let bin = busybox_zstd();
    let info = inspect_json(&bin);
    let out = run_ok(Command::new("python3").args(["-c", TARFILE_PY]).arg(&bin));
    let members: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let first = &members[0];
    assert!(
        first["name"].as_str().unwrap().starts_with("\x7fELF"),
        "{first}"
    );
    // The first entry runs exactly to the payload, which starts with its metadata entry and
    // lies wholly inside the file.
    let entry1 = first["size"].as_u64().unwrap();
    let payload_at = 512 + entry1.div_ceil(512) * 512;
    let bytes = fs::read(&bin).unwrap();
    assert_eq!(
        &bytes[payload_at as usize..payload_at as usize + 13],
        b"oci2bin.json\0",
        "no payload where the first entry ends ({payload_at})"
    );
    assert!(payload_at + info["payload_size"].as_u64().unwrap() <= bytes.len() as u64);
    let names: BTreeSet<String> = members[1..]
        .iter()
        .map(|m| {
            m["name"]
                .as_str()
                .unwrap()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let want: BTreeSet<String> = expected_members(&info)
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    assert_eq!(names, want);
    // Every blob hashes to its name: nothing was damaged by being embedded.
    let mut blobs = 0;
    for m in &members[1..] {
        let name = m["name"].as_str().unwrap();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(m["sha256"], hex, "blob {name}");
            blobs += 1;
        }
    }
    assert_eq!(blobs, 2 + info["layers"].as_array().unwrap().len());
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn skopeo_reads_it_as_docker_archive_and_oci_archive() {
    let images = test_images();
    let bin = busybox_zstd();
    let info = inspect_json(&bin);
    let source_config = read_config(&images.join("busybox"), "latest");
    let skopeo = |args: &[&str]| {
        let mut cmd = Command::new("skopeo");
        cmd.args(args);
        run_ok(&mut cmd).stdout
    };
    let docker = format!("docker-archive:{}", bin.display());
    let v: Value = serde_json::from_slice(&skopeo(&["inspect", &docker])).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Env"], source_config["config"]["Env"]);
    // A docker archive names layers by their uncompressed digests.
    let diff_ids: Vec<Value> = info["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].clone())
        .collect();
    assert_eq!(v["Layers"].as_array().unwrap(), &diff_ids);
    assert_eq!(
        v["Layers"].as_array().unwrap(),
        source_config["rootfs"]["diff_ids"].as_array().unwrap()
    );
    let raw_config = skopeo(&["inspect", "--config", "--raw", &docker]);
    assert_eq!(Digest::of(&raw_config).to_string(), info["config_digest"]);

    let oci = format!("oci-archive:{}", bin.display());
    let v: Value = serde_json::from_slice(&skopeo(&["inspect", &oci])).unwrap();
    assert_eq!(v["Digest"], info["manifest_digest"]);
    let digests: Vec<Value> = info["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].clone())
        .collect();
    assert_eq!(v["Layers"].as_array().unwrap(), &digests);
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn load_segments_keep_their_alignment_after_the_shift() {
    let images = test_images();
    let user = test_user();
    let bin = busybox_zstd();
    let dir = TestDir::new("polyglot_elf");
    let plain = dir.join("plain");
    build(
        &image_source(&images, "busybox"),
        &plain,
        &["--no-polyglot"],
    );

    let poly = read_elf(&bin);
    let elf = read_elf(&plain);
    assert_eq!(poly.machine, EM_X86_64);
    assert!(!poly.loads().is_empty());
    assert_eq!(poly.load_problems(), Vec::<String>::new());
    assert_eq!(elf.load_problems(), Vec::<String>::new());
    // Same segments in memory; in the file, all moved by one shift that keeps every
    // segment's offset congruent to its address (a multiple of the largest p_align).
    assert_eq!(poly.phdrs.len(), elf.phdrs.len());
    let shift = poly.file_size - elf.file_size;
    let max_align = elf.max_load_align();
    assert!(max_align >= 4096, "largest p_align {max_align}");
    assert_eq!(
        shift % max_align,
        0,
        "shift {shift}, largest p_align {max_align}"
    );
    for (p, e) in poly.phdrs.iter().zip(&elf.phdrs) {
        assert_eq!(
            (p.p_type, p.vaddr, p.filesz, p.align),
            (e.p_type, e.vaddr, e.filesz, e.align)
        );
        assert_eq!(p.offset, e.offset + shift, "{p:?} vs {e:?}");
    }
    assert_eq!(poly.phoff, elf.phoff + shift);
    // Beyond the headers the bytes are the plain executable's.
    let (pb, eb) = (fs::read(&bin).unwrap(), fs::read(&plain).unwrap());
    let differing = pb[shift as usize..]
        .iter()
        .zip(&eb)
        .filter(|(a, b)| a != b)
        .count();
    // e_phoff and e_shoff, every p_offset, every sh_offset but the null section's.
    let patched_bytes = 8 * (2 + poly.phdrs.len() + poly.shnum as usize);
    assert!(
        differing <= patched_bytes,
        "{differing} bytes differ from the plain ELF beyond the shift"
    );
    // And the kernel runs both.
    for b in [&bin, &plain] {
        assert_echo_hi(b, &user, &dir, "cache");
    }
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images and dockerd; run with --include-ignored"]
fn docker_loads_and_runs_a_gzip_build() {
    let images = test_images();
    let dir = TestDir::new("polyglot_docker");
    let bin = dir.join("bb_gzip");
    build(
        &image_source(&images, "busybox"),
        &bin,
        &["--compress", "gzip"],
    );
    let info = inspect_json(&bin);
    let source_config = read_config(&images.join("busybox"), "latest");
    let daemon = Dockerd::start();
    let load = daemon
        .docker()
        .arg("load")
        .arg("-i")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "docker load failed:\n{}\n{}",
        String::from_utf8_lossy(&load.stderr),
        daemon.log()
    );
    assert!(
        stdout(&load).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&load)
    );
    let out = run_ok(daemon.docker().args(["image", "inspect", "busybox:latest"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &v[0];
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(img["Id"], info["config_digest"]);
    assert_eq!(img["Architecture"], "amd64");
    for key in ["Cmd", "Entrypoint", "Env"] {
        assert_eq!(
            img["Config"][key], source_config["config"][key],
            "docker's {key}"
        );
    }
    assert_eq!(img["RootFS"]["Layers"], source_config["rootfs"]["diff_ids"]);
    // The layers docker unpacked are the image's: it runs.
    let run = daemon
        .docker()
        .args(["run", "--rm", "--network", "none", "busybox:latest"])
        .args(["sh", "-c", "echo hi from $(cat /proc/1/comm)"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&run),
        "hi from sh\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    drop(daemon);
}

fn podman(user: &TestUser, home: &Path, runtime: &Path, args: &[&str]) -> std::process::Output {
    let out = UserCommand::new(user, "/usr/bin/podman")
        .arg("--storage-driver=vfs")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", runtime)
        .current_dir(home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman {args:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images and podman; run with --include-ignored"]
fn rootless_podman_loads_a_zstd_build() {
    let images = test_images();
    let user = test_user();
    let bin = busybox_zstd();
    let info = inspect_json(&bin);
    let source_config = read_config(&images.join("busybox"), "latest");
    let dir = TestDir::new("polyglot_podman");
    let home = dir.user_dir("home", &user);
    let runtime = dir.user_dir("run", &user);
    let _pause = oci2bin_tests::tools::PodmanPause(runtime.clone());
    let load = podman(
        &user,
        &home,
        &runtime,
        &["load", "-i", bin.to_str().unwrap()],
    );
    assert!(
        stdout(&load).contains("Loaded image: docker.io/library/busybox:latest"),
        "{}",
        stdout(&load)
    );
    let out = podman(
        &user,
        &home,
        &runtime,
        &["image", "inspect", "docker.io/library/busybox:latest"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &v[0];
    let config_hex = info["config_digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    assert_eq!(img["Id"], config_hex);
    assert_eq!(img["Digest"], info["manifest_digest"]);
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["Os"], "linux");
    for key in ["Cmd", "Entrypoint", "Env", "WorkingDir", "User"] {
        assert_eq!(
            img["Config"][key], source_config["config"][key],
            "podman's {key}"
        );
    }
    assert_eq!(img["RootFS"]["Layers"], source_config["rootfs"]["diff_ids"]);
}

/// `Key: value` lines of `inspect`'s text output.
fn text_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// How `inspect`'s text shows an optional list: `["a", "b"]`, or `-`.
fn shown(v: &Option<Vec<String>>) -> String {
    v.as_ref()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "-".into())
}

/// Checks `inspect` of `bin` (text and JSON) against the OCI layout it was built from.
fn check_inspect(bin: &Path, layout: &Path, reference: &str) {
    let config = read_config(layout, "latest");
    let manifest = read_manifest(layout, "latest");
    let entry = &manifests_for_tag(layout, "latest")[0];
    let c = &config["config"];
    let ports: Option<Vec<String>> = c["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect());
    let mut platform = format!(
        "{}/{}",
        config["os"].as_str().unwrap(),
        config["architecture"].as_str().unwrap()
    );
    if let Some(v) = config["variant"].as_str() {
        platform = format!("{platform}/{v}");
    }

    let j = inspect_json(bin);
    let what = bin.display();
    assert_eq!(j["reference"], reference, "{what}");
    assert_eq!(j["arch"], "x86_64", "{what}");
    assert_eq!(j["platform"], platform.as_str(), "{what}");
    assert_eq!(j["polyglot_valid"], true, "{what}: {}", j["polyglot"]);
    assert_eq!(j["payload_kind"], "attached", "{what}");
    assert_eq!(j["source_manifest_digest"], entry["digest"], "{what}");
    // Only the layout's name: the build machine's directories are not recorded.
    assert_eq!(
        j["source"],
        format!(
            "oci:{}:latest",
            layout.file_name().unwrap().to_string_lossy()
        ),
        "{what}"
    );
    let jc = &j["config"];
    assert_eq!(
        strings(&jc["entrypoint"]),
        strings(&c["Entrypoint"]),
        "{what}"
    );
    assert_eq!(strings(&jc["cmd"]), strings(&c["Cmd"]), "{what}");
    assert_eq!(strings(&jc["env"]), strings(&c["Env"]), "{what}");
    assert_eq!(
        jc["working_dir"].as_str(),
        c["WorkingDir"].as_str(),
        "{what}"
    );
    assert_eq!(jc["user"].as_str(), c["User"].as_str(), "{what}");
    let mut jports = strings(&jc["exposed_ports"]);
    if let Some(p) = jports.as_mut() {
        p.sort();
    }
    assert_eq!(jports, ports, "{what}");
    let layers = j["layers"].as_array().unwrap();
    assert_eq!(layers.len(), manifest["layers"].as_array().unwrap().len());
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["diff_id"]).collect();
    let want: Vec<&Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(diff_ids, want, "{what}");
    let size = fs::metadata(bin).unwrap().len();
    assert_eq!(j["file_size"], size);
    assert_eq!(
        j["runtime_size"].as_u64().unwrap() + j["payload_size"].as_u64().unwrap(),
        size
    );

    let text = inspect(bin, false);
    assert!(text.status.success());
    let text = stdout(&text);
    let f = text_fields(&text);
    assert_eq!(f["Image"], reference, "{text}");
    assert_eq!(f["Platform"], platform, "{text}");
    assert!(f["Polyglot"].starts_with("valid"), "{text}");
    assert_eq!(f["Entrypoint"], shown(&strings(&c["Entrypoint"])), "{text}");
    assert_eq!(f["Cmd"], shown(&strings(&c["Cmd"])), "{text}");
    assert_eq!(f["Env"], shown(&strings(&c["Env"])), "{text}");
    assert_eq!(
        f["WorkingDir"],
        c["WorkingDir"].as_str().unwrap_or("-"),
        "{text}"
    );
    assert_eq!(f["User"], c["User"].as_str().unwrap_or("-"), "{text}");
    if let Some(p) = &ports {
        for port in p {
            assert!(f["ExposedPorts"].contains(port.as_str()), "{text}");
        }
    } else {
        assert_eq!(f["ExposedPorts"], "-", "{text}");
    }
    let layer_lines = text
        .lines()
        .skip_while(|l| !l.starts_with("Layers:"))
        .skip(1)
        .filter(|l| l.contains("sha256:"))
        .count();
    assert_eq!(layer_lines, layers.len(), "{text}");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn inspect_matches_the_source_configs() {
    let images = test_images();
    check_inspect(
        &busybox_zstd(),
        &images.join("busybox"),
        "docker.io/library/busybox:latest",
    );
    let dir = TestDir::new("polyglot_inspect");
    let redis = dir.join("redis_latest");
    build(&image_source(&images, "redis"), &redis, &[]);
    check_inspect(
        &redis,
        &images.join("redis"),
        "docker.io/library/redis:latest",
    );

    // An image that sets every field the test images leave out.
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs, Path::new("/bin/busybox"));
    let layout = dir.join("fields");
    pack(
        &rootfs,
        &layout,
        "latest",
        "amd64",
        &[
            "--entrypoint",
            r#"["/bin/echo","from entrypoint"]"#,
            "--cmd",
            r#"["a","b c"]"#,
            "--env",
            "A=1",
            "--env",
            "B=two words",
            "--workdir",
            "/tmp",
            "--user",
            "0:0",
            "--expose",
            "8080/tcp",
            "--expose",
            "53/udp",
        ],
    );
    let bin = dir.join("fields_latest");
    build(&format!("oci:{}:latest", layout.display()), &bin, &[]);
    check_inspect(&bin, &layout, "docker.io/library/fields:latest");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn inspect_says_what_a_file_is_not() {
    let dir = TestDir::new("polyglot_not_oci2bin");
    let text = dir.join("notes.txt");
    fs::write(&text, "just some text\n").unwrap();
    let truncated = dir.join("truncated");
    let full = fs::read(busybox_zstd()).unwrap();
    fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let true_bin = fs::canonicalize("/bin/true").unwrap();
    for (file, says) in [
        (true_bin.as_path(), "no .oci2bin section"),
        (text.as_path(), "not an ELF file"),
        (truncated.as_path(), "truncated"),
    ] {
        for json in [false, true] {
            let out = inspect(file, json);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "inspect {} succeeded:\n{}",
                file.display(),
                stdout(&out)
            );
            assert!(
                stdout(&out).is_empty(),
                "inspect {} printed a report",
                file.display()
            );
            assert!(
                err.contains(&*file.display().to_string()) && err.contains(says),
                "inspect {} (json: {json}) does not say {says:?}:\n{err}",
                file.display()
            );
            if file != truncated.as_path() {
                assert!(err.contains("not an oci2bin executable"), "{err}");
            }
        }
    }
}
