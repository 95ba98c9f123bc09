//! Where the workspace, its target directory and the cached test images are.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace root when
/// relative), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Where the test images are built and kept between runs: `$OCI2BIN_TEST_IMAGES`, else
/// `<workspace>/target/test-images`.
pub fn test_images_dir() -> PathBuf {
    match std::env::var_os("OCI2BIN_TEST_IMAGES") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target/test-images"),
    }
}

/// Scratch space for end-to-end tests (per-test directories, lock files):
/// `<target>/e2e`.
pub fn e2e_dir() -> PathBuf {
    target_dir().join("e2e")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
        assert!(e2e_dir().starts_with(target_dir()));
    }
}
