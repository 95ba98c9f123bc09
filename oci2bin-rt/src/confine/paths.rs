//! Kernel files the workload must not read or write: docker's and podman's default masked
//! and read-only paths.
//!
//! A fresh `/proc` still shows host-wide state (`/proc/keys` lists key descriptions,
//! `/proc/timer_list` leaks kernel addresses, `/proc/sys` writes host sysctls where the
//! owner check passes, which it does when root runs the binary). Masked files get
//! `/dev/null` bound over them and masked directories an empty read-only tmpfs; read-only
//! paths are bound onto themselves and made read-only. Without `CAP_SYS_ADMIN` (not in the
//! default set, and `mount`/`umount2` are refused by the seccomp filter) the workload can
//! neither unmount the masks nor remount them writable.

use crate::ns::error::ContainerError;
use crate::ns::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::path::Path;

/// Masked below `/proc` (docker's list, plus podman's `/proc/interrupts`).
pub const MASKED_PROC: [&str; 10] = [
    "asound",
    "acpi",
    "interrupts",
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "scsi",
];

/// Masked below `/sys` (docker's list, plus podman's `/sys/fs/selinux` and `/sys/dev/block`).
pub const MASKED_SYS: [&str; 4] = [
    "firmware",
    "devices/virtual/powercap",
    "fs/selinux",
    "dev/block",
];

/// Read-only below `/proc` (docker's and podman's list).
pub const READONLY_PROC: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// Flags of a masking tmpfs: empty, read-only, nothing runnable.
const MASK_TMPFS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Hides `target`: `/dev/null` over a file, an empty read-only tmpfs over a directory;
/// a path this kernel does not have is skipped.
fn mask(sys: &dyn Syscall, dev_null: &Path, target: &Path) -> Result<(), ContainerError> {
    match sys.mount(Some(dev_null), target, None, MsFlags::MS_BIND, None) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => sys
            .mount(
                Some(Path::new("tmpfs")),
                target,
                Some("tmpfs"),
                MASK_TMPFS,
                Some("size=0k,mode=0555"),
            )
            .map_err(ContainerError::mount("a masking tmpfs", target)),
        Err(errno) => Err(ContainerError::mount(
            "/dev/null over a masked file",
            target,
        )(errno)),
    }
}

/// Makes `target` and everything below it read-only (a bind onto itself, then
/// `mount_setattr`, or a remount repeating the locked flags on kernels before 5.12).
pub fn bind_readonly(sys: &dyn Syscall, target: &Path) -> Result<(), ContainerError> {
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    match sys.mount(Some(target), target, None, bind, None) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(ContainerError::mount("a read-only bind", target)(errno)),
    }
    if sys.make_readonly_recursive(target).is_ok() {
        return Ok(());
    }
    let flags = sys.mount_flags(target).unwrap_or(MsFlags::empty());
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags;
    sys.mount(None, target, None, remount, None)
        .map_err(ContainerError::mount("a read-only remount", target))
}

/// Applies the masks and read-only paths below the container's `proc` and `sys` mount
/// points (host paths, already resolved inside the root, so an image cannot redirect them
/// with symlinks); `dev_null` is the container's `/dev/null`.
pub fn protect_kernel_paths(
    sys: &dyn Syscall,
    proc: &Path,
    sysfs: Option<&Path>,
    dev_null: &Path,
) -> Result<(), ContainerError> {
    for name in MASKED_PROC {
        mask(sys, dev_null, &proc.join(name))?;
    }
    if let Some(sysfs) = sysfs {
        for name in MASKED_SYS {
            mask(sys, dev_null, &sysfs.join(name))?;
        }
    }
    for name in READONLY_PROC {
        bind_readonly(sys, &proc.join(name))?;
    }
    Ok(())
}

/// The paths [`protect_kernel_paths`] masks and makes read-only, for `--debug`.
pub fn describe() -> String {
    let masked: Vec<String> = MASKED_PROC
        .iter()
        .map(|n| format!("/proc/{n}"))
        .chain(MASKED_SYS.iter().map(|n| format!("/sys/{n}")))
        .collect();
    let ro: Vec<String> = READONLY_PROC.iter().map(|n| format!("/proc/{n}")).collect();
    format!(
        "masked: {}; read-only: {}, /sys",
        masked.join(" "),
        ro.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    #[test]
    fn files_get_dev_null_and_directories_a_readonly_tmpfs() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| {
                matches!(c, Call::Mount { target, source: Some(s), .. }
                if target == Path::new("/r/sys/firmware") && s == Path::new("/r/dev/null"))
            },
            Errno::ENOTDIR,
        );
        sys.fail_when(
            |c| matches!(c, Call::Mount { target, .. } if target == Path::new("/r/proc/scsi")),
            Errno::ENOENT,
        );
        protect_kernel_paths(
            &sys,
            Path::new("/r/proc"),
            Some(Path::new("/r/sys")),
            Path::new("/r/dev/null"),
        )
        .unwrap();
        let calls = sys.calls();
        assert!(calls.contains(&Call::mount(
            Some("/r/dev/null"),
            "/r/proc/keys",
            None,
            MsFlags::MS_BIND,
            None
        )));
        assert!(calls.contains(&Call::mount(
            Some("tmpfs"),
            "/r/sys/firmware",
            Some("tmpfs"),
            MASK_TMPFS,
            Some("size=0k,mode=0555")
        )));
        let sys_ro = Call::mount(
            Some("/r/proc/sys"),
            "/r/proc/sys",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        );
        let at = calls
            .iter()
            .position(|c| *c == sys_ro)
            .expect("/proc/sys bound");
        assert_eq!(calls[at + 1], Call::ReadonlyRecursive("/r/proc/sys".into()));
        // /proc/scsi does not exist on this "kernel": skipped, not an error, no tmpfs.
        assert!(!calls.iter().any(|c| matches!(c,
            Call::Mount { target, fstype: Some(_), .. } if target == Path::new("/r/proc/scsi"))));
    }

    #[test]
    fn readonly_falls_back_to_a_remount_with_the_locked_flags() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::ReadonlyRecursive(_)), Errno::ENOSYS);
        bind_readonly(&sys, Path::new("/r/proc/sys")).unwrap();
        let last = sys.calls().pop().unwrap();
        assert!(matches!(last, Call::Mount { flags, .. }
            if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_BIND)));
    }

    #[test]
    fn a_refused_mask_is_an_error_naming_the_path() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { target, .. } if target == Path::new("/r/proc/keys")),
            Errno::EPERM,
        );
        let err =
            protect_kernel_paths(&sys, Path::new("/r/proc"), None, Path::new("/n")).unwrap_err();
        assert!(err.to_string().contains("/r/proc/keys"), "{err}");
    }
}
