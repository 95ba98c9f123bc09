//! The build CLI refuses to destroy files and leaves nothing behind: every unsafe `-o` is
//! refused before any work with the input intact, Ctrl-C and SIGKILL leave no temporaries
//! (or the next build removes them), misspelt references and bare paths fail fast with a
//! suggestion, unreachable registries fail within seconds, `*-gnu` targets and mismatched
//! platforms are refused, a layout builds to the same bytes from any directory, the cache can
//! be listed and pruned, and the bash completion loads.

use oci2bin_rt::oci::Digest;
use oci2bin_tests::built::{assert_built, inspect_json, oci2bin_in};
use oci2bin_tests::paths::e2e_dir;
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{cargo_oci2bin, image_source, test_images, TestDir};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Digest of every file under `dir` (path and content), to show an input is untouched.
fn tree_digest(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.is_file() {
            files.push(d);
            continue;
        }
        for e in fs::read_dir(&d).unwrap().flatten() {
            stack.push(e.path());
        }
    }
    files.sort();
    let mut all = Vec::new();
    for f in files {
        all.extend(f.to_string_lossy().as_bytes());
        all.extend(fs::read(&f).unwrap());
    }
    Digest::of(&all).to_string()
}

/// Names in `dir` that start with `.oci2bin-` (the output's temporary files).
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".oci2bin-"))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a build that must fail, and returns its stderr.
fn refused(cwd: &Path, args: &[&str], what: &str) -> String {
    let out = oci2bin_in(cwd, args);
    assert!(
        !out.status.success(),
        "{what}: the build succeeded but should have been refused"
    );
    stderr(&out)
}

