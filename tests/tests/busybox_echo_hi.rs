//! The smallest end-to-end run: build the busybox test image into an executable and run
//! `echo hi` with it as an ordinary user.

use oci2bin_tests::{assert_echo_hi, build_binary, image_source, test_images, test_user, TestDir};

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
    assert_echo_hi(&bin, &user, &dir, "cache");
}
