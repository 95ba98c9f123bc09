//! The user's mounts (`-v`, `--mount`, `--tmpfs`), carried out by the container's init
//! after the kernel file systems and the `/etc` files, so that nothing the runtime writes
//! can land in a volume.
//!
//! Each target is resolved inside the image's root (a symlink in the image is followed as
//! the container would see it and can never lead to a host path), created if missing (a
//! directory, or an empty file for a file bind), and refused when it resolves to the root
//! itself or into `/proc`: a volume mounted over the root would become the container's root,
//! and over `/proc` would hide the masked kernel paths. Read-only mounts are made read-only
//! recursively; the workload cannot remount them (no `CAP_SYS_ADMIN`, `mount` filtered).

use crate::ns::error::ContainerError;
use crate::ns::report::Reporter;
use crate::ns::syscall::Syscall;
use crate::volume::host::{ContainerMount, MountKind};
use nix::mount::MsFlags;
use std::path::Path;

/// Where a target may not resolve to, relative to the root: the root, and `/proc`.
fn forbidden(root: &Path, resolved: &Path) -> Option<&'static str> {
    let inside = resolved.strip_prefix(root).ok()?;
    if inside.as_os_str().is_empty() {
        Some("it resolves to the container's root (a symlink to / in the image?)")
    } else if inside.starts_with("proc") {
        Some("it resolves into /proc, which cannot be mounted over")
    } else {
        None
    }
}

/// Makes the mount at `target` read-only, with its submounts.
fn make_read_only(sys: &dyn Syscall, target: &Path) -> Result<(), ContainerError> {
    if sys.make_readonly_recursive(target).is_ok() {
        return Ok(());
    }
    // Before Linux 5.12: remount the top mount read-only, repeating its locked flags.
    let flags = sys.mount_flags(target).unwrap_or(MsFlags::empty());
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags;
    sys.mount(None, target, None, remount, None)
        .map_err(ContainerError::mount("a read-only volume (:ro)", target))
}

/// Mounts every one of `mounts` inside `root`, in order.
pub fn mount_requested(
    sys: &dyn Syscall,
    root: &Path,
    mounts: &[ContainerMount],
    reporter: &Reporter,
) -> Result<(), ContainerError> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root = sys
        .resolve_dir_in_root(root, Path::new("/"), false)
        .map_err(|errno| ContainerError::MountPoint {
            path: "/".into(),
            errno,
        })?;
    for mount in mounts {
        let point_err = |errno| ContainerError::MountPoint {
            path: mount.target.clone(),
            errno,
        };
        let file = matches!(mount.kind, MountKind::Bind { file: true, .. });
        let target = if file {
            sys.resolve_file_in_root(&root, &mount.target)
        } else {
            sys.resolve_dir_in_root(&root, &mount.target, true)
        }
        .map_err(point_err)?;
        if let Some(reason) = forbidden(&root, &target) {
            return Err(ContainerError::MountTarget {
                path: mount.target.clone(),
                reason,
            });
        }
        match &mount.kind {
            MountKind::Bind {
                source, copy_up, ..
            } => {
                if *copy_up {
                    // A new named volume starts with what the image has there, as docker's.
                    sys.copy_tree(&target, source)?;
                }
                sys.mount(
                    Some(source),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(ContainerError::mount("a volume", &target))?;
                if mount.read_only {
                    make_read_only(sys, &target)?;
                }
                reporter.debug(format_args!(
                    "volume: {} on {}{}",
                    source.display(),
                    mount.target.display(),
                    if mount.read_only { " (read-only)" } else { "" }
                ));
            }
            MountKind::Tmpfs { data, exec } => {
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if !exec {
                    flags |= MsFlags::MS_NOEXEC;
                }
                if mount.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                sys.mount(
                    Some(Path::new("tmpfs")),
                    &target,
                    Some("tmpfs"),
                    flags,
                    Some(data),
                )
                .map_err(ContainerError::mount("a tmpfs (--tmpfs)", &target))?;
                reporter.debug(format_args!("tmpfs: {} ({data})", mount.target.display()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};
    use std::path::PathBuf;

    fn quiet() -> Reporter {
        Reporter::new("test", false)
    }

    fn bind(source: &str, target: &str, file: bool, read_only: bool) -> ContainerMount {
        ContainerMount {
            kind: MountKind::Bind {
                source: source.into(),
                file,
                copy_up: false,
            },
            target: target.into(),
            read_only,
        }
    }

    #[test]
    fn binds_and_tmpfs_in_order_read_only_made_so() {
        let sys = RecordingSyscall::new();
        let mounts = vec![
            bind("/srv", "/data", false, true),
            bind("/etc/hosts", "/etc/h", true, false),
            ContainerMount {
                kind: MountKind::Tmpfs {
                    data: "mode=1777,size=1m".into(),
                    exec: false,
                },
                target: "/scratch".into(),
                read_only: false,
            },
        ];
        mount_requested(&sys, Path::new("/r"), &mounts, &quiet()).unwrap();
        let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
        assert_eq!(
            sys.calls(),
            vec![
                Call::ResolveDir("/r".into(), "/".into(), false),
                Call::ResolveDir("/r".into(), "/data".into(), true),
                Call::mount(Some("/srv"), "/r/data", None, rec, None),
                Call::ReadonlyRecursive("/r/data".into()),
                Call::ResolveFile("/r".into(), "/etc/h".into()),
                Call::mount(Some("/etc/hosts"), "/r/etc/h", None, rec, None),
                Call::ResolveDir("/r".into(), "/scratch".into(), true),
                Call::mount(
                    Some("tmpfs"),
                    "/r/scratch",
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    Some("mode=1777,size=1m")
                ),
            ]
        );
    }

    #[test]
    fn a_target_resolving_to_the_root_or_proc_is_refused() {
        assert!(forbidden(Path::new("/r"), Path::new("/r")).is_some());
        assert!(forbidden(Path::new("/r"), Path::new("/r/proc/sys")).is_some());
        assert!(forbidden(Path::new("/r"), Path::new("/r/procs")).is_none());
        assert!(forbidden(Path::new("/r"), Path::new("/r/data")).is_none());
        let sys = RecordingSyscall::new();
        // `/data/..` resolves to the root in the fake, as a symlink to / would.
        let err = mount_requested(
            &sys,
            Path::new("/r"),
            &[bind("/srv", "/data/..", false, false)],
            &quiet(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("container's root"), "{err}");
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Mount { .. })));
    }

    #[test]
    fn a_new_named_volume_gets_the_images_files_first() {
        let sys = RecordingSyscall::new();
        let mut m = bind("/cache/volumes/v/_data", "/var/lib/db", false, false);
        m.kind = MountKind::Bind {
            source: "/cache/volumes/v/_data".into(),
            file: false,
            copy_up: true,
        };
        mount_requested(&sys, Path::new("/r"), &[m], &quiet()).unwrap();
        let calls = sys.calls();
        assert_eq!(
            calls[2],
            Call::CopyTree(
                PathBuf::from("/r/var/lib/db"),
                PathBuf::from("/cache/volumes/v/_data")
            )
        );
        assert!(matches!(calls[3], Call::Mount { .. }));
    }
}
