//! The smallest end-to-end run: build the busybox test image into an executable and run
//! `echo hi` with it as an ordinary user.

use oci2bin_tests::{build_binary, image_source, test_images, test_user, TestDir, UserCommand};

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn busybox_echo_hi() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("busybox_echo_hi");
    let bin = dir.join("busybox_latest");
    let built = build_binary(&image_source(&images, "busybox"), &bin, &[]);
    assert!(
        built.status.success(),
        "cargo oci2bin failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let cache = dir.user_dir("cache", &user);
    let run = UserCommand::new(&user, &bin)
        .args(["echo", "hi"])
        .cache_dir(&cache)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} echo hi exited with {}:\n{}",
        bin.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi\n");
}
