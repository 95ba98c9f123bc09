//! Binaries shared by the tests of one test file: each is built once per test process into
//! a fixed place, `<target>/e2e/bins/<group>/<name>`, which the test users can execute.
//!
//! A fixed place (rather than a [`crate::TestDir`], which would have to live in a `static`
//! and so would never be removed) is overwritten on the next run; the new binary is built
//! beside it and renamed over it, so a process still running the old one is not disturbed.

use crate::cargo_bin::build_binary;
use crate::paths::e2e_dir;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Builds the image `source` (see [`crate::image_source`]) into
/// `<target>/e2e/bins/<group>/<name>` with `cargo oci2bin` and returns the path; panics with
/// cargo-oci2bin's stderr if the build fails. Call it from a `OnceLock` to build once.
pub fn shared_binary(group: &str, name: &str, source: &str) -> PathBuf {
    let bins = e2e_dir().join("bins");
    let dir = bins.join(group);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for d in [&bins, &dir] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = dir.join(name);
    // Per thread: two tests of one file may build the same binary at the same time.
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let tmp = dir.join(format!(".{name}.{}.{thread}", std::process::id()));
    let built = build_binary(source, &tmp, &[]);
    assert!(
        built.status.success(),
        "cargo oci2bin --image {source} failed with {}:\n{}",
        built.status,
        String::from_utf8_lossy(&built.stderr)
    );
    fs::rename(&tmp, &out)
        .unwrap_or_else(|e| panic!("cannot move {} to {}: {e}", tmp.display(), out.display()));
    out
}
