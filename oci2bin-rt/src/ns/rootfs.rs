//! The container's root: a throwaway writable view of the pristine cached image.
//!
//! An overlay is mounted with the cached root as the read-only lower layer and the upper and
//! work directories in the run's directory on disk (see [`crate::cache::runs`]). So every
//! run starts from the image as built, what the workload writes is on disk rather than in
//! RAM and vanishes when the run ends, and the cache is never written. Where overlayfs
//! cannot be mounted (old kernels, a cache on a file system overlayfs does not accept as a
//! lower layer) the root is copied into the run's directory instead: slower, same behaviour.

use crate::ns::error::ContainerError;
use crate::ns::report::Reporter;
use crate::ns::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::path::{Path, PathBuf};

/// How the root was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// overlayfs over the cached root.
    Overlay,
    /// A private copy in the run's directory.
    Copy,
}

/// Escapes a path for an overlayfs option (`\`, `,` and `:` are separators there).
fn escape_overlay_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Makes every mount private and builds the root from `lower` in the run directory
/// `run_dir` (which has `upper`, `work` and `root`); returns the root's path (a mount
/// point, ready for `pivot_root`).
pub fn prepare_root(
    sys: &dyn Syscall,
    lower: &Path,
    run_dir: &Path,
    reporter: &Reporter,
) -> Result<(PathBuf, RootKind), ContainerError> {
    let mount_err = ContainerError::mount;
    // Nothing we mount may propagate to the host, and nothing from the host into the run.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(mount_err(
        "/ as private (MS_REC|MS_PRIVATE)",
        Path::new("/"),
    ))?;
    let upper = run_dir.join("upper");
    let work = run_dir.join("work");
    let root = run_dir.join("root");
    for dir in [&upper, &work, &root] {
        sys.mkdir(dir, 0o755)
            .map_err(|errno| ContainerError::WriteFile {
                path: dir.clone(),
                errno,
            })?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        escape_overlay_path(lower),
        escape_overlay_path(&upper),
        escape_overlay_path(&work)
    );
    let overlay = |data: &str| {
        sys.mount(
            Some(Path::new("overlay")),
            &root,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
    };
    // `userxattr` keeps overlay's bookkeeping in user.* xattrs, which a user namespace may
    // set; kernels before 5.11 do not know the option.
    let result = match overlay(&format!("{options},userxattr")) {
        Err(Errno::EINVAL) => overlay(&options),
        other => other,
    };
    match result {
        Ok(()) => {
            reporter.debug(format_args!(
                "root: overlayfs over {} (writes go to the run's directory on disk and vanish with the run)",
                lower.display()
            ));
            Ok((root, RootKind::Overlay))
        }
        Err(errno) => {
            reporter.debug(format_args!(
                "root: overlayfs cannot be mounted ({errno}); copying {} into the run's directory",
                lower.display()
            ));
            sys.copy_tree(lower, &root)?;
            sys.mount(
                Some(&root),
                &root,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(mount_err("the copied root (bind)", &root))?;
            Ok((root, RootKind::Copy))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    fn quiet() -> Reporter {
        Reporter::new("test", false)
    }

    #[test]
    fn overlay_sequence() {
        let sys = RecordingSyscall::new();
        let (root, kind) =
            prepare_root(&sys, Path::new("/c/root,1"), Path::new("/tmp"), &quiet()).unwrap();
        assert_eq!(
            (root.as_path(), kind),
            (Path::new("/tmp/root"), RootKind::Overlay)
        );
        assert_eq!(
            sys.calls(),
            vec![
                Call::mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
                Call::Mkdir("/tmp/upper".into(), 0o755),
                Call::Mkdir("/tmp/work".into(), 0o755),
                Call::Mkdir("/tmp/root".into(), 0o755),
                Call::mount(
                    Some("overlay"),
                    "/tmp/root",
                    Some("overlay"),
                    MsFlags::empty(),
                    Some("lowerdir=/c/root\\,1,upperdir=/tmp/upper,workdir=/tmp/work,userxattr")
                ),
            ]
        );
    }

    #[test]
    fn overlay_without_userxattr_on_old_kernels() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { data: Some(d), .. } if d.ends_with("userxattr")),
            Errno::EINVAL,
        );
        let (_, kind) = prepare_root(&sys, Path::new("/c"), Path::new("/tmp"), &quiet()).unwrap();
        assert_eq!(kind, RootKind::Overlay);
        let last = sys.calls().pop().unwrap();
        assert_eq!(
            last,
            Call::mount(
                Some("overlay"),
                "/tmp/root",
                Some("overlay"),
                MsFlags::empty(),
                Some("lowerdir=/c,upperdir=/tmp/upper,workdir=/tmp/work")
            )
        );
    }

    #[test]
    fn copies_when_overlay_is_refused() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "overlay"),
            Errno::EPERM,
        );
        let (root, kind) =
            prepare_root(&sys, Path::new("/c"), Path::new("/tmp"), &quiet()).unwrap();
        assert_eq!(kind, RootKind::Copy);
        let calls = sys.calls();
        let n = calls.len();
        assert_eq!(calls[n - 2], Call::CopyTree("/c".into(), root.clone()));
        assert_eq!(
            calls[n - 1],
            Call::mount(
                Some("/tmp/root"),
                "/tmp/root",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None
            )
        );
    }
}
