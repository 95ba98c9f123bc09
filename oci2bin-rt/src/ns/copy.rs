//! Copying a root file system tree, the fallback when overlayfs cannot be mounted.
//!
//! Each run must start from the pristine cached root and must never write to it; without
//! overlayfs the only correct way is a private copy on the run's tmpfs. Slower than an
//! overlay, but it behaves the same.

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A failure while copying the root, naming the file that could not be copied.
#[derive(Debug, thiserror::Error)]
#[error("cannot copy {path} into the container's private root: {source}")]
pub struct CopyError {
    /// The source path that failed.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Copies the tree below `from` into the existing directory `to`.
///
/// Regular files, directories, symlinks and FIFOs are copied with their permission bits and
/// modification times; ownership is kept where the kernel allows it (all ids mapped); files
/// hard-linked together stay hard-linked. Device nodes and sockets are skipped: an image
/// cannot ship usable ones into an unprivileged container anyway.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), CopyError> {
    let mut links = HashMap::new();
    copy_dir_contents(from, to, &mut links)?;
    let meta = fs::symlink_metadata(from).map_err(|source| CopyError {
        path: from.into(),
        source,
    })?;
    finish(to, &meta).map_err(|source| CopyError {
        path: from.into(),
        source,
    })
}

/// Copies the entries of `from` into `to`; `links` remembers the first copy of each inode
/// that has more than one link.
fn copy_dir_contents(
    from: &Path,
    to: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), CopyError> {
    let entries = fs::read_dir(from).map_err(|source| CopyError {
        path: from.into(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CopyError {
            path: from.into(),
            source,
        })?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        copy_entry(&src, &dst, links).map_err(|source| CopyError {
            path: src.clone(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir_contents(&src, &dst, links)?;
            let meta = fs::symlink_metadata(&src).map_err(|source| CopyError {
                path: src.clone(),
                source,
            })?;
            finish(&dst, &meta).map_err(|source| CopyError { path: src, source })?;
        }
    }
    Ok(())
}

/// Creates `dst` as a copy of the single entry `src` (a directory is created empty, its mode
/// and times are set by [`finish`] once its contents are in place).
fn copy_entry(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let kind = meta.file_type();
    if kind.is_dir() {
        // Writable for us until its contents are copied; `finish` sets the real mode.
        fs::create_dir(dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o700))?;
        return Ok(());
    }
    if meta.nlink() > 1 && !kind.is_symlink() {
        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            return fs::hard_link(first, dst);
        }
        links.insert((meta.dev(), meta.ino()), dst.to_path_buf());
    }
    if kind.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if kind.is_file() {
        fs::copy(src, dst)?;
    } else if meta.mode() & libc::S_IFMT == libc::S_IFIFO {
        nix::unistd::mkfifo(dst, Mode::from_bits_truncate(0o600))?;
    } else {
        // Device nodes and sockets: see `copy_tree`.
        return Ok(());
    }
    finish(dst, &meta)
}

/// Applies ownership, permission bits and times of `meta` to `dst`.
fn finish(dst: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
    // Ownership: an id that is not mapped in our namespace cannot be set; keep ours then.
    match std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EINVAL)) => {}
        Err(e) => return Err(e),
    }
    let is_symlink = meta.file_type().is_symlink();
    if !is_symlink {
        // After chown, since chown clears set-id bits.
        let mode = meta.mode() & !(SFlag::S_IFMT.bits());
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn copies_files_dirs_symlinks_modes_and_hardlinks() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("usr/bin")).unwrap();
        fs::write(s.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(s.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::hard_link(s.join("usr/bin/tool"), s.join("usr/bin/tool2")).unwrap();
        symlink("usr/bin", s.join("bin")).unwrap();
        symlink("/nowhere", s.join("dangling")).unwrap();
        fs::create_dir(s.join("locked")).unwrap();
        fs::write(s.join("locked/secret"), b"s").unwrap();
        fs::set_permissions(s.join("locked"), fs::Permissions::from_mode(0o500)).unwrap();
        nix::unistd::mkfifo(&s.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();

        copy_tree(s, dst.path()).unwrap();
        let d = dst.path();
        assert_eq!(fs::read(d.join("usr/bin/tool")).unwrap(), b"#!/bin/sh\n");
        let tool = fs::metadata(d.join("usr/bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o755);
        let tool2 = fs::metadata(d.join("usr/bin/tool2")).unwrap();
        assert_eq!(tool.ino(), tool2.ino(), "hard links stay linked");
        assert_eq!(fs::read_link(d.join("bin")).unwrap(), Path::new("usr/bin"));
        assert_eq!(
            fs::read_link(d.join("dangling")).unwrap(),
            Path::new("/nowhere")
        );
        assert_eq!(fs::read(d.join("locked/secret")).unwrap(), b"s");
        let locked = fs::metadata(d.join("locked")).unwrap();
        assert_eq!(locked.mode() & 0o7777, 0o500);
        let fifo = fs::symlink_metadata(d.join("fifo")).unwrap();
        assert_eq!(fifo.mode() & libc::S_IFMT, libc::S_IFIFO);
        assert_eq!(
            fs::metadata(d.join("usr/bin/tool")).unwrap().mtime(),
            fs::metadata(s.join("usr/bin/tool")).unwrap().mtime()
        );
        // The tempdir cleanup needs to enter it again.
        fs::set_permissions(s.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(d.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn names_the_failing_path() {
        let dst = tempfile::tempdir().unwrap();
        let err = copy_tree(Path::new("/nonexistent/oci2bin"), dst.path()).unwrap_err();
        assert_eq!(err.path, Path::new("/nonexistent/oci2bin"));
        assert!(err.to_string().contains("/nonexistent/oci2bin"));
    }
}
