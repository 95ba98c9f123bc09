//! The kernel file systems a container expects: a `/proc` of its own pid namespace, a
//! minimal `/dev`, a read-only view of `/sys`, and a fresh `/tmp`.
//!
//! Mount points are resolved inside the image's root, so a symlink in the image (`/tmp ->
//! /var/tmp`) is followed as the container would see it and can never lead to a host path.
//! `/dev` is a tmpfs holding bind mounts of the host's harmless character devices (a user
//! namespace may not create device nodes), a private devpts instance and a `/dev/shm`.

use crate::confine::paths::protect_kernel_paths;
use crate::confine::policy::Confinement;
use crate::ns::error::ContainerError;
use crate::ns::report::Reporter;
use crate::ns::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// Host devices bind-mounted into the container's `/dev`, as docker provides them.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `/dev` symlinks into `/proc/self/fd`.
const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// `nosuid,nodev,noexec`: for file systems that hold no programs or devices.
const RESTRICTED: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Resolves (and creates) a mount point inside the image's root.
fn mount_point(sys: &dyn Syscall, root: &Path, path: &str) -> Result<PathBuf, ContainerError> {
    sys.resolve_dir_in_root(root, Path::new(path), true)
        .map_err(|errno| ContainerError::MountPoint {
            path: path.into(),
            errno,
        })
}

/// Mounts a procfs of the container's pid namespace on `/proc`, or, where the kernel refuses
/// (a host `/proc` with masked paths, as inside another container), a recursive bind of the
/// host's `/proc`, which shows host processes but keeps programs working.
pub fn mount_proc(
    sys: &dyn Syscall,
    root: &Path,
    reporter: &Reporter,
) -> Result<PathBuf, ContainerError> {
    let target = mount_point(sys, root, "/proc")?;
    let fresh = sys.mount(
        Some(Path::new("proc")),
        &target,
        Some("proc"),
        RESTRICTED,
        None,
    );
    if let Err(errno) = fresh {
        reporter.debug(format_args!(
            "/proc: the kernel refused a new procfs ({errno}); bind-mounting the host's /proc"
        ));
        sys.mount(
            Some(Path::new("/proc")),
            &target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(ContainerError::mount("a bind of the host's /proc", &target))?;
    }
    Ok(target)
}

/// Builds `/dev`: a tmpfs with [`DEVICES`] bound from the host, `pts` (a new devpts instance,
/// `ptmx` linked to it), `shm`, `mqueue` and the `fd`/`stdin`/`stdout`/`stderr` links.
///
/// `tty_gid_mapped` says whether gid 5 (`tty`) exists in the container, which devpts needs
/// to give new terminals that group.
pub fn mount_dev(
    sys: &dyn Syscall,
    root: &Path,
    tty_gid_mapped: bool,
    reporter: &Reporter,
) -> Result<PathBuf, ContainerError> {
    let dev = mount_point(sys, root, "/dev")?;
    sys.mount(
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(ContainerError::mount("the /dev tmpfs", &dev))?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |errno| ContainerError::WriteFile { path, errno }
    };
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let node = dev.join(name);
        sys.create_file(&node, 0o666).map_err(write_err(&node))?;
        match sys.mount(Some(&host), &node, None, MsFlags::MS_BIND, None) {
            Ok(()) => {}
            Err(Errno::ENOENT) => {
                reporter.debug(format_args!("/dev/{name}: the host has none, skipped"));
            }
            Err(errno) => return Err(ContainerError::mount("a host device", &node)(errno)),
        }
    }
    let pts = dev.join("pts");
    sys.mkdir(&pts, 0o755).map_err(write_err(&pts))?;
    let devpts = |data: &str| {
        sys.mount(
            Some(Path::new("devpts")),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(data),
        )
    };
    let base = "newinstance,ptmxmode=0666,mode=0620";
    let result = if tty_gid_mapped {
        devpts(&format!("{base},gid=5")).or_else(|_| devpts(base))
    } else {
        devpts(base)
    };
    match result {
        Ok(()) => {
            let ptmx = dev.join("ptmx");
            sys.symlink(Path::new("pts/ptmx"), &ptmx)
                .map_err(write_err(&ptmx))?;
        }
        Err(errno) => reporter.debug(format_args!(
            "/dev/pts: devpts cannot be mounted ({errno}); the container cannot open new terminals"
        )),
    }
    let shm = dev.join("shm");
    sys.mkdir(&shm, 0o1777).map_err(write_err(&shm))?;
    sys.mount(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        RESTRICTED,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ContainerError::mount("the /dev/shm tmpfs", &shm))?;
    let mqueue = dev.join("mqueue");
    sys.mkdir(&mqueue, 0o755).map_err(write_err(&mqueue))?;
    if let Err(errno) = sys.mount(
        Some(Path::new("mqueue")),
        &mqueue,
        Some("mqueue"),
        RESTRICTED,
        None,
    ) {
        reporter.debug(format_args!(
            "/dev/mqueue: cannot be mounted ({errno}), skipped"
        ));
    }
    for (name, target) in DEV_LINKS {
        let link = dev.join(name);
        sys.symlink(Path::new(target), &link)
            .map_err(write_err(&link))?;
    }
    Ok(dev)
}

