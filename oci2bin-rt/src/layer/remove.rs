//! Removing trees that an unprivileged user extracted.
//!
//! Layers contain directories with modes such as 0555 or 0000. Their owner may delete them,
//! but only after giving them `u+rwx` again, which `std::fs::remove_dir_all` does not do.
//! Removal here is fd-relative and never follows a symlink: a symlink is unlinked like any
//! other file, whatever it points to.
//!
//! The walk holds one directory fd at a time (it climbs back with `..`, which is the real
//! parent because it only ever descends through real directories), so a hostile,
//! thousands-deep tree cannot exhaust file descriptors.

use super::resolve::is_directory;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Removes the directory tree (or file, or symlink) at `path`, including subdirectories
/// whose mode denies their owner access, without following symlinks.
///
/// The cache uses it to throw away partial unpacks. Nothing at `path` is not an error.
/// `path` itself is trusted (its parent directories are followed normally); everything
/// below it is not.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let with_path = |what: &str, e: Errno| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("removing {}: {what}: {e}", path.display()),
        )
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "removing {}: the path has no final component to remove",
                path.display()
            ),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = match openat(
        nix::fcntl::AT_FDCWD,
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(with_path("opening its parent directory", e)),
    };
    remove_all_at(dir.as_fd(), name).map_err(|e| with_path("removal failed", e))
}

