//! A [`Syscall`] that records every call instead of making it, for unit tests of the setup
//! sequence (which namespaces, which mounts, in which order, with which arguments).
//!
//! Calls succeed unless a failure rule matches; rules let a test make one operation fail with
//! a chosen errno to exercise a fallback (`pivot_root` → `EINVAL`, overlay → `EPERM`).

use crate::confine::caps::CapMask;
use crate::confine::seccomp::{Filters, SeccompError};
use crate::ns::copy::CopyError;
use crate::ns::syscall::Syscall;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};
use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;

/// One recorded call, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `clone_process`.
    Clone(CloneFlags),
    /// `unshare`.
    Unshare(CloneFlags),
    /// `write_file`, contents as text.
    WriteFile(PathBuf, String),
    /// One helper of `run_helpers`.
    RunHelper(PathBuf, Vec<String>),
    /// `mount`.
    Mount {
        /// Source.
        source: Option<PathBuf>,
        /// Target.
        target: PathBuf,
        /// File system type.
        fstype: Option<String>,
        /// Flags.
        flags: MsFlags,
        /// Data.
        data: Option<String>,
    },
    /// `make_readonly_recursive`.
    ReadonlyRecursive(PathBuf),
    /// `mount_flags`.
    MountFlags(PathBuf),
    /// `umount2`.
    Umount2(PathBuf, MntFlags),
    /// `pivot_root`.
    PivotRoot(PathBuf, PathBuf),
    /// `chroot`.
    Chroot(PathBuf),
    /// `chdir`.
    Chdir(PathBuf),
    /// `mkdir`.
    Mkdir(PathBuf, u32),
    /// `create_file`.
    CreateFile(PathBuf, u32),
    /// `symlink(target, link)`.
    Symlink(PathBuf, PathBuf),
    /// `resolve_dir_in_root(root, path, create)`.
    ResolveDir(PathBuf, PathBuf, bool),
    /// `resolve_file_in_root(root, path)`.
    ResolveFile(PathBuf, PathBuf),
    /// `write_in_root(root, path, contents)`.
    WriteInRoot(PathBuf, PathBuf, String),
    /// `copy_tree(from, to)`.
    CopyTree(PathBuf, PathBuf),
    /// `sethostname`.
    Sethostname(String),
    /// `setgroups`.
    Setgroups(Vec<u32>),
    /// `setresgid`.
    Setresgid(u32),
    /// `setresuid`.
    Setresuid(u32),
    /// `setsid`.
    Setsid,
    /// `set_undumpable`.
    SetUndumpable,
    /// `join_new_session_keyring`.
    JoinSessionKeyring,
    /// `limit_capabilities`, with the mask kept.
    LimitCapabilities(u64),
    /// `set_no_new_privs`.
    SetNoNewPrivs,
    /// `reopen_dir_checked(path)`.
    ReopenChecked(PathBuf),
    /// `install_seccomp`, with the number of filters.
    InstallSeccomp(usize),
}

impl Call {
    /// A shorthand for the common `Mount` pattern in assertions.
    pub fn mount(
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Call {
        Call::Mount {
            source: source.map(PathBuf::from),
            target: PathBuf::from(target),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        }
    }
}

/// A rule: calls matching the predicate fail with the errno.
type FailureRule = (Box<dyn Fn(&Call) -> bool>, Errno);

/// Records calls; see the module documentation.
#[derive(Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    failures: RefCell<Vec<FailureRule>>,
    helper_status: RefCell<Vec<(PathBuf, i32)>>,
}

impl RecordingSyscall {
    /// A fake on which every call succeeds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call matching `matches` fail with `errno`.
    pub fn fail_when(&self, matches: impl Fn(&Call) -> bool + 'static, errno: Errno) {
        self.failures.borrow_mut().push((Box::new(matches), errno));
    }

