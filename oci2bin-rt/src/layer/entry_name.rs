//! Turning an untrusted tar entry name into a path relative to the root.
//!
//! Docker confines absolute names (`/etc/passwd` means `<root>/etc/passwd`) and so do we:
//! leading `/` and `./` and empty or `.` components are dropped. A `..` component is never
//! resolved lexically: such a name is refused outright, because no legitimate layer needs
//! it and resolving it is how extraction bugs escape the root.

use super::error::LayerError;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A cleaned entry name: a relative path with only normal components, or the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryName {
    /// Relative path below the root; empty for the root itself.
    rel: PathBuf,
}

impl EntryName {
    /// Cleans the raw name bytes of a tar entry (or hardlink target).
    ///
    /// Refuses names with a `..` component or a NUL byte (which no syscall could take).
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, LayerError> {
        let shown = Path::new(OsStr::from_bytes(raw));
        if raw.contains(&0) {
            return Err(LayerError::unsafe_entry(
                shown,
                "the name contains a NUL byte",
            ));
        }
        let mut rel = PathBuf::new();
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    return Err(LayerError::unsafe_entry(
                        shown,
                        "the name has a `..` component, which could reach outside the root",
                    ))
                }
                name => rel.push(OsStr::from_bytes(name)),
            }
        }
        Ok(EntryName { rel })
    }

    /// The path relative to the root (empty for the root).
    pub(crate) fn rel(&self) -> &Path {
        &self.rel
    }

    /// The directory holding the entry, relative to the root (empty for top-level entries);
    /// `None` for the root itself (`.`, `/`, `./`).
    pub(crate) fn parent(&self) -> Option<&Path> {
        self.rel.parent()
    }

    /// The last component; `None` for the root itself.
    pub(crate) fn file_name(&self) -> Option<&OsStr> {
        self.rel.file_name()
    }

    /// The path as the image sees it (`/usr/bin/env`), for messages and the report.
    pub(crate) fn display(&self) -> PathBuf {
        Path::new("/").join(&self.rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(raw: &str) -> String {
        EntryName::parse(raw.as_bytes())
            .map(|n| n.rel().to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn strips_leading_slash_dot_and_empty_components() {
        assert_eq!(rel("usr/bin/env"), "usr/bin/env");
        assert_eq!(rel("./usr/bin/env"), "usr/bin/env");
        assert_eq!(rel("/usr//bin/./env/"), "usr/bin/env");
        assert_eq!(rel("///etc/passwd"), "etc/passwd");
        assert_eq!(rel("./.wh..wh..opq"), ".wh..wh..opq");
        assert_eq!(rel("..."), "...");
    }

    #[test]
    fn root_spellings_are_the_root() {
        for raw in [".", "./", "/", "", "//.//"] {
            let name = EntryName::parse(raw.as_bytes()).expect("root name is valid");
            assert!(name.rel().as_os_str().is_empty(), "{raw:?}");
            assert_eq!(name.parent(), None);
            assert_eq!(name.file_name(), None);
            assert_eq!(name.display(), Path::new("/"));
        }
    }

    #[test]
    fn dotdot_anywhere_is_refused() {
        for raw in ["..", "../x", "a/../b", "a/..", "/../etc", "./a/b/../../.."] {
            let err = EntryName::parse(raw.as_bytes()).expect_err(raw);
            assert!(matches!(err, LayerError::Unsafe { .. }), "{raw:?}: {err}");
            assert!(
                err.to_string().contains(raw),
                "message names the entry: {err}"
            );
        }
    }

    #[test]
    fn nul_byte_is_refused() {
        let err = EntryName::parse(b"a\0b").expect_err("NUL");
        assert!(matches!(err, LayerError::Unsafe { .. }));
    }

    #[test]
    fn non_utf8_names_are_kept_byte_for_byte() {
        let name = EntryName::parse(b"dir/\xff\xfe").expect("bytes are fine");
        assert_eq!(
            name.file_name().map(OsStr::as_bytes),
            Some(&b"\xff\xfe"[..])
        );
        assert_eq!(name.parent(), Some(Path::new("dir")));
    }
}
