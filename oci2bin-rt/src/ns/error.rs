//! Errors of the container setup: each says which step failed, on which path or id, and what
//! the user can do about it.

use crate::ns::copy::CopyError;
use crate::ns::diagnose::Diagnosis;
use nix::errno::Errno;
use std::path::PathBuf;

/// A failure while creating or entering the container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The cached image root is not the directory the cache checked.
    #[error("cannot use the cached image {} as the container's root: {errno}{}", path.display(), if *errno == Errno::ESTALE { " (it was replaced after it was checked: something is changing the cache; run again)" } else { "" })]
    Lower {
        /// The cache entry.
        path: PathBuf,
        /// The error (`ESTALE`: replaced).
        errno: Errno,
    },
    /// `clone(CLONE_NEWUSER | ...)` failed.
    #[error("cannot create the container's user namespace: {errno}\n{diagnosis}")]
    UserNamespace {
        /// The kernel's answer.
        errno: Errno,
        /// The host settings that explain it.
        diagnosis: Diagnosis,
    },
    /// Writing an id map (or `setgroups`) of the new namespace failed.
    #[error("cannot write {path}: {errno}\n{diagnosis}")]
    IdMap {
        /// The `/proc/PID/...` file.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
        /// The host settings that explain it.
        diagnosis: Diagnosis,
    },
    /// `newgidmap` failed after `newuidmap` succeeded, so no consistent mapping is possible.
    #[error(
        "{program} failed ({detail}); check the ranges for this user in /etc/subgid \
         and that {program} is installed setuid root (package uidmap)"
    )]
    IdMapHelper {
        /// The helper that failed.
        program: PathBuf,
        /// Exit status or spawn error.
        detail: String,
    },
    /// A mount failed.
    #[error("cannot mount {what} on {target}: {errno}")]
    Mount {
        /// What was being mounted ("the run's tmpfs", "procfs").
        what: &'static str,
        /// The mount point.
        target: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A mount point could not be found or created inside the image's root.
    #[error(
        "cannot create the mount point {path} inside the image: {errno} \
         (is it a file, or a symlink to something that is not a directory, in the image?)"
    )]
    MountPoint {
        /// The path inside the image.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A volume's mount point is somewhere no volume may go.
    #[error("cannot mount a volume on {}: {reason}", path.display())]
    MountTarget {
        /// The target inside the container, as given.
        path: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// The copy fallback for overlayfs failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A file the runtime writes (`/etc/hosts`, a `/dev` node) could not be created.
    #[error("cannot write {path} in the container: {errno}")]
    WriteFile {
        /// The path (inside the image for `/etc` files).
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
    /// `sethostname` failed.
    #[error("cannot set the container's hostname {name}: {errno}")]
    Hostname {
        /// The hostname.
        name: String,
        /// The kernel's answer.
        errno: Errno,
    },
    /// Neither `pivot_root` nor the `MS_MOVE` + `chroot` fallback worked.
    #[error("cannot switch into the container's root {root} ({step}): {errno}")]
    Pivot {
        /// The new root.
        root: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The parent and the container's init lost contact.
    #[error("cannot synchronise with the container's init process ({step}): {errno}")]
    Sync {
        /// What was being done.
        step: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// Forking the workload or waiting for it failed.
    #[error("cannot {step}: {errno}")]
    Process {
        /// What was being done.
        step: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The working directory could not be created.
    #[error("cannot create the working directory {path} inside the image: {errno}")]
    Workdir {
        /// The working directory.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
}

impl ContainerError {
    /// The error for a failed mount of `what` on `target`, for `map_err`.
    pub fn mount(what: &'static str, target: &std::path::Path) -> impl FnOnce(Errno) -> Self {
        let target = target.to_path_buf();
        move |errno| ContainerError::Mount {
            what,
            target,
            errno,
        }
    }
}