/// Removes `name` in the directory `parent`, recursively if it is a directory, never
/// following symlinks. Nothing at `name` is not an error.
///
/// `parent` itself must allow the caller to remove entries (write and search permission).
pub(crate) fn remove_all_at(parent: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(e @ (Errno::EISDIR | Errno::EPERM)) => {
            if !is_dir(parent, name)? {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    /// One directory being emptied: its name in its parent (`None` for the top) and the
    /// entries not yet removed.
    struct Frame {
        name: Option<OsString>,
        pending: Vec<OsString>,
    }
    let mut cur = open_for_removal(parent, name)?;
    let mut frames = vec![Frame {
        name: None,
        pending: list_dir(cur.as_fd())?,
    }];
    while let Some(frame) = frames.last_mut() {
        if let Some(child) = frame.pending.pop() {
            match unlinkat(cur.as_fd(), child.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e @ (Errno::EISDIR | Errno::EPERM)) => {
                    if !is_dir(cur.as_fd(), &child)? {
                        return Err(e);
                    }
                    cur = open_for_removal(cur.as_fd(), &child)?;
                    let pending = list_dir(cur.as_fd())?;
                    frames.push(Frame {
                        name: Some(child),
                        pending,
                    });
                }
                Err(e) => return Err(e),
            }
        } else {
            let done = frames.pop();
            if let Some(Frame {
                name: Some(child), ..
            }) = done
            {
                cur = openat(
                    cur.as_fd(),
                    "..",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                unlinkat(cur.as_fd(), child.as_os_str(), UnlinkatFlags::RemoveDir)?;
            }
        }
    }
    drop(cur);
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// True if `name` in `dir` is a directory (not a symlink to one).
fn is_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<bool> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(is_directory(&st))
}

/// Opens the directory `name` in `parent` so that its entries can be listed and removed,
/// first giving it `u+rwx` if it lacks any of them.
///
/// The chmod may fail (a directory of another user); the open or the removals then report
/// the real problem.
fn open_for_removal(parent: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if st.st_mode & 0o700 != 0o700 {
        // `name` was just seen to be a directory, not a symlink, so following it is safe.
        let _ = fchmodat(
            parent,
            name,
            Mode::from_bits_truncate((st.st_mode & 0o7777) | 0o700),
            FchmodatFlags::FollowSymlink,
        );
    }
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory, without `.` and `..`.
///
/// Uses `fdopendir`/`readdir` from libc directly because the workspace builds nix without
/// its `dir` feature.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    /// Closes the directory stream (and with it the fd) on every return path.
    struct Stream(*mut libc::DIR);
    impl Drop for Stream {
        fn drop(&mut self) {
            // SAFETY: the pointer came from a successful fdopendir and is closed only here.
            unsafe { libc::closedir(self.0) };
        }
    }
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory fd that we own; on success the stream owns it.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let e = Errno::last();
        // SAFETY: fdopendir failed, so the fd is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let stream = Stream(dirp);
    let mut names = Vec::new();
    loop {
        Errno::clear();
        // SAFETY: the stream is open; the returned entry stays valid until the next call.
        let entry = unsafe { libc::readdir(stream.0) };
        if entry.is_null() {
            return match Errno::last_raw() {
                0 => Ok(names),
                e => Err(Errno::from_raw(e)),
            };
        }
        // SAFETY: `d_name` of a returned entry is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn removes_locked_directories_and_files_without_following_symlinks() {
        let base = tempfile::tempdir().expect("tempdir");
        let outside = base.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        fs::write(outside.join("keep"), b"keep").expect("write");
        let t = base.path().join("tree");
        fs::create_dir_all(t.join("a/b/c")).expect("mkdir");
        fs::write(t.join("a/b/c/file"), b"x").expect("write");
        fs::write(t.join("a/zero"), b"x").expect("write");
        chmod(&t.join("a/zero"), 0o000);
        fs::create_dir(t.join("ro")).expect("mkdir");
        fs::write(t.join("ro/file"), b"x").expect("write");
        symlink(&outside, t.join("a/b/to_outside")).expect("symlink");
        symlink(outside.join("keep"), t.join("ro/to_keep")).expect("symlink");
        chmod(&t.join("a/b/c"), 0o000);
        chmod(&t.join("a/b"), 0o000);
        chmod(&t.join("ro"), 0o555);
        chmod(&t, 0o500);

        remove_tree(&t).expect("remove");

        assert!(!t.exists() && fs::symlink_metadata(&t).is_err());
        assert_eq!(fs::read(outside.join("keep")).expect("read"), b"keep");
        assert_eq!(fs::read_dir(&outside).expect("ls").count(), 1);
    }

    #[test]
    fn removes_a_deep_tree_with_few_file_descriptors() {
        let base = tempfile::tempdir().expect("tempdir");
        let top = base.path().join("deep");
        fs::create_dir(&top).expect("mkdir");
        // Deeper than the usual 1024 open-file limit; build it with *at calls, since the
        // full path would exceed PATH_MAX.
        let mut dir = fs::File::open(&top).expect("open");
        for _ in 0..1100 {
            nix::sys::stat::mkdirat(&dir, "d", Mode::from_bits_truncate(0o700)).expect("mkdirat");
            let next = openat(
                &dir,
                "d",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .expect("openat");
            dir = fs::File::from(next);
        }
        drop(dir);
        remove_tree(&top).expect("remove");
        assert!(fs::symlink_metadata(&top).is_err());
    }

    #[test]
    fn removes_a_symlink_not_its_target() {
        let base = tempfile::tempdir().expect("tempdir");
        fs::create_dir(base.path().join("target")).expect("mkdir");
        fs::write(base.path().join("target/f"), b"x").expect("write");
        symlink("target", base.path().join("link")).expect("symlink");
        remove_tree(&base.path().join("link")).expect("remove");
        assert!(fs::symlink_metadata(base.path().join("link")).is_err());
        assert!(base.path().join("target/f").is_file());
    }

    #[test]
    fn a_missing_path_is_fine_and_errors_name_the_path() {
        let base = tempfile::tempdir().expect("tempdir");
        remove_tree(&base.path().join("nothing")).expect("missing is ok");
        remove_tree(&base.path().join("no/parent")).expect("missing parent is ok");
        let err = remove_tree(Path::new("/")).expect_err("no file name");
        assert!(err.to_string().contains("removing /"), "{err}");
    }

    #[test]
    fn list_dir_lists_names_only() {
        let base = tempfile::tempdir().expect("tempdir");
        fs::write(base.path().join("a"), b"").expect("write");
        fs::create_dir(base.path().join("b")).expect("mkdir");
        let dir = fs::File::open(base.path()).expect("open");
        let mut names = list_dir(dir.as_fd()).expect("list");
        names.sort();
        assert_eq!(names, ["a", "b"]);
    }
}