/// Binds the host's `/sys` read-only (a fresh sysfs needs a network namespace of our own,
/// and we share the host's network). Not fatal: a container without `/sys` mostly works.
pub fn mount_sys(
    sys: &dyn Syscall,
    root: &Path,
    read_only: bool,
    reporter: &Reporter,
) -> Result<Option<PathBuf>, ContainerError> {
    let target = mount_point(sys, root, "/sys")?;
    if let Err(errno) = sys.mount(
        Some(Path::new("/sys")),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    ) {
        reporter.debug(format_args!(
            "/sys: cannot bind the host's /sys ({errno}), left empty"
        ));
        return Ok(None);
    }
    if !read_only {
        return Ok(Some(target));
    }
    if sys.make_readonly_recursive(&target).is_ok() {
        return Ok(Some(target));
    }
    // Before Linux 5.12: remount the top mount read-only, repeating its locked flags.
    let flags = sys.mount_flags(&target).unwrap_or(RESTRICTED);
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags;
    if let Err(errno) = sys.mount(None, &target, None, remount, None) {
        reporter.debug(format_args!("/sys: cannot make it read-only ({errno})"));
    }
    Ok(Some(target))
}

/// Options of the `/tmp` tmpfs: world-writable with the sticky bit, and bounded, because a
/// tmpfs is RAM (docker's `--tmpfs` size for `/dev/shm`-like mounts, 64 MiB, would be too
/// small for programs that spool to `/tmp`; a quarter of RAM is the bound here).
pub const TMP_OPTIONS: &str = "mode=1777,size=25%";

