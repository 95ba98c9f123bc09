//! Per-test scratch directories that an unprivileged test user can use.
//!
//! Binaries are built into them by root and run from them by the test user, who also gets its
//! `OCI2BIN_CACHE_DIR` there; so they live under the target directory (not a private /tmp),
//! are world-traversable, and can be handed to the user. They are removed when dropped unless
//! `OCI2BIN_KEEP_TEST_DIRS` is set, for inspecting a failure.

use crate::paths::e2e_dir;
use crate::users::TestUser;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A scratch directory, removed on drop.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    /// A new directory `<target>/e2e/runs/<name>-XXXX`, mode 0755, owned by root.
    pub fn new(name: &str) -> TestDir {
        let runs = e2e_dir().join("runs");
        fs::create_dir_all(&runs)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", runs.display()));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&runs)
            .unwrap_or_else(|e| {
                panic!("cannot create a test directory in {}: {e}", runs.display())
            });
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().to_path_buf();
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates the subdirectory `rel` owned by `user` (mode 0700), e.g. its cache directory.
    pub fn user_dir(&self, rel: &str, user: &TestUser) -> PathBuf {
        let dir = self.path.join(rel);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("cannot chown {} to {}: {e}", dir.display(), user.name));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if std::env::var_os("OCI2BIN_KEEP_TEST_DIRS").is_some() {
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_traversable_and_removed_on_drop() {
        let dir = TestDir::new("unit");
        let path = dir.path().to_path_buf();
        assert!(path.starts_with(e2e_dir()));
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("unit-"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        fs::write(dir.join("f"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
