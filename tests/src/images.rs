//! The images end-to-end tests run: built once, cached between runs.
//!
//! * [`test_images`]: the Debian-based images of `scripts/build-test-images.sh` (busybox,
//!   redis, nginx, postgres, postgres-user, attack, busybox.docker-archive.tar). Needs root,
//!   mmdebstrap and the Debian mirror; the first build takes several minutes, later runs only
//!   check that they exist (the script skips built images).
//! * [`fixture_images`]: the layouts of `tests/fixtures/mkimage.py` (layered, hostile-*,
//!   corrupt-*), regenerated when the generator or the host's busybox changes.
//!
//! Both live in [`test_images_dir`] and are built under a file lock, so parallel tests and
//! test binaries build them once.

use crate::cargo_bin::cargo_oci2bin;
use crate::file_lock::FileLock;
use crate::paths::{test_images_dir, workspace_root};
use crate::tools::run_ok;
use oci2bin_rt::oci::Digest;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The fixture generator, relative to the workspace root.
pub const MKIMAGE: &str = "tests/fixtures/mkimage.py";
/// The test image script, relative to the workspace root.
pub const BUILD_SCRIPT: &str = "scripts/build-test-images.sh";
/// The images the script builds, as OCI layouts in [`test_images`].
pub const TEST_IMAGES: [&str; 6] = [
    "busybox",
    "redis",
    "nginx",
    "postgres",
    "postgres-user",
    "attack",
];

fn images_lock() -> FileLock {
    FileLock::acquire(&test_images_dir().join(".lock")).expect("cannot lock the test images")
}

/// Builds (if needed) and returns the directory of the Debian-based test images.
pub fn test_images() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = test_images_dir();
        let cargo_oci2bin = cargo_oci2bin();
        let _lock = images_lock();
        eprintln!(
            "building test images into {} (first time: minutes)",
            dir.display()
        );
        run_ok(
            Command::new("bash")
                .arg(workspace_root().join(BUILD_SCRIPT))
                .arg(&dir)
                .env("CARGO_OCI2BIN", cargo_oci2bin),
        );
        for name in TEST_IMAGES {
            assert!(
                dir.join(name).join("index.json").is_file(),
                "{BUILD_SCRIPT} did not build {name}"
            );
        }
        dir
    })
    .clone()
}

/// Generates (if needed) and returns the directory of the fixture layouts
/// (`<test images>/fixtures`).
pub fn fixture_images() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = test_images_dir().join("fixtures");
        let _lock = images_lock();
        let stamp = dir.join(".inputs.sha256");
        let want = fixture_inputs_digest();
        if fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
            return dir;
        }
        let tmp = test_images_dir().join("fixtures.tmp");
        let _ = fs::remove_dir_all(&tmp);
        generate_fixtures(&tmp);
        fs::write(tmp.join(".inputs.sha256"), &want).unwrap();
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&tmp, &dir).unwrap_or_else(|e| panic!("cannot move fixtures into place: {e}"));
        dir
    })
    .clone()
}

/// Runs the fixture generator into `out`.
pub fn generate_fixtures(out: &Path) {
    run_ok(
        Command::new("python3")
            .arg(workspace_root().join(MKIMAGE))
            .arg(out),
    );
}

/// What the fixtures depend on: the generator and the busybox it copies.
fn fixture_inputs_digest() -> String {
    let mut inputs = fs::read(workspace_root().join(MKIMAGE)).expect("reading mkimage.py");
    inputs.extend(fs::read("/bin/busybox").unwrap_or_default());
    Digest::of(&inputs).to_string()
}

/// `oci:DIR/NAME:latest`, the source string for `cargo oci2bin --image`.
pub fn image_source(dir: &Path, name: &str) -> String {
    format!("oci:{}:latest", dir.join(name).display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_the_layout_and_tag() {
        assert_eq!(
            image_source(Path::new("/imgs"), "redis"),
            "oci:/imgs/redis:latest"
        );
    }
}
