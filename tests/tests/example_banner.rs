//! The `examples/banner` crate embeds an image from its own build.rs with oci2bin-build and
//! runs it with oci2bin-rt after printing a banner: build it with plain cargo, as a user of the
//! libraries would, and run it as an ordinary user.

use oci2bin_tests::built::inspect_json;
use oci2bin_tests::paths::{target_dir, workspace_root};
use oci2bin_tests::{image_source, test_images, test_user, TestDir, UserCommand};
use std::process::Command;

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn banner_example_embeds_and_runs() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("example_banner");
    let example = workspace_root().join("examples/banner");
    let target = target_dir().join("example-banner");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&example)
        .env("BANNER_IMAGE", image_source(&images, "busybox"))
        .env("OCI2BIN_CACHE_DIR", dir.join("cache"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building examples/banner failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = target.join("x86_64-unknown-linux-musl/release/banner");
    let bin = dir.join("banner");
    std::fs::copy(&built, &bin).unwrap();
    let run = UserCommand::new(&user, &bin)
        .args(["echo", "hi"])
        .cache_dir(&dir.user_dir("cache", &user))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "banner echo hi: {}\n{stderr}",
        run.status
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi\n");
    assert!(
        stderr.contains("*** banner: docker.io/library/busybox:latest"),
        "no banner in: {stderr}"
    );
    // inspect reads a linked payload as well as an attached one.
    let info = inspect_json(&bin);
    assert_eq!(info["payload_kind"], "linked", "{info}");
    assert_eq!(
        info["reference"], "docker.io/library/busybox:latest",
        "{info}"
    );
    assert_eq!(info["compression"], "xz:6", "{info}");
}
