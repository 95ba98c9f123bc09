//! Docker/OCI whiteouts: deletions recorded in a layer.
//!
//! - `DIR/.wh.NAME` deletes `DIR/NAME` of the lower layers, recursively.
//! - `DIR/.wh..wh..opq` makes `DIR` opaque: everything below it that this layer did not
//!   create (so far) is deleted.
//! - Other `.wh..wh.*` names are aufs bookkeeping (`.wh..wh.plnk`, ...) and are ignored.
//!
//! `DIR` is resolved inside the root like any parent, so a whiteout behind a symlinked
//! parent deletes inside the root only; deletion itself never follows a symlink.

use super::remove::{list_dir, remove_all_at};
use super::resolve::{is_directory, FileId, Resolver, WalkEvent};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstat, fstatat};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Prefix of every whiteout name.
const PREFIX: &[u8] = b".wh.";
/// Prefix of aufs metadata names, which are not deletions.
const META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// What an entry's file name means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary entry.
    No,
    /// Delete this name in the entry's directory.
    Remove(&'a OsStr),
    /// Make the entry's directory opaque.
    Opaque,
    /// aufs metadata: nothing to do.
    Ignored,
}

/// Classifies an entry's file name. Errors (with the reason) for whiteouts of `.`, `..` or
/// an empty name, which would delete the directory itself or its parent.
pub(crate) fn classify(name: &OsStr) -> Result<Whiteout<'_>, &'static str> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        return Ok(Whiteout::Opaque);
    }
    if bytes.starts_with(META_PREFIX) {
        return Ok(Whiteout::Ignored);
    }
    match bytes.strip_prefix(PREFIX) {
        None => Ok(Whiteout::No),
        Some(b"" | b"." | b"..") => Err(
            "a whiteout of `.`, `..` or an empty name would delete a directory it does not name",
        ),
        Some(target) => Ok(Whiteout::Remove(OsStr::from_bytes(target))),
    }
}

/// Deletes `name` in the directory `dir` (relative to the root). A missing name or
/// directory is fine: the lower layers simply did not have it.
pub(crate) fn remove(
    resolver: &mut Resolver<'_>,
    dir: &Path,
    name: &OsStr,
    events: &mut Vec<WalkEvent>,
) -> nix::Result<()> {
    let fd = match resolver.open_dir(dir, 0o300, false, events) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_all_at(std::os::fd::AsFd::as_fd(&fd), name)
}

/// Deletes everything below `dir` (relative to the root) that is not in `created`, the
/// (directory, name) pairs this layer has made so far. Directories this layer made (or
/// re-declared) are kept and searched for older children in turn.
pub(crate) fn clear_opaque(
    resolver: &mut Resolver<'_>,
    dir: &Path,
    created: &HashSet<(FileId, OsString)>,
    events: &mut Vec<WalkEvent>,
) -> nix::Result<()> {
    let fd = match resolver.open_dir(dir, 0o700, false, events) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e),
    };
    let id = FileId::of(&fstat(&fd)?);
    let mut keep_dirs = Vec::new();
    for child in list_dir(std::os::fd::AsFd::as_fd(&fd))? {
        let key = (id, child);
        if created.contains(&key) {
            let st = fstatat(&fd, key.1.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if is_directory(&st) {
                keep_dirs.push(key.1);
            }
        } else {
            remove_all_at(std::os::fd::AsFd::as_fd(&fd), &key.1)?;
        }
    }
    drop(fd);
    for child in keep_dirs {
        clear_opaque(resolver, &dir.join(child), created, events)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_whiteout_names() {
        fn c(s: &str) -> Result<Whiteout<'_>, &'static str> {
            classify(OsStr::new(s))
        }
        assert_eq!(c("file"), Ok(Whiteout::No));
        assert_eq!(c(".whx"), Ok(Whiteout::No));
        assert_eq!(c(".wh.file"), Ok(Whiteout::Remove(OsStr::new("file"))));
        assert_eq!(
            c(".wh..hidden"),
            Ok(Whiteout::Remove(OsStr::new(".hidden")))
        );
        assert_eq!(c(".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(c(".wh..wh.plnk"), Ok(Whiteout::Ignored));
        assert_eq!(c(".wh..wh..opq2"), Ok(Whiteout::Ignored));
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert!(c(bad).is_err(), "{bad}");
        }
    }
}
