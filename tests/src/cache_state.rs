//! What a run left in an oci2bin cache directory (`$OCI2BIN_CACHE_DIR/images`): complete
//! unpacked images, temporary unpack directories and lock files, seen from the host.

use std::fs;
use std::path::{Path, PathBuf};

/// The entries of `<cache>/images`, by kind, each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheState {
    /// Complete entries: directories named by a config digest's hex (64 hex digits).
    pub images: Vec<String>,
    /// Unpacks in progress or left by a killed run: `.tmp-<hex>-<pid>`.
    pub temps: Vec<String>,
    /// Lock files: `<hex>.lock`.
    pub locks: Vec<String>,
    /// Anything else.
    pub other: Vec<String>,
}

fn is_hex64(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl CacheState {
    /// Reads `<cache>/images` (empty if it does not exist).
    pub fn read(cache: &Path) -> CacheState {
        let mut state = CacheState::default();
        let Ok(dir) = fs::read_dir(cache.join("images")) else {
            return state;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && is_hex64(&name) {
                state.images.push(name);
            } else if name.starts_with(".tmp-") {
                state.temps.push(name);
            } else if name.strip_suffix(".lock").is_some_and(is_hex64) {
                state.locks.push(name);
            } else {
                state.other.push(name);
            }
        }
        for list in [
            &mut state.images,
            &mut state.temps,
            &mut state.locks,
            &mut state.other,
        ] {
            list.sort();
        }
        state
    }

    /// True if nothing but lock files is there: no image, no partial unpack, nothing else.
    pub fn only_locks(&self) -> bool {
        self.images.is_empty() && self.temps.is_empty() && self.other.is_empty()
    }

    /// The root of the only complete image, panicking (with the whole state) unless there is
    /// exactly one and no partial unpack is left.
    pub fn single_rootfs(&self, cache: &Path) -> PathBuf {
        assert!(
            self.images.len() == 1 && self.temps.is_empty() && self.other.is_empty(),
            "expected exactly one unpacked image in {}/images and nothing else but locks: {self:?}",
            cache.display()
        );
        cache.join("images").join(&self.images[0]).join("rootfs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_entries_by_kind() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(CacheState::read(t.path()), CacheState::default());
        let hex = "ab".repeat(32);
        let images = t.path().join("images");
        fs::create_dir_all(images.join(&hex).join("rootfs")).unwrap();
        fs::create_dir(images.join(format!(".tmp-{hex}-12"))).unwrap();
        fs::write(images.join(format!("{hex}.lock")), "").unwrap();
        fs::write(images.join("stray"), "").unwrap();
        fs::write(images.join(&hex[..10]), "").unwrap();
        let state = CacheState::read(t.path());
        assert_eq!(state.images, std::slice::from_ref(&hex));
        assert_eq!(state.temps, [format!(".tmp-{hex}-12")]);
        assert_eq!(state.locks, [format!("{hex}.lock")]);
        assert_eq!(state.other, [hex[..10].to_string(), "stray".to_string()]);
        assert!(!state.only_locks());
    }
}
