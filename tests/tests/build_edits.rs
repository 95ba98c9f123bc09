//! Image edits at build time, end to end: config edits seen by `inspect` and in effect when
//! the binary runs as an unprivileged user, added files visible inside with their modes,
//! skopeo and rootless podman accepting the edited binary, `--strip` making postgres
//! smaller while it still answers `select 1`, and `--squash` giving one layer that unpacks
//! to the same tree as the layered fixture.

use oci2bin_tests::built::{inspect_json, strings};
use oci2bin_tests::paths::e2e_dir;
use oci2bin_tests::procs::{signal, wait_for_child_exe};
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{
    build_binary, fixture_images, free_port, image_source, nosub_user, postgres_query, test_images,
    test_user, CacheState, TestDir, TestUser, UserCommand,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where this file's binaries and inputs go (readable by the test users).
fn bins() -> PathBuf {
    let dir = e2e_dir().join("bins/build_edits");
    fs::create_dir_all(&dir).unwrap();
    for d in [e2e_dir().join("bins"), dir.clone()] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Builds `source` into `bins()/name` with `extra` options; returns the path and the JSON
/// build report.
fn build(name: &str, source: &str, extra: &[&str]) -> (PathBuf, Value) {
    let out = bins().join(name);
    let mut args = vec!["--force", "--message-format", "json"];
    args.extend_from_slice(extra);
    let built = build_binary(source, &out, &args);
    assert!(
        built.status.success(),
        "cargo oci2bin --image {source} {extra:?} failed with {}:\n{}",
        built.status,
        String::from_utf8_lossy(&built.stderr)
    );
    let report = serde_json::from_slice(&built.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&built.stdout)
        )
    });
    (out, report)
}

