//! `cargo oci2bin --image 127.0.0.1:PORT/NAME:TAG`: pull from a real registry (Debian's
//! docker-registry), build, and run the result as an ordinary user, for images pushed in OCI
//! and in Docker schema 2 form. A second build of the same reference downloads no blobs.

use oci2bin_tests::registry::Registry;
use oci2bin_tests::{
    assert_echo_hi, build_binary, free_port, redis_ping, test_images, test_user, wait_for_port,
    TestDir, UserCommand,
};
use std::time::Duration;

fn build_ok(source: &str, out: &std::path::Path, extra: &[&str]) -> String {
    let built = build_binary(source, out, extra);
    let stderr = String::from_utf8_lossy(&built.stderr).to_string();
    assert!(
        built.status.success(),
        "cargo oci2bin --image {source} failed:\n{stderr}"
    );
    stderr
}

#[test]
#[ignore = "e2e: needs root, docker-registry, skopeo, mmdebstrap images; run with --include-ignored"]
fn pull_build_and_run_busybox_and_redis() {
    let images = test_images();
    let user = test_user();
    let dir = TestDir::new("registry_build");
    let registry = Registry::start(dir.path());
    let busybox = registry.push(&images.join("busybox"), "latest", "tools/busybox", false);

    // busybox, OCI manifests.
    let bb = dir.join("busybox_latest");
    let log = build_ok(&busybox, &bb, &[]);
    assert!(
        log.contains("sha256:"),
        "the pinned digest is not printed:\n{log}"
    );
    assert_echo_hi(&bb, &user, &dir, "cache");

    // The binary records where it came from.
    let report = oci2bin_tests::built::inspect_json(&bb);
    assert_eq!(
        report["reference"],
        format!("{}/tools/busybox:latest", registry.host())
    );
    assert!(report["source_manifest_digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));

    // A second build of the same reference downloads nothing (the registry is gone: a blob
    // request would fail, and the tag is resolved from the cache with --offline).
    drop(registry);
    let bb2 = dir.join("busybox_again");
    build_ok(&busybox, &bb2, &["--offline"]);
    assert_eq!(std::fs::read(&bb).unwrap(), std::fs::read(&bb2).unwrap());

    // redis, Docker schema 2 manifests, from a fresh registry holding it.
    let registry = Registry::start(&dir.join("second"));
    let redis = registry.push(&images.join("redis"), "latest", "redis", true);
    let rb = dir.join("redis_latest");
    build_ok(&redis, &rb, &[]);
    let port = free_port();
    let mut server = UserCommand::new(&user, &rb)
        .args(["--", "--port", &port.to_string()])
        .cache_dir(&dir.user_dir("cache", &user))
        .current_dir(dir.path())
        .spawn(&dir.join("redis.log"))
        .unwrap();
    assert!(
        wait_for_port(port, Duration::from_secs(60)),
        "redis did not listen on {port}:\n{}",
        server.log()
    );
    assert_eq!(redis_ping(port).unwrap(), "+PONG");
    server.stop();
}
