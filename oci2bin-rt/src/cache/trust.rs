//! Trusting the cache: every directory the runtime uses in it must belong to the caller and
//! be writable by nobody else, and is opened relative to an already checked directory,
//! never through a symlink.
//!
//! The cache decides what runs: an `images/<digest>/rootfs` planted by another user would
//! run as the victim's container, a planted `<digest>.lock` symlink would make the runtime
//! write through it, and a predictable temporary name can be raced. With `OCI2BIN_CACHE_DIR`
//! on a shared directory all three were possible, so a directory that fails the check is
//! refused with the reason rather than used.

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why a cache directory is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// It cannot be opened or created.
    #[error("cannot open the cache directory {}: {errno}", path.display())]
    Open {
        /// The directory.
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// It is a symlink (inside the cache nothing is followed).
    #[error("refusing the cache entry {}: it is a symbolic link, which the runtime never follows inside its cache (someone else may have planted it); remove it", .0.display())]
    Symlink(PathBuf),
    /// Someone else owns it, or others may write to it.
    #[error("refusing the cache directory {}: {reason}; the cache decides what runs, so it must belong to you (uid {uid}) and be writable only by you. Set OCI2BIN_CACHE_DIR to a directory of your own", path.display())]
    Untrusted {
        /// The directory.
        path: PathBuf,
        /// Owner or mode, as found.
        reason: String,
        /// The caller's uid.
        uid: u32,
    },
}

/// Checks an open directory: owned by `uid`, not writable by group or others.
fn check(fd: BorrowedFd<'_>, path: &Path, uid: u32) -> Result<(), TrustError> {
    let st = fstat(fd).map_err(|errno| TrustError::Open {
        path: path.into(),
        errno,
    })?;
    let reason = if st.st_uid != uid {
        format!("it belongs to uid {}", st.st_uid)
    } else if st.st_mode & 0o022 != 0 {
        format!(
            "its mode {:04o} lets others write to it",
            st.st_mode & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(TrustError::Untrusted {
        path: path.into(),
        reason,
        uid,
    })
}

/// The caller's effective uid, which owns everything in its cache.
pub fn caller_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Opens (creating it with mode 0700 and any missing parents when absent) the cache root
/// at `path` and checks it. Symlinks in `path` itself are the caller's choice and followed.
pub fn open_root(path: &Path, uid: u32) -> Result<OwnedFd, TrustError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let open = || nix::fcntl::open(path, flags, Mode::empty());
    let fd = match open() {
        Err(Errno::ENOENT) => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| TrustError::Open {
                    path: path.into(),
                    errno: crate::ns::syscall::io_errno(e),
                })?;
            open()
        }
        other => other,
    }
    .map_err(|errno| TrustError::Open {
        path: path.into(),
        errno,
    })?;
    check(fd.as_fd(), path, uid)?;
    Ok(fd)
}

/// Opens the directory `name` in the checked directory `parent` (whose path is
/// `parent_path`, for messages) without following a symlink, creating it with mode 0700
/// when `create` is set and it is missing, and checks it. `Ok(None)`: missing, not created.
pub fn open_dir_at(
    parent: BorrowedFd<'_>,
    parent_path: &Path,
    name: &OsStr,
    create: bool,
    uid: u32,
) -> Result<Option<OwnedFd>, TrustError> {
    let path = parent_path.join(name);
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let fd = match openat(parent, name, flags, Mode::empty()) {
        Err(Errno::ENOENT) if create => {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(TrustError::Open { path, errno }),
            }
            openat(parent, name, flags, Mode::empty())
        }
        Err(Errno::ENOENT) => return Ok(None),
        other => other,
    };
    let fd = match fd {
        Ok(fd) => fd,
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) if is_symlink(parent, name) => {
            return Err(TrustError::Symlink(path))
        }
        Err(errno) => return Err(TrustError::Open { path, errno }),
    };
    check(fd.as_fd(), &path, uid)?;
    Ok(Some(fd))
}

/// Whether `name` in `dir` is a symlink (not followed).
fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Opens (creating it, mode 0600, when missing) the lock file `name` in the checked
/// directory `dir`: never through a symlink, never truncated, and only if it is a regular
/// file of the caller's.
pub fn open_lock_at(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &OsStr,
    uid: u32,
    exclusive_create: bool,
) -> Result<OwnedFd, TrustError> {
    let path = dir_path.join(name);
    let mut flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if exclusive_create {
        flags |= OFlag::O_EXCL;
    }
    let fd = match openat(dir, name, flags, Mode::from_bits_truncate(0o600)) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(TrustError::Symlink(path)),
        Err(errno) => return Err(TrustError::Open { path, errno }),
    };
    let st = fstat(fd.as_fd()).map_err(|errno| TrustError::Open {
        path: path.clone(),
        errno,
    })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != uid {
        return Err(TrustError::Untrusted {
            path,
            reason: format!(
                "the lock is not a regular file of yours (mode {:o}, uid {})",
                st.st_mode, st.st_uid
            ),
            uid,
        });
    }
    Ok(fd)
}

/// Makes a fresh directory in `dir` named `prefix` + a random suffix (mode 0700), retrying
/// on a name that exists; returns its name. The name cannot be predicted, so it cannot be
/// prepared in advance by someone racing the runtime.
pub fn make_random_dir(dir: BorrowedFd<'_>, prefix: &str) -> nix::Result<String> {
    for _ in 0..16 {
        let name = format!("{prefix}{}", crate::ns::ident::random_id());
        match mkdirat(dir, name.as_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) => return Ok(name),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EEXIST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_root_writable_by_others_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let fd = open_root(&root, caller_uid()).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(fd);
        chmod(&root, 0o777);
        let err = open_root(&root, caller_uid()).unwrap_err().to_string();
        assert!(
            err.contains("0777") && err.contains("OCI2BIN_CACHE_DIR"),
            "{err}"
        );
        chmod(&root, 0o755);
        let err = open_root(&root, caller_uid() + 1).unwrap_err().to_string();
        assert!(err.contains("belongs to uid"), "{err}");
    }

    #[test]
    fn entries_are_not_followed_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path(), caller_uid()).unwrap();
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", dir.path().join("images")).unwrap();
        let err = open_dir_at(
            root.as_fd(),
            dir.path(),
            "images".as_ref(),
            true,
            caller_uid(),
        )
        .unwrap_err();
        assert!(matches!(err, TrustError::Symlink(_)), "{err}");
        let made = open_dir_at(
            root.as_fd(),
            dir.path(),
            "runs".as_ref(),
            true,
            caller_uid(),
        );
        assert!(made.unwrap().is_some());
        let missing = open_dir_at(
            root.as_fd(),
            dir.path(),
            "nope".as_ref(),
            false,
            caller_uid(),
        );
        assert!(missing.unwrap().is_none());
    }

    #[test]
    fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path(), caller_uid()).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("x.lock")).unwrap();
        let err = open_lock_at(
            root.as_fd(),
            dir.path(),
            "x.lock".as_ref(),
            caller_uid(),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, TrustError::Symlink(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // An existing lock is opened, not truncated.
        std::fs::write(dir.path().join("y.lock"), "keep").unwrap();
        open_lock_at(
            root.as_fd(),
            dir.path(),
            "y.lock".as_ref(),
            caller_uid(),
            false,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("y.lock")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn random_dirs_are_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path(), caller_uid()).unwrap();
        let a = make_random_dir(root.as_fd(), ".tmp-x-").unwrap();
        let b = make_random_dir(root.as_fd(), ".tmp-x-").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(".tmp-x-") && dir.path().join(&b).is_dir());
    }
}
