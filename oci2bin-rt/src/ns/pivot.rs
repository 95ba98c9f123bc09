//! Entering the container's root for good.
//!
//! `pivot_root` makes the new root the namespace's root and leaves the old one detachable,
//! so no host path remains reachable (a `chroot` alone can be escaped). Where `pivot_root`
//! is refused with `EINVAL` because the host's root is the initramfs `rootfs`, which cannot
//! be pivoted away from, the new root is moved over `/` with `MS_MOVE` and `chroot`ed into,
//! as runc does.

use crate::ns::error::ContainerError;
use crate::ns::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::path::Path;

/// Makes `new_root` (a mount point) the root and current directory of the calling process
/// and detaches the host's file system tree.
pub fn enter_root(sys: &dyn Syscall, new_root: &Path) -> Result<(), ContainerError> {
    let err = |step: &'static str| {
        let root = new_root.to_path_buf();
        move |errno: Errno| ContainerError::Pivot { root, step, errno }
    };
    let here = Path::new(".");
    sys.chdir(new_root).map_err(err("chdir"))?;
    // pivot_root(".", "."): the old root ends up stacked on the new one at "/", and is
    // detached right away; no directory for it is needed in the image.
    match sys.pivot_root(here, here) {
        Ok(()) => {
            sys.umount2(here, MntFlags::MNT_DETACH)
                .map_err(err("detach the old root"))?;
        }
        Err(Errno::EINVAL) => {
            sys.mount(Some(here), Path::new("/"), None, MsFlags::MS_MOVE, None)
                .map_err(err("MS_MOVE onto / after pivot_root was refused"))?;
            sys.chroot(here).map_err(err("chroot"))?;
        }
        Err(errno) => return Err(err("pivot_root")(errno)),
    }
    sys.chdir(Path::new("/")).map_err(err("chdir /"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    #[test]
    fn pivots_and_detaches_the_old_root() {
        let sys = RecordingSyscall::new();
        enter_root(&sys, Path::new("/tmp/root")).unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::Chdir("/tmp/root".into()),
                Call::PivotRoot(".".into(), ".".into()),
                Call::Umount2(".".into(), MntFlags::MNT_DETACH),
                Call::Chdir("/".into()),
            ]
        );
    }

    #[test]
    fn falls_back_to_move_and_chroot_on_einval() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::PivotRoot(..)), Errno::EINVAL);
        enter_root(&sys, Path::new("/tmp/root")).unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::Chdir("/tmp/root".into()),
                Call::PivotRoot(".".into(), ".".into()),
                Call::mount(Some("."), "/", None, MsFlags::MS_MOVE, None),
                Call::Chroot(".".into()),
                Call::Chdir("/".into()),
            ]
        );
    }

    #[test]
    fn other_pivot_errors_fail_with_the_root_named() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::PivotRoot(..)), Errno::EPERM);
        let err = enter_root(&sys, Path::new("/tmp/root")).unwrap_err();
        assert!(err.to_string().contains("/tmp/root (pivot_root)"), "{err}");
    }
}