/// The host files the busybox edits add.
fn inputs() -> PathBuf {
    let dir = bins().join("inputs");
    fs::create_dir_all(dir.join("site/sub")).unwrap();
    fs::write(dir.join("greeting"), "hello from the build machine\n").unwrap();
    fs::write(dir.join("tool.sh"), "#!/bin/sh\necho tool ran\n").unwrap();
    fs::write(dir.join("site/index.html"), "<p>page</p>\n").unwrap();
    fs::write(dir.join("site/sub/run.sh"), "#!/bin/sh\necho sub\n").unwrap();
    fs::set_permissions(
        dir.join("site/sub/run.sh"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    dir
}

const SCRIPT: &str = "echo \"FOO=$FOO\"; pwd; cat /etc/greeting; /usr/local/bin/tool; \
    stat -c '%n %a %u' /etc/greeting /usr/local/bin/tool /srv/www /srv/www/index.html \
    /srv/www/sub/run.sh /tmp";

/// busybox with every config edit and two added files and a directory, built once.
fn edited_busybox() -> &'static (PathBuf, Value) {
    static BIN: OnceLock<(PathBuf, Value)> = OnceLock::new();
    BIN.get_or_init(|| {
        let inputs = inputs();
        let cmd = serde_json::to_string(&["-c", SCRIPT]).unwrap();
        let greeting = format!("{}:/etc/greeting:0640", inputs.join("greeting").display());
        let tool = format!(
            "{}:/usr/local/bin/tool:0755",
            inputs.join("tool.sh").display()
        );
        let site = format!("{}:/srv/www", inputs.join("site").display());
        build(
            "busybox_edited",
            &image_source(&test_images(), "busybox"),
            &[
                "--entrypoint",
                "/bin/sh",
                "--cmd",
                &cmd,
                "--env",
                "FOO=bar",
                "--env",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "--workdir",
                "/srv/www",
                "--user",
                "0:0",
                "--label",
                "org.example.edited=yes",
                "--expose",
                "8080",
                "--add-file",
                &greeting,
                "--add-file",
                &tool,
                "--add-dir",
                &site,
            ],
        )
    })
}

fn run_as(user: &TestUser, dir: &TestDir, bin: &Path, args: &[&str]) -> Output {
    let cache = dir.user_dir("cache", user);
    let out = UserCommand::new(user, bin)
        .args(args)
        .cache_dir(&cache)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed with {}:\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn config_edits_show_in_inspect_and_take_effect() {
    let (bin, report) = edited_busybox();
    let info = inspect_json(bin);
    let c = &info["config"];
    assert_eq!(strings(&c["entrypoint"]).unwrap(), ["/bin/sh"]);
    assert_eq!(strings(&c["cmd"]).unwrap(), ["-c", SCRIPT]);
    let env = strings(&c["env"]).unwrap();
    assert!(env.contains(&"FOO=bar".to_string()), "{env:?}");
    // --env PATH=... replaced the image's PATH instead of adding a second one.
    assert_eq!(
        env.iter()
            .filter(|e| e.starts_with("PATH="))
            .collect::<Vec<_>>(),
        ["PATH=/usr/local/bin:/usr/bin:/bin"]
    );
    assert_eq!(c["working_dir"], "/srv/www");
    assert_eq!(c["user"], "0:0");
    assert_eq!(strings(&c["exposed_ports"]).unwrap(), ["8080/tcp"]);
    // A new image: its own config digest, the source's recorded in the report.
    let edits = &report["edits"];
    assert_ne!(edits["source_config_digest"], report["config_digest"]);
    assert_eq!(info["config_digest"], report["config_digest"]);
    assert_eq!(
        edits["layers_after"],
        edits["layers_before"].as_u64().unwrap() + 1
    );
    assert_eq!(
        info["layers"].as_array().unwrap().len() as u64,
        edits["layers_after"].as_u64().unwrap()
    );

    let dir = TestDir::new("build_edits_config");
    let out = run_as(&test_user(), &dir, bin, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "FOO=bar", "{text}");
    assert_eq!(lines[1], "/srv/www", "{text}");
    assert_eq!(lines[2], "hello from the build machine", "{text}");
    assert_eq!(lines[3], "tool ran", "{text}");
    // --add-file modes as given, --add-dir modes normalised (0755 for the owner-executable
    // file, 0644 for the other), owner root; /tmp keeps the image's sticky mode.
    assert_eq!(
        &lines[4..],
        [
            "/etc/greeting 640 0",
            "/usr/local/bin/tool 755 0",
            "/srv/www 755 0",
            "/srv/www/index.html 644 0",
            "/srv/www/sub/run.sh 755 0",
            "/tmp 1777 0",
        ],
        "{text}"
    );
    // The command line still replaces the edited Cmd, as with docker run (after `--`: `-c`
    // would otherwise be taken for docker's --cpu-shares, which the runtime refuses).
    let out = run_as(&test_user(), &dir, bin, &["--", "-c", "echo replaced"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "replaced\n");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn entrypoint_alone_resets_cmd_and_empty_clears_it() {
    let source = image_source(&test_images(), "busybox");
    let (bin, _) = build("busybox_entry", &source, &["--entrypoint", "/bin/echo"]);
    let c = &inspect_json(&bin)["config"];
    assert_eq!(strings(&c["entrypoint"]).unwrap(), ["/bin/echo"]);
    assert!(c["cmd"].is_null(), "{c}");
    let dir = TestDir::new("build_edits_entry");
    let out = run_as(&test_user(), &dir, &bin, &["from", "echo"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from echo\n");
    let (bin, _) = build(
        "busybox_noentry",
        &source,
        &["--entrypoint", "", "--cmd", "[\"/bin/echo\", \"cmd only\"]"],
    );
    let c = &inspect_json(&bin)["config"];
    assert!(c["entrypoint"].is_null(), "{c}");
    let out = run_as(&test_user(), &dir, &bin, &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cmd only\n");
}

/// `skopeo inspect --config --raw REF`: the image config's exact bytes.
fn skopeo_config(reference: &str) -> Output {
    run_ok(Command::new("skopeo").args(["inspect", "--config", "--raw", reference]))
}

#[test]
#[ignore = "e2e: needs root, the test images, skopeo and podman; run with --include-ignored"]
fn skopeo_and_rootless_podman_accept_the_edited_binary() {
    let (bin, report) = edited_busybox();
    let info = inspect_json(bin);
    let diff_ids: Vec<Value> = info["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].clone())
        .collect();
    let skopeo = run_ok(
        Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", bin.display())]),
    );
    let v: Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), diff_ids.len());
    assert_eq!(v["Labels"]["org.example.edited"], "yes");
    assert!(strings(&v["Env"]).unwrap().contains(&"FOO=bar".to_string()));
    let raw = skopeo_config(&format!("oci-archive:{}", bin.display()));
    assert_eq!(
        oci2bin_rt::oci::Digest::of(&raw.stdout).to_string(),
        report["config_digest"].as_str().unwrap()
    );

    let user = test_user();
    let dir = TestDir::new("build_edits_podman");
    let home = dir.user_dir("home", &user);
    let runtime = dir.user_dir("run", &user);
    let _pause = oci2bin_tests::tools::PodmanPause(runtime.clone());
    let podman = |args: &[&str]| {
        let out = UserCommand::new(&user, "/usr/bin/podman")
            .arg("--storage-driver=vfs")
            .args(args)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .current_dir(&home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    podman(&["load", "-i", bin.to_str().unwrap()]);
    let out = podman(&["image", "inspect", "docker.io/library/busybox:latest"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &v[0];
    assert_eq!(
        format!("sha256:{}", img["Id"].as_str().unwrap()),
        report["config_digest"].as_str().unwrap()
    );
    assert_eq!(img["RootFS"]["Layers"], Value::Array(diff_ids));
    assert_eq!(img["Config"]["WorkingDir"], "/srv/www");
    assert_eq!(img["Config"]["Entrypoint"], serde_json::json!(["/bin/sh"]));
}

/// Waits for postgres to answer `select 1` on `port`.
fn select_one(port: u16, guard: &mut oci2bin_tests::ChildGuard) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match postgres_query(port, "postgres", "select 1") {
            Ok(rows) => {
                assert_eq!(rows, [[Some("1".to_string())]]);
                return;
            }
            Err(e) => {
                if let Some(status) = guard.try_status() {
                    panic!("postgres exited with {status} ({e}):\n{}", guard.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "postgres did not answer ({e}):\n{}",
                    guard.log()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn strip_makes_postgres_smaller_and_it_still_answers() {
    let source = image_source(&test_images(), "postgres-user");
    let (plain, _) = build("postgres_plain", &source, &[]);
    // The test image is slimmed when it is built (no docs, man pages or apt lists), so the
    // defaults find little; the globs take what this server does not read: leap-second
    // zones, postgresql-common's test suite, shell completions.
    let (stripped, report) = build(
        "postgres_stripped",
        &source,
        &[
            "--strip",
            "--strip-path",
            "/usr/share/zoneinfo/right",
            "--strip-path",
            "/usr/share/postgresql-common/t",
            "--strip-path",
            "/usr/share/bash-completion/**",
        ],
    );
    let edits = &report["edits"];
    let saved = edits["stripped_bytes"].as_u64().unwrap();
    assert!(saved > 500_000, "only {saved} bytes stripped: {edits}");
    assert!(edits["stripped_entries"].as_u64().unwrap() > 100, "{edits}");
    let (plain_size, stripped_size) = (
        fs::metadata(&plain).unwrap().len(),
        fs::metadata(&stripped).unwrap().len(),
    );
    assert!(
        stripped_size < plain_size,
        "stripped {stripped_size} >= plain {plain_size}"
    );
    eprintln!("postgres: {plain_size} -> {stripped_size} bytes, {saved} bytes of files stripped");

    let user = nosub_user();
    let dir = TestDir::new("build_edits_postgres");
    let cache = dir.user_dir("cache", &user);
    let port = free_port();
    let log = dir.join("postgres.log");
    fs::write(&log, "").unwrap();
    std::os::unix::fs::chown(&log, Some(user.uid), Some(user.gid)).unwrap();
    let mut guard = UserCommand::new(&user, &stripped)
        .args(["-e", &format!("PGPORT={port}")])
        .cache_dir(&cache)
        .current_dir(dir.path())
        .spawn(&log)
        .unwrap();
    let proc = wait_for_child_exe(guard.id() as i32, &stripped, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the binary did not start: {}", guard.log()));
    select_one(port, &mut guard);
    // Nothing of what was stripped is left in the unpacked image.
    let rootfs = CacheState::read(&cache).single_rootfs(&cache);
    assert_eq!(
        fs::read_dir(rootfs.join("usr/share/doc"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(signal(&proc, libc::SIGTERM));
    let status = guard
        .wait_timeout(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("postgres did not stop:\n{}", guard.log()));
    assert_eq!(status.code(), Some(0), "{}", guard.log());
}

/// What a tree holds: kind, mode, size, content digest or link target, per path.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let rel = rel.join(entry.unwrap().file_name());
            let abs = root.join(&rel);
            let m = fs::symlink_metadata(&abs).unwrap();
            let t = m.file_type();
            let what = if t.is_dir() {
                stack.push(rel.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else if t.is_symlink() {
                format!("symlink {}", fs::read_link(&abs).unwrap().display())
            } else if t.is_file() {
                let mut bytes = Vec::new();
                fs::File::open(&abs)
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
                format!(
                    "file {:o} {} {} mtime {}",
                    m.mode() & 0o7777,
                    m.len(),
                    oci2bin_rt::oci::Digest::of(&bytes),
                    m.mtime()
                )
            } else {
                format!("other {:o}", m.mode() & 0o7777)
            };
            out.insert(rel.to_string_lossy().into_owned(), what);
        }
    }
    out
}

/// Runs `bin` once as `user` (unpacking it) and returns its unpacked tree.
fn unpacked_tree(
    bin: &Path,
    user: &TestUser,
    dir: &TestDir,
    name: &str,
) -> BTreeMap<String, String> {
    let cache = dir.user_dir(name, user);
    let out = UserCommand::new(user, bin)
        .args(["/bin/busybox", "true"])
        .cache_dir(&cache)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tree(&CacheState::read(&cache).single_rootfs(&cache))
}

#[test]
#[ignore = "e2e: needs root and the fixture images; run with --include-ignored"]
fn squash_gives_one_layer_with_the_same_tree() {
    let source = image_source(&fixture_images(), "layered");
    let (layered, _) = build("layered_plain", &source, &[]);
    let (squashed, report) = build("layered_squashed", &source, &["--squash"]);
    let before = inspect_json(&layered)["layers"].as_array().unwrap().len();
    assert!(before >= 3, "{before}");
    let info = inspect_json(&squashed);
    assert_eq!(info["layers"].as_array().unwrap().len(), 1);
    assert_eq!(report["edits"]["squashed"], true);
    // The history says what happened, and has one non-empty entry for the one layer.
    let raw = skopeo_config(&format!("docker-archive:{}", squashed.display()));
    let config: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let history = config["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        let non_empty: Vec<&Value> = history
            .iter()
            .filter(|h| h["empty_layer"] != true)
            .collect();
        assert_eq!(non_empty.len(), 1, "{history:?}");
        assert_eq!(non_empty[0]["created_by"], "cargo oci2bin --squash");
    }

    let user = test_user();
    let dir = TestDir::new("build_edits_squash");
    let want = unpacked_tree(&layered, &user, &dir, "cache-layered");
    let got = unpacked_tree(&squashed, &user, &dir, "cache-squashed");
    let diff: Vec<String> = want
        .iter()
        .filter(|(p, w)| got.get(*p) != Some(w))
        .map(|(p, w)| format!("{p}: layered {w}, squashed {:?}", got.get(p)))
        .chain(
            got.keys()
                .filter(|p| !want.contains_key(*p))
                .map(|p| format!("{p}: only in the squashed tree")),
        )
        .collect();
    assert!(diff.is_empty(), "the trees differ:\n{}", diff.join("\n"));
    assert!(want.len() > 20, "{} entries", want.len());
}
