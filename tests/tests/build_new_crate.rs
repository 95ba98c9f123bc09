//! `cargo oci2bin new` writes a crate that plain `cargo build` turns into a working oci2bin
//! executable (its build.rs embeds the image, its main.rs runs first), and
//! `cargo oci2bin polyglot` makes that executable a tar archive skopeo reads as an image,
//! still running as an ordinary user.

use oci2bin_tests::built::inspect_json;
use oci2bin_tests::paths::target_dir;
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{cargo_oci2bin, test_images, test_user, TestDir, UserCommand};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

fn echo_hi(bin: &Path, user: &oci2bin_tests::TestUser, dir: &TestDir) {
    let out = UserCommand::new(user, bin)
        .args(["echo", "hi"])
        .cache_dir(&dir.user_dir("cache", user))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} echo hi: {}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images, and a minute or two of cargo build; run with --include-ignored"]
fn a_new_crate_builds_with_plain_cargo_and_becomes_a_polyglot() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("build_new_crate");
    // The image will live inside the crate, so the crate refers to it by a relative path;
    // `new` wants an empty directory, so it is moved in afterwards.
    let krate = dir.join("myapp");
    let staging = dir.join("staging");
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(images.join("busybox"))
            .arg(&staging),
    );
    run_ok(Command::new(cargo_oci2bin()).args([
        "oci2bin",
        "new",
        krate.to_str().unwrap(),
        "--name",
        "myapp",
        "--image",
        &format!("oci:{}:latest", krate.join("images/busybox").display()),
    ]));
    fs::create_dir(krate.join("images")).unwrap();
    fs::rename(&staging, krate.join("images/busybox")).unwrap();
    let build_rs = fs::read_to_string(krate.join("build.rs")).unwrap();
    assert!(
        build_rs.contains("\"oci:images/busybox:latest\""),
        "the image path is not relative to the crate:\n{build_rs}"
    );
    // A second `new` into the now non-empty directory is refused.
    let again = Command::new(cargo_oci2bin())
        .args([
            "oci2bin",
            "new",
            krate.to_str().unwrap(),
            "--image",
            "busybox",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // Someone changes main.rs, as the crate invites them to.
    let main_rs = krate.join("src/main.rs");
    let text = fs::read_to_string(&main_rs).unwrap().replace(
        "    // For example:\n",
        "    eprintln!(\"my banner: {}\", env!(\"OCI2BIN_IMAGE_NAME\"));\n",
    );
    fs::write(&main_rs, text).unwrap();

    let target = target_dir().join("new-crate");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&krate)
        .env_remove("CARGO_TARGET_DIR")
        .env("OCI2BIN_CACHE_DIR", dir.join("build-cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build of the new crate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dir.join("myapp.bin");
    fs::copy(target.join("x86_64-unknown-linux-musl/release/myapp"), &bin).unwrap();
    echo_hi(&bin, &user, &dir);
    let banner = UserCommand::new(&user, &bin)
        .args(["true"])
        .cache_dir(&dir.user_dir("cache", &user))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&banner.stderr)
            .contains("my banner: docker.io/library/busybox:latest"),
        "{}",
        String::from_utf8_lossy(&banner.stderr)
    );
    assert_eq!(inspect_json(&bin)["polyglot_valid"], false);

    // The polyglot step, in place.
    run_ok(
        Command::new(cargo_oci2bin())
            .args(["oci2bin", "polyglot"])
            .arg(&bin),
    );
    let info = inspect_json(&bin);
    assert_eq!(info["polyglot_valid"], true, "{info}");
    assert_eq!(info["payload_kind"], "linked", "{info}");
    echo_hi(&bin, &user, &dir);
    let listed = run_ok(Command::new("tar").arg("tf").arg(&bin));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.lines().any(|l| l == "manifest.json"), "{listed}");
    let skopeo = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", bin.display())),
    );
    let v: Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(v["Architecture"], "amd64", "{v}");
    // A second polyglot step is refused, leaving the file as it is.
    let before = fs::read(&bin).unwrap();
    let twice = Command::new(cargo_oci2bin())
        .args(["oci2bin", "polyglot"])
        .arg(&bin)
        .output()
        .unwrap();
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already"));
    assert!(fs::read(&bin).unwrap() == before);
}