/// A cache root of its own for a test, with the runtime already compiled: the default root's
/// kept runtimes (filled by a build here first) are copied in, so no cargo build runs.
fn home_with_runtime(name: &str, dir: &TestDir) -> PathBuf {
    let images = test_images();
    let warm = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &image_source(&images, "busybox"),
            "-o",
            dir.join("warm").to_str().unwrap(),
            "-q",
        ],
    );
    assert_built(&warm, "warming the default cache root");
    let default = oci2bin_rt::location::cache_root().expect("a cache root");
    let home = e2e_dir().join("homes").join(name);
    let _ = fs::remove_dir_all(&home);
    fs::create_dir_all(&home).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(default.join("runtimes"))
            .arg(&home),
    );
    home
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn unsafe_outputs_are_refused_before_any_work_and_inputs_stay_intact() {
    let images = test_images();
    let dir = TestDir::new("build_safety_outputs");
    let layout = dir.join("busybox");
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(images.join("busybox"))
            .arg(&layout),
    );
    let archive = dir.join("busybox.tar");
    fs::copy(images.join("busybox.docker-archive.tar"), &archive).unwrap();
    let before = tree_digest(&layout);
    let archive_before = tree_digest(&archive);
    let src = format!("oci:{}:latest", layout.display());
    let arc = format!("docker-archive:{}", archive.display());
    let out_dir = dir.join("out");
    fs::create_dir(&out_dir).unwrap();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![src.clone(), layout.join("index.json").display().to_string()],
            "lies inside the OCI layout",
        ),
        (
            vec![src.clone(), layout.join("blobs/new").display().to_string()],
            "lies inside the OCI layout",
        ),
        (
            vec![arc.clone(), archive.display().to_string()],
            "is the archive",
        ),
        (
            vec![src.clone(), out_dir.display().to_string()],
            "is a directory",
        ),
        (vec![src.clone(), ".".into()], "is a directory"),
        (vec![src.clone(), "/dev/null".into()], "is a device"),
        (
            vec![
                src.clone(),
                dir.join("no/such/dir/app").display().to_string(),
            ],
            "does not exist",
        ),
    ];
    for (args, message) in &cases {
        let started = Instant::now();
        let err = refused(
            &out_dir,
            &["--image", &args[0], "-o", &args[1], "--force"],
            &format!("-o {}", args[1]),
        );
        assert!(
            err.contains(message),
            "-o {}: expected {message:?} in: {err}",
            args[1]
        );
        // Refused before the runtime or a layer is touched.
        assert!(
            !err.contains("Image ") && started.elapsed() < Duration::from_secs(3),
            "-o {}: refused only after work ({:?}): {err}",
            args[1],
            started.elapsed()
        );
    }
    assert!(
        Path::new("/dev/null")
            .metadata()
            .unwrap()
            .file_type()
            .is_char_device(),
        "/dev/null is no longer a device"
    );
    assert_eq!(tree_digest(&layout), before, "the layout was changed");
    assert_eq!(
        tree_digest(&archive),
        archive_before,
        "the archive was changed"
    );

    // Someone's file is kept without --force, replaced with it; an earlier output is replaced.
    let notes = out_dir.join("notes");
    fs::write(&notes, "precious").unwrap();
    let err = refused(&out_dir, &["--image", &src, "-o", "notes"], "-o notes");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(fs::read_to_string(&notes).unwrap(), "precious");
    let built = oci2bin_in(&out_dir, &["--image", &src, "-o", "app", "-q"]);
    assert_built(&built, "-o app");
    let again = oci2bin_in(&out_dir, &["--image", &src, "-o", "app", "-q"]);
    assert_built(&again, "-o app over an earlier output");
    let forced = oci2bin_in(&out_dir, &["--image", &src, "-o", "notes", "--force", "-q"]);
    assert_built(&forced, "-o notes --force");
    assert_eq!(
        inspect_json(&notes)["reference"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(leftovers(&out_dir), Vec::<String>::new());
    assert_eq!(tree_digest(&layout), before, "the layout was changed");
}

/// Starts a build of postgres into `out` with the cache root `home`, waits until it reads
/// layers, and returns the child.
fn start_slow_build(dir: &TestDir, home: &Path, out: &Path) -> std::process::Child {
    let images = test_images();
    let mut child = Command::new(cargo_oci2bin())
        .current_dir(dir.path())
        .args([
            "oci2bin",
            "--image",
            &image_source(&images, "postgres"),
            "-o",
        ])
        .arg(out)
        .arg("--cache-dir")
        .arg(home)
        .args(["--compress", "xz:6"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The first layer line: recompression has begun, temporaries exist.
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Image ") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(700));
    std::thread::spawn(move || for _ in lines {});
    child
}

fn tmp_entries(home: &Path) -> Vec<String> {
    match fs::read_dir(home.join("build/tmp")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn interrupted_and_killed_builds_leave_no_temporaries() {
    let dir = TestDir::new("build_safety_signals");
    let home = home_with_runtime("build_safety_signals", &dir);
    let out = dir.join("pg");
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = start_slow_build(&dir, &home, &out);
        assert!(
            !tmp_entries(&home).is_empty(),
            "the build has no temporary directory while recompressing"
        );
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait_with_output().unwrap().status;
        assert_eq!(status.code(), Some(code), "after signal {signal}: {status}");
        assert_eq!(
            tmp_entries(&home),
            Vec::<String>::new(),
            "after signal {signal}"
        );
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        assert!(!out.exists());
    }
    // SIGKILL cannot be caught: the next build removes what the killed one left.
    let mut child = start_slow_build(&dir, &home, &out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !tmp_entries(&home).is_empty(),
        "SIGKILL left nothing to clean up?"
    );
    let images = test_images();
    let next = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &image_source(&images, "busybox"),
            "-o",
            dir.join("bb").to_str().unwrap(),
            "--cache-dir",
            home.to_str().unwrap(),
            "-q",
        ],
    );
    assert_built(&next, "the build after a killed one");
    assert_eq!(tmp_entries(&home), Vec::<String>::new());
}

#[test]
#[ignore = "e2e: needs root (builds the CLI); run with --include-ignored"]
fn bad_references_fail_fast_with_a_suggestion() {
    let dir = TestDir::new("build_safety_references");
    let layout = dir.join("layout");
    fs::create_dir(&layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(layout.join("index.json"), "{}").unwrap();
    let file = dir.join("image.tar");
    fs::write(&file, "not really").unwrap();
    let l = layout.display().to_string();
    let f = file.display().to_string();
    let cases = [
        (format!("oic:{l}"), "unknown transport `oic:`".to_string()),
        (l.clone(), format!("did you mean `oci:{l}`")),
        (f.clone(), format!("did you mean `docker-archive:{f}`")),
        ("layout".into(), "did you mean `oci:layout`".into()),
        ("./nothere".into(), "looks like a path".into()),
        (
            "nosuch.invalid/repo:1".into(),
            "cannot reach registry nosuch.invalid".into(),
        ),
        (
            "127.0.0.1:1/repo:1".into(),
            "cannot reach registry 127.0.0.1:1".into(),
        ),
    ];
    for (image, message) in cases {
        let started = Instant::now();
        let err = refused(dir.path(), &["--image", &image, "-o", "x"], &image);
        let took = started.elapsed();
        assert!(
            err.contains(&message),
            "--image {image}: no {message:?} in: {err}"
        );
        assert!(
            took < Duration::from_secs(3),
            "--image {image} took {took:?} to fail"
        );
    }
    // The image as a plain argument is the same as --image.
    let err = refused(dir.path(), &[&format!("oic:{l}")], "positional image");
    assert!(err.contains("unknown transport"), "{err}");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn dynamic_targets_and_foreign_platforms_are_refused() {
    let images = test_images();
    let dir = TestDir::new("build_safety_targets");
    let src = image_source(&images, "busybox");
    let err = refused(
        dir.path(),
        &[
            "--image",
            &src,
            "--target",
            "x86_64-unknown-linux-gnu",
            "-o",
            "x",
        ],
        "gnu target",
    );
    assert!(
        err.contains("--allow-dynamic") && err.contains("glibc"),
        "{err}"
    );
    let err = refused(
        dir.path(),
        &["--image", &src, "--platform", "linux/arm64", "-o", "x"],
        "arm64 platform on an x86_64 target",
    );
    assert!(
        err.contains("Exec format error") && err.contains("aarch64-unknown-linux-musl"),
        "{err}"
    );
    assert!(!dir.join("x").exists());
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn a_layout_builds_to_the_same_bytes_from_any_directory() {
    let images = test_images();
    let dir = TestDir::new("build_safety_reproducible");
    let mut built = Vec::new();
    for place in ["here/busybox", "somewhere/else/entirely/busybox"] {
        let layout = dir.join(place);
        fs::create_dir_all(layout.parent().unwrap()).unwrap();
        run_ok(
            Command::new("cp")
                .arg("-r")
                .arg(images.join("busybox"))
                .arg(&layout),
        );
        let out = dir.join(place.replace('/', "_"));
        let b = oci2bin_in(
            dir.path(),
            &[
                "--image",
                &format!("oci:{}:latest", layout.display()),
                "-o",
                out.to_str().unwrap(),
                "-q",
            ],
        );
        assert_built(&b, place);
        built.push(out);
    }
    let (a, b) = (fs::read(&built[0]).unwrap(), fs::read(&built[1]).unwrap());
    assert!(a == b, "the two builds differ");
    let info = inspect_json(&built[0]);
    assert_eq!(info["source"], "oci:busybox:latest", "{info}");
    let text = String::from_utf8_lossy(&a);
    assert!(
        !text.contains("somewhere/else"),
        "a build directory is recorded"
    );
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn json_messages_and_cache_prune_free_what_they_report() {
    let images = test_images();
    let dir = TestDir::new("build_safety_cache");
    let home = home_with_runtime("build_safety_cache", &dir);
    let out = dir.join("redis");
    let built = oci2bin_in(
        dir.path(),
        &[
            "--image",
            &image_source(&images, "redis"),
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            home.to_str().unwrap(),
            "--message-format",
            "json",
            "-q",
        ],
    );
    assert_built(&built, "redis --message-format json");
    let report: Value = serde_json::from_slice(&built.stdout).expect("one JSON object on stdout");
    assert_eq!(report["output"], out.to_str().unwrap());
    assert_eq!(report["size"], fs::metadata(&out).unwrap().len());
    assert_eq!(report["config_digest"], inspect_json(&out)["config_digest"]);
    assert!(report["layers"].as_array().is_some_and(|l| !l.is_empty()));

    let cache = |args: &[&str]| -> Value {
        let out = run_ok(
            Command::new(cargo_oci2bin())
                .args(["oci2bin", "cache", "--json", "--cache-dir"])
                .arg(&home)
                .args(args),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let shown = cache(&[]);
    let total = shown["bytes"].as_u64().unwrap();
    assert!(total > 1_000_000, "{shown}");
    let du = |p: &Path| -> u64 {
        let o = run_ok(Command::new("du").args(["-s", "-B1"]).arg(p));
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = du(&home);
    // Nothing is a day old.
    let young = cache(&["prune", "--older-than", "1d"]);
    assert_eq!(young["freed_bytes"], 0, "{young}");
    let pruned = cache(&["prune", "--all"]);
    let freed = pruned["freed_bytes"].as_u64().unwrap();
    let after = du(&home);
    // du counts the part directories themselves, which stay.
    let really = before - after;
    assert!(
        freed.abs_diff(really) < 64 * 1024 && freed > 1_000_000,
        "prune reported {freed} bytes freed, du shows {really}"
    );
    let left = cache(&[]);
    assert!(
        left["bytes"].as_u64().unwrap() < 64 * 1024,
        "left after prune --all: {left}"
    );
}

#[test]
fn the_bash_completion_loads_in_bash() {
    let script = run_ok(Command::new(cargo_oci2bin()).args(["oci2bin", "completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.bash");
    fs::write(&path, &script.stdout).unwrap();
    let out = run_ok(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p cargo-oci2bin",
        path.display()
    )));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cargo-oci2bin"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