    /// Makes the helper `program` report this exit code (default 0).
    pub fn helper_exit_code(&self, program: &str, code: i32) {
        self.helper_status.borrow_mut().push((program.into(), code));
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The mount targets, in order, for compact sequence assertions.
    pub fn mount_targets(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(target.display().to_string()),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: Call) -> nix::Result<()> {
        let failure = self
            .failures
            .borrow()
            .iter()
            .find(|(matches, _)| matches(&call))
            .map(|(_, errno)| *errno);
        self.calls.borrow_mut().push(call);
        failure.map_or(Ok(()), Err)
    }
}

/// `root` joined with `path` taken as relative, `..` and `.` removed (no symlinks exist in
/// the fake world).
fn join_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut out = root.to_path_buf();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Syscall for RecordingSyscall {
    unsafe fn clone_process(&self, flags: CloneFlags) -> nix::Result<Option<Pid>> {
        self.record(Call::Clone(flags))?;
        Ok(Some(Pid::from_raw(4242)))
    }

    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        self.record(Call::Unshare(flags))
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> nix::Result<()> {
        self.record(Call::WriteFile(
            path.into(),
            String::from_utf8_lossy(contents).into(),
        ))
    }

    fn run_helpers(&self, helpers: &[(&Path, &[String])]) -> Vec<std::io::Result<ExitStatus>> {
        helpers
            .iter()
            .map(|(program, args)| {
                self.record(Call::RunHelper(program.to_path_buf(), args.to_vec()))
                    .map_err(std::io::Error::from)?;
                let code = self
                    .helper_status
                    .borrow()
                    .iter()
                    .find(|(p, _)| p == program)
                    .map_or(0, |(_, c)| *c);
                Ok(ExitStatus::from_raw(code << 8))
            })
            .collect()
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.into(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }

    fn make_readonly_recursive(&self, target: &Path) -> nix::Result<()> {
        self.record(Call::ReadonlyRecursive(target.into()))
    }

    fn mount_flags(&self, path: &Path) -> nix::Result<MsFlags> {
        self.record(Call::MountFlags(path.into()))?;
        Ok(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        self.record(Call::Umount2(target.into(), flags))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        self.record(Call::PivotRoot(new_root.into(), put_old.into()))
    }

    fn chroot(&self, path: &Path) -> nix::Result<()> {
        self.record(Call::Chroot(path.into()))
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        self.record(Call::Chdir(path.into()))
    }

    fn mkdir(&self, path: &Path, mode: u32) -> nix::Result<()> {
        self.record(Call::Mkdir(path.into(), mode))
    }

    fn create_file(&self, path: &Path, mode: u32) -> nix::Result<()> {
        self.record(Call::CreateFile(path.into(), mode))
    }

    fn symlink(&self, target: &Path, link: &Path) -> nix::Result<()> {
        self.record(Call::Symlink(target.into(), link.into()))
    }

    fn resolve_dir_in_root(&self, root: &Path, path: &Path, create: bool) -> nix::Result<PathBuf> {
        self.record(Call::ResolveDir(root.into(), path.into(), create))?;
        Ok(join_in_root(root, path))
    }

    fn resolve_file_in_root(&self, root: &Path, path: &Path) -> nix::Result<PathBuf> {
        self.record(Call::ResolveFile(root.into(), path.into()))?;
        Ok(join_in_root(root, path))
    }

    fn write_in_root(&self, root: &Path, path: &Path, contents: &[u8]) -> nix::Result<()> {
        self.record(Call::WriteInRoot(
            root.into(),
            path.into(),
            String::from_utf8_lossy(contents).into(),
        ))
    }

    fn copy_tree(&self, from: &Path, to: &Path) -> Result<(), CopyError> {
        self.record(Call::CopyTree(from.into(), to.into()))
            .map_err(|errno| CopyError {
                path: from.into(),
                source: std::io::Error::from(errno),
            })
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.record(Call::Sethostname(name.into()))
    }

    fn setgroups(&self, gids: &[Gid]) -> nix::Result<()> {
        self.record(Call::Setgroups(gids.iter().map(|g| g.as_raw()).collect()))
    }

    fn setresgid(&self, gid: Gid) -> nix::Result<()> {
        self.record(Call::Setresgid(gid.as_raw()))
    }

    fn setresuid(&self, uid: Uid) -> nix::Result<()> {
        self.record(Call::Setresuid(uid.as_raw()))
    }

    fn setsid(&self) -> nix::Result<()> {
        self.record(Call::Setsid)
    }

    fn set_undumpable(&self) -> nix::Result<()> {
        self.record(Call::SetUndumpable)
    }

    fn join_new_session_keyring(&self) -> nix::Result<()> {
        self.record(Call::JoinSessionKeyring)
    }

    fn limit_capabilities(&self, keep: CapMask) -> nix::Result<()> {
        self.record(Call::LimitCapabilities(keep.0))
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        self.record(Call::SetNoNewPrivs)
    }

    fn install_seccomp(&self, filters: &Filters) -> Result<(), SeccompError> {
        self.record(Call::InstallSeccomp(filters.len()))
            .map_err(|errno| SeccompError::Install {
                index: 1,
                count: filters.len(),
                source: errno.into(),
                hint: "recorded failure",
            })
    }

    fn reopen_dir_checked(&self, path: &Path, _identity: (u64, u64)) -> nix::Result<PathBuf> {
        self.record(Call::ReopenChecked(path.into()))?;
        Ok(path.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_applies_failure_rules() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::Chroot(_)), Errno::EPERM);
        sys.chdir(Path::new("/a")).unwrap();
        assert_eq!(sys.chroot(Path::new("/b")), Err(Errno::EPERM));
        assert_eq!(
            sys.calls(),
            vec![Call::Chdir("/a".into()), Call::Chroot("/b".into())]
        );
    }

    #[test]
    fn resolves_inside_the_fake_root() {
        let sys = RecordingSyscall::new();
        let got = sys
            .resolve_dir_in_root(Path::new("/r"), Path::new("/../x/./y"), true)
            .unwrap();
        assert_eq!(got, PathBuf::from("/r/x/y"));
    }
}