/// Mounts a fresh tmpfs with `options` on `path` inside the root (created if missing).
pub fn mount_tmpfs(
    sys: &dyn Syscall,
    root: &Path,
    path: &str,
    options: &str,
) -> Result<(), ContainerError> {
    let target = mount_point(sys, root, path)?;
    sys.mount(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(ContainerError::mount("a tmpfs", &target))
}

/// All of the above, in order: `/proc`, `/dev`, `/sys`, then the masked and read-only
/// kernel paths the confinement asks for, and `/tmp` (plus `/run` and `/var/tmp` for a
/// read-only root, as podman's `--read-only-tmpfs`).
pub fn mount_kernel_filesystems(
    sys: &dyn Syscall,
    root: &Path,
    tty_gid_mapped: bool,
    confinement: &Confinement,
    reporter: &Reporter,
) -> Result<(), ContainerError> {
    let proc = mount_proc(sys, root, reporter)?;
    let dev = mount_dev(sys, root, tty_gid_mapped, reporter)?;
    let sysfs = mount_sys(sys, root, confinement.protect_kernel_paths, reporter)?;
    if confinement.protect_kernel_paths {
        protect_kernel_paths(sys, &proc, sysfs.as_deref(), &dev.join("null"))?;
    }
    mount_tmpfs(sys, root, "/tmp", TMP_OPTIONS)?;
    if confinement.read_only_root {
        mount_tmpfs(sys, root, "/run", "mode=0755,size=25%")?;
        mount_tmpfs(sys, root, "/var/tmp", TMP_OPTIONS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    fn quiet() -> Reporter {
        Reporter::new("test", false)
    }

    #[test]
    fn proc_is_fresh_or_a_bind_of_the_hosts() {
        let sys = RecordingSyscall::new();
        mount_proc(&sys, Path::new("/r"), &quiet()).unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::ResolveDir("/r".into(), "/proc".into(), true),
                Call::mount(Some("proc"), "/r/proc", Some("proc"), RESTRICTED, None),
            ]
        );
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "proc"),
            Errno::EPERM,
        );
        mount_proc(&sys, Path::new("/r"), &quiet()).unwrap();
        assert_eq!(
            sys.calls().pop().unwrap(),
            Call::mount(
                Some("/proc"),
                "/r/proc",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None
            )
        );
    }

    #[test]
    fn dev_layout() {
        let sys = RecordingSyscall::new();
        mount_dev(&sys, Path::new("/r"), true, &quiet()).unwrap();
        let calls = sys.calls();
        assert_eq!(calls[0], Call::ResolveDir("/r".into(), "/dev".into(), true));
        assert_eq!(
            calls[1],
            Call::mount(
                Some("tmpfs"),
                "/r/dev",
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                Some("mode=755,size=65536k")
            )
        );
        for name in DEVICES {
            let node = format!("/r/dev/{name}");
            let create = calls
                .iter()
                .position(|c| *c == Call::CreateFile(node.clone().into(), 0o666))
                .unwrap();
            assert_eq!(
                calls[create + 1],
                Call::mount(
                    Some(&format!("/dev/{name}")),
                    &node,
                    None,
                    MsFlags::MS_BIND,
                    None
                )
            );
        }
        assert!(calls.contains(&Call::mount(
            Some("devpts"),
            "/r/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
        )));
        assert!(calls.contains(&Call::Symlink("pts/ptmx".into(), "/r/dev/ptmx".into())));
        assert!(calls.contains(&Call::mount(
            Some("shm"),
            "/r/dev/shm",
            Some("tmpfs"),
            RESTRICTED,
            Some("mode=1777,size=65536k")
        )));
        for (name, target) in DEV_LINKS {
            assert!(calls.contains(&Call::Symlink(
                target.into(),
                format!("/r/dev/{name}").into()
            )));
        }
    }

    #[test]
    fn devpts_without_tty_group_in_single_mapping() {
        let sys = RecordingSyscall::new();
        mount_dev(&sys, Path::new("/r"), false, &quiet()).unwrap();
        assert!(sys.calls().contains(&Call::mount(
            Some("devpts"),
            "/r/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620")
        )));
    }

    #[test]
    fn missing_host_device_is_skipped_but_other_errors_fail() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { source: Some(s), .. } if s == Path::new("/dev/full")),
            Errno::ENOENT,
        );
        mount_dev(&sys, Path::new("/r"), false, &quiet()).unwrap();
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { source: Some(s), .. } if s == Path::new("/dev/null")),
            Errno::EPERM,
        );
        let err = mount_dev(&sys, Path::new("/r"), false, &quiet()).unwrap_err();
        assert!(err.to_string().contains("/r/dev/null"), "{err}");
    }

    #[test]
    fn sys_readonly_with_fallback_remount() {
        let sys = RecordingSyscall::new();
        mount_sys(&sys, Path::new("/r"), true, &quiet()).unwrap();
        assert_eq!(
            sys.calls()[1..],
            [
                Call::mount(
                    Some("/sys"),
                    "/r/sys",
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None
                ),
                Call::ReadonlyRecursive("/r/sys".into()),
            ]
        );
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::ReadonlyRecursive(_)), Errno::ENOSYS);
        mount_sys(&sys, Path::new("/r"), true, &quiet()).unwrap();
        assert_eq!(
            sys.calls().pop().unwrap(),
            Call::mount(
                None,
                "/r/sys",
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | RESTRICTED,
                None
            )
        );
        // A refused bind leaves /sys empty without failing the run.
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::Mount { .. }), Errno::EPERM);
        mount_sys(&sys, Path::new("/r"), true, &quiet()).unwrap();
    }

    #[test]
    fn order_of_kernel_filesystems() {
        let sys = RecordingSyscall::new();
        mount_kernel_filesystems(
            &sys,
            Path::new("/r"),
            false,
            &Confinement::default(),
            &quiet(),
        )
        .unwrap();
        let resolved: Vec<PathBuf> = sys
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::ResolveDir(_, p, true) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            resolved,
            vec![
                PathBuf::from("/proc"),
                PathBuf::from("/dev"),
                PathBuf::from("/sys"),
                PathBuf::from("/tmp")
            ]
        );
        assert_eq!(
            sys.calls().pop().unwrap(),
            Call::mount(
                Some("tmpfs"),
                "/r/tmp",
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(TMP_OPTIONS)
            )
        );
    }

    #[test]
    fn a_read_only_root_gets_tmpfs_on_run_and_var_tmp_and_privileged_no_masks() {
        let sys = RecordingSyscall::new();
        let confinement = Confinement {
            read_only_root: true,
            protect_kernel_paths: false,
            ..Confinement::default()
        };
        mount_kernel_filesystems(&sys, Path::new("/r"), false, &confinement, &quiet()).unwrap();
        let targets = sys.mount_targets();
        assert!(targets.ends_with(&["/r/tmp".into(), "/r/run".into(), "/r/var/tmp".into()]));
        assert!(!targets.contains(&"/r/proc/keys".to_string()));
        assert!(!sys
            .calls()
            .contains(&Call::ReadonlyRecursive("/r/sys".into())));
    }
}
