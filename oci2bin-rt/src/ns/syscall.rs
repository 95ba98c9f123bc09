//! The privileged operations of container setup, behind one trait.
//!
//! Every step that creates namespaces, writes id maps, mounts, pivots or changes credentials
//! goes through [`Syscall`], so the order and arguments of the setup sequence can be checked
//! by unit tests with a recording fake, without root and without touching the host.
//! [`LinuxSyscall`] is the real implementation.

use crate::confine::caps::{limit_to, CapMask};
use crate::confine::seccomp::{Filters, SeccompError};
use crate::layer::resolve::{open_in_root, ResolveMode, Resolver};
use crate::ns::copy::{copy_tree, CopyError};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Pid, Uid};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// The privileged operations the container setup performs, one method per kernel operation
/// (plus a few compound file operations that must resolve paths inside the image's root).
///
/// Methods return `nix::Result` so callers can react to specific errors (`EINVAL` from
/// `pivot_root`, `EPERM` from a procfs mount) and attach the path to their own error.
pub trait Syscall {
    /// Creates a child process in new namespaces, like `fork` with `clone(2)` flags: returns
    /// `Some(child)` in the parent and `None` in the child.
    ///
    /// # Safety
    ///
    /// As for `fork`: the calling process must be single-threaded, because only the calling
    /// thread exists in the child.
    unsafe fn clone_process(&self, flags: CloneFlags) -> nix::Result<Option<Pid>>;
    /// Moves the calling process into new namespaces (`unshare(2)`).
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()>;
    /// Writes a whole small file outside the image, such as `/proc/PID/uid_map`, in one
    /// `write(2)` (the kernel requires id maps to arrive in a single write).
    fn write_file(&self, path: &Path, contents: &[u8]) -> nix::Result<()>;
    /// Runs host helper programs (`newuidmap`, `newgidmap`) concurrently, with inherited
    /// stdio, and waits for all; one result per helper, in order.
    fn run_helpers(&self, helpers: &[(&Path, &[String])]) -> Vec<std::io::Result<ExitStatus>>;
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// Makes the mount at `target` and every mount below it read-only (`mount_setattr(2)` with
    /// `AT_RECURSIVE`); fails with `ENOSYS` on kernels older than 5.12.
    fn make_readonly_recursive(&self, target: &Path) -> nix::Result<()>;
    /// The mount flags currently in effect on `path` (from `statvfs`), needed because a
    /// remount inside a user namespace must repeat the locked flags (nosuid, nodev, noexec).
    fn mount_flags(&self, path: &Path) -> nix::Result<MsFlags>;
    /// `umount2(2)`.
    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()>;
    /// `chroot(2)`.
    fn chroot(&self, path: &Path) -> nix::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &Path) -> nix::Result<()>;
    /// `mkdir(2)`; an existing directory is not an error.
    fn mkdir(&self, path: &Path, mode: u32) -> nix::Result<()>;
    /// Creates an empty regular file (a bind-mount target); an existing file is not an error.
    fn create_file(&self, path: &Path, mode: u32) -> nix::Result<()>;
    /// `symlink(2)`: creates `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> nix::Result<()>;
    /// Resolves the directory `path` inside `root` as if `root` were `/` (symlinks in the
    /// image cannot point outside it), creating missing components when `create` is set,
    /// and returns its real path on the host, ready to be a mount target.
    fn resolve_dir_in_root(&self, root: &Path, path: &Path, create: bool) -> nix::Result<PathBuf>;
    /// Resolves the file `path` inside `root` as [`Syscall::resolve_dir_in_root`] does a
    /// directory, creating an empty one (and its parents) if missing; returns its real path
    /// on the host, ready to be the target of a file bind mount.
    fn resolve_file_in_root(&self, root: &Path, path: &Path) -> nix::Result<PathBuf>;
    /// Writes the file `path` inside `root` (resolved as if `root` were `/`), creating it
    /// with mode 0644 and its parent directories if needed. A symlink that dangles inside
    /// the image is replaced by a regular file.
    fn write_in_root(&self, root: &Path, path: &Path, contents: &[u8]) -> nix::Result<()>;
    /// Copies the directory tree `from` into the existing directory `to`, keeping modes,
    /// ownership where allowed, symlinks, hard links and modification times.
    fn copy_tree(&self, from: &Path, to: &Path) -> Result<(), CopyError>;
    /// `sethostname(2)`.
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// `setgroups(2)`.
    fn setgroups(&self, gids: &[Gid]) -> nix::Result<()>;
    /// `setresgid(2)` with all three ids equal.
    fn setresgid(&self, gid: Gid) -> nix::Result<()>;
    /// `setresuid(2)` with all three ids equal.
    fn setresuid(&self, uid: Uid) -> nix::Result<()>;
    /// `setsid(2)`: a new session and process group, with no controlling terminal, so the
    /// workload can neither inject input into the caller's terminal nor signal its group.
    fn setsid(&self) -> nix::Result<()>;
    /// `prctl(PR_SET_DUMPABLE, 0)`: the container's init (which never calls `execve`, so its
    /// memory belongs to the host's user namespace) cannot then be ptraced, and its
    /// `/proc/1/{mem,environ,fd,exe}` cannot be opened, from inside the container.
    fn set_undumpable(&self) -> nix::Result<()>;
    /// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: a new anonymous session keyring, so the
    /// container cannot read or plant keys in the caller's.
    fn join_new_session_keyring(&self) -> nix::Result<()>;
    /// Limits the bounding set to `keep` and empties the inheritable and ambient sets (see
    /// [`crate::confine::caps::limit_to`]).
    fn limit_capabilities(&self, keep: CapMask) -> nix::Result<()>;
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn set_no_new_privs(&self) -> nix::Result<()>;
    /// Installs the workload's seccomp filters on the calling process (see
    /// [`Filters::install`]).
    fn install_seccomp(&self, filters: &Filters) -> Result<(), SeccompError>;
    /// Opens the directory `path` (not following a final symlink) and checks that it is the
    /// file `identity` (device, inode) that the runtime checked before the clone; returns a
    /// path through the new descriptor (`/proc/self/fd/N`, kept open for the process's life)
    /// that names exactly that directory, whatever happens to `path` afterwards. Fails with
    /// `ESTALE` if `path` is now another directory. (A descriptor opened before the clone
    /// cannot serve: overlayfs refuses a lower layer on a mount of another mount namespace.)
    fn reopen_dir_checked(&self, path: &Path, identity: (u64, u64)) -> nix::Result<PathBuf>;
}

/// The real [`Syscall`]: each method is the Linux system call it names.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxSyscall;

/// `AT_RECURSIVE` for `mount_setattr(2)`.
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `MOUNT_ATTR_RDONLY` for `mount_setattr(2)`.
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

impl Syscall for LinuxSyscall {
    unsafe fn clone_process(&self, flags: CloneFlags) -> nix::Result<Option<Pid>> {
        // A fork-like clone: no new stack, the child continues here on a copy of ours. Every
        // architecture's argument order differs only in the pointer arguments, all zero.
        // SAFETY: the caller guarantees a single-threaded process (see the trait).
        let res = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        match Errno::result(res)? {
            0 => Ok(None),
            pid => Ok(Some(Pid::from_raw(pid as libc::pid_t))),
        }
    }

    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        nix::sched::unshare(flags)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> nix::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_errno)?;
        let written = file.write(contents).map_err(io_errno)?;
        if written != contents.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn run_helpers(&self, helpers: &[(&Path, &[String])]) -> Vec<std::io::Result<ExitStatus>> {
        let children: Vec<std::io::Result<Pid>> = helpers
            .iter()
            .map(|(program, args)| spawn_helper(program, args))
            .collect();
        children
            .into_iter()
            .map(|child| {
                let pid = child?;
                let mut status = 0;
                loop {
                    // SAFETY: `status` is a valid int to write; `pid` is our child.
                    let res = unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) };
                    match Errno::result(res) {
                        Err(Errno::EINTR) => continue,
                        Err(e) => return Err(e.into()),
                        Ok(_) => {
                            use std::os::unix::process::ExitStatusExt;
                            return Ok(ExitStatus::from_raw(status));
                        }
                    }
                }
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
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn make_readonly_recursive(&self, target: &Path) -> nix::Result<()> {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let path =
            std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `path` is a valid C string and `attr` a valid mount_attr of the size given.
        let res = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        Errno::result(res).map(drop)
    }

    fn mount_flags(&self, path: &Path) -> nix::Result<MsFlags> {
        // statvfs(3) flag bits (<sys/statvfs.h>; the same on every Linux architecture, and
        // not all of them are exposed by nix for every C library).
        const PAIRS: [(libc::c_ulong, MsFlags); 7] = [
            (1, MsFlags::MS_RDONLY),
            (2, MsFlags::MS_NOSUID),
            (4, MsFlags::MS_NODEV),
            (8, MsFlags::MS_NOEXEC),
            (1024, MsFlags::MS_NOATIME),
            (2048, MsFlags::MS_NODIRATIME),
            (4096, MsFlags::MS_RELATIME),
        ];
        let bits = nix::sys::statvfs::statvfs(path)?.flags().bits() as libc::c_ulong;
        Ok(PAIRS
            .iter()
            .filter(|(st, _)| bits & st != 0)
            .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chroot(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chroot(path)
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> nix::Result<()> {
        match nix::unistd::mkdir(path, Mode::from_bits_truncate(mode)) {
            Err(Errno::EEXIST) if path.is_dir() => Ok(()),
            other => other,
        }
    }

    fn create_file(&self, path: &Path, mode: u32) -> nix::Result<()> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(mode),
        )?;
        drop(fd);
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> nix::Result<()> {
        std::os::unix::fs::symlink(target, link).map_err(io_errno)
    }

    fn resolve_dir_in_root(&self, root: &Path, path: &Path, create: bool) -> nix::Result<PathBuf> {
        let root_fd = open_dir(root)?;
        let dir = open_dir_in_root(&root_fd, path, create)?;
        fd_path(&dir)
    }

    fn resolve_file_in_root(&self, root: &Path, path: &Path) -> nix::Result<PathBuf> {
        let root_fd = open_dir(root)?;
        let name = path.file_name().ok_or(Errno::EINVAL)?;
        let parent = open_dir_in_root(&root_fd, path.parent().unwrap_or(Path::new("/")), true)?;
        let find = || open_in_root(&root_fd, path, OFlag::O_PATH | OFlag::O_CLOEXEC);
        let fd = match find() {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW;
                drop(nix::fcntl::openat(
                    &parent,
                    name,
                    create | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?);
                find()
            }
            other => other,
        }
        .map_err(io_errno)?;
        fd_path(&fd)
    }

    fn write_in_root(&self, root: &Path, path: &Path, contents: &[u8]) -> nix::Result<()> {
        let root_fd = open_dir(root)?;
        let name = path.file_name().ok_or(Errno::EINVAL)?;
        let parent = open_dir_in_root(&root_fd, path.parent().unwrap_or(Path::new("/")), true)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o644);
        let fd = match nix::fcntl::openat(&parent, name, flags | OFlag::O_NOFOLLOW, mode) {
            // The name is a symlink: follow it, but only inside the root.
            Err(Errno::ELOOP) => match open_in_root(&root_fd, path, flags) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // It dangles inside the image: replace the link by a plain file.
                    nix::unistd::unlinkat(&parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
                    nix::fcntl::openat(&parent, name, flags | OFlag::O_NOFOLLOW, mode)?
                }
                Err(e) => return Err(io_errno(e)),
            },
            other => other?,
        };
        let mut file = std::fs::File::from(fd);
        file.write_all(contents).map_err(io_errno)
    }

    fn copy_tree(&self, from: &Path, to: &Path) -> Result<(), CopyError> {
        copy_tree(from, to)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn setgroups(&self, gids: &[Gid]) -> nix::Result<()> {
        nix::unistd::setgroups(gids)
    }

    fn setresgid(&self, gid: Gid) -> nix::Result<()> {
        nix::unistd::setresgid(gid, gid, gid)
    }

    fn setresuid(&self, uid: Uid) -> nix::Result<()> {
        nix::unistd::setresuid(uid, uid, uid)
    }

    fn setsid(&self) -> nix::Result<()> {
        nix::unistd::setsid().map(drop)
    }

    fn set_undumpable(&self) -> nix::Result<()> {
        nix::sys::prctl::set_dumpable(false)
    }

    fn join_new_session_keyring(&self) -> nix::Result<()> {
        /// `KEYCTL_JOIN_SESSION_KEYRING` (<linux/keyctl.h>).
        const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
        // SAFETY: a NULL name asks for a new anonymous keyring; no memory is passed.
        let res = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<libc::c_char>(),
            )
        };
        Errno::result(res).map(drop)
    }

    fn limit_capabilities(&self, keep: CapMask) -> nix::Result<()> {
        limit_to(keep).map_err(|_| Errno::last())
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn install_seccomp(&self, filters: &Filters) -> Result<(), SeccompError> {
        filters.install()
    }

    fn reopen_dir_checked(&self, path: &Path, identity: (u64, u64)) -> nix::Result<PathBuf> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())?;
        let st = nix::sys::stat::fstat(&fd)?;
        if (st.st_dev, st.st_ino) != identity {
            return Err(Errno::ESTALE);
        }
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        // Deliberately kept open: the path above is only valid while it is.
        std::mem::forget(fd);
        Ok(fd_path)
    }
}

/// Starts `program` with `args` (and the runtime's environment and stdio) by `fork` and
/// `execv`: `std::process::Command` would add 15 KB to every output binary for this one use.
/// An `execv` failure comes back through a close-on-exec pipe as the error.
fn spawn_helper(program: &Path, args: &[String]) -> std::io::Result<Pid> {
    use std::ffi::CString;
    let nul = |_| std::io::Error::from(Errno::EINVAL);
    let path = CString::new(program.as_os_str().as_bytes()).map_err(nul)?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(CString::new(arg.as_bytes()).map_err(nul)?);
    }
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the child only calls async-signal-safe functions (sigprocmask, execv, write,
    // _exit) on memory prepared before the fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let _ = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            );
            let errno = nix::unistd::execv(&path, &argv).unwrap_err();
            let _ = nix::unistd::write(&write, &(errno as i32).to_ne_bytes());
            // SAFETY: _exit is async-signal-safe and ends the child at once.
            unsafe { libc::_exit(127) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut buf = [0u8; 4];
            let n = loop {
                match nix::unistd::read(&read, &mut buf) {
                    Err(Errno::EINTR) => continue,
                    other => break other.unwrap_or(0),
                }
            };
            if n == 4 {
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
            }
            Ok(child)
        }
    }
}

/// The errno of an I/O error (`EIO` when it has none).
pub(crate) fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// Opens a host directory as an `O_PATH` handle.
fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens (and with `create`, makes) the directory `path` inside `root`, every lookup
/// confined to the root: the layer resolver's walk, which also creates through dangling
/// symlinks inside the root (a `WORKDIR` that is a link to a missing directory).
fn open_dir_in_root(root: &OwnedFd, path: &Path, create: bool) -> nix::Result<OwnedFd> {
    Resolver::new(root.as_fd(), ResolveMode::Openat2, None).open_dir(
        path,
        0,
        create,
        &mut Vec::new(),
    )
}

/// The host path of an open file, read back from `/proc/self/fd`.
fn fd_path<Fd: AsFd>(fd: Fd) -> nix::Result<PathBuf> {
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let target = nix::fcntl::readlink(Path::new(&link))?;
    Ok(PathBuf::from(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolve_dir_in_root_stays_inside_and_creates() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        // An absolute symlink in the image means the image's /real, not the host's.
        std::os::unix::fs::symlink("/real", root.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/../../..", root.path().join("escape")).unwrap();
        let sys = LinuxSyscall;
        let real = std::fs::canonicalize(root.path()).unwrap();
        assert_eq!(
            sys.resolve_dir_in_root(root.path(), Path::new("/link"), false)
                .unwrap(),
            real.join("real")
        );
        assert_eq!(
            sys.resolve_dir_in_root(root.path(), Path::new("/escape"), false)
                .unwrap(),
            real
        );
        assert_eq!(
            sys.resolve_dir_in_root(root.path(), Path::new("/link/a/b"), true)
                .unwrap(),
            real.join("real/a/b")
        );
        assert!(real.join("real/a/b").is_dir());
        assert_eq!(
            sys.resolve_dir_in_root(root.path(), Path::new("/missing"), false),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn write_in_root_follows_symlinks_inside_and_replaces_dangling_ones() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir_all(root.path().join("run")).unwrap();
        std::fs::create_dir(&etc).unwrap();
        std::os::unix::fs::symlink("/run/hosts", etc.join("hosts")).unwrap();
        std::os::unix::fs::symlink("/run/systemd/resolve/stub.conf", etc.join("resolv.conf"))
            .unwrap();
        let sys = LinuxSyscall;
        sys.write_in_root(root.path(), Path::new("/etc/hosts"), b"h\n")
            .unwrap();
        assert_eq!(
            std::fs::read(root.path().join("run/hosts")).unwrap(),
            b"h\n"
        );
        // Created through the link: readable by the workload's user, whoever it is.
        let mode = std::fs::metadata(root.path().join("run/hosts"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o444, 0o444, "mode {mode:o}");
        sys.write_in_root(root.path(), Path::new("/etc/resolv.conf"), b"r\n")
            .unwrap();
        let meta = std::fs::symlink_metadata(etc.join("resolv.conf")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(etc.join("resolv.conf")).unwrap(), b"r\n");
        // A missing /etc is created (images built FROM scratch have none).
        sys.write_in_root(root.path(), Path::new("/new/dir/file"), b"x")
            .unwrap();
        assert_eq!(
            std::fs::read(root.path().join("new/dir/file")).unwrap(),
            b"x"
        );
    }

    #[test]
    fn resolve_dir_in_root_creates_through_a_dangling_link_inside() {
        // WORKDIR /app where /app -> /srv/app and /srv/app is missing.
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("srv")).unwrap();
        std::os::unix::fs::symlink("/srv/app", root.path().join("app")).unwrap();
        let got = LinuxSyscall
            .resolve_dir_in_root(root.path(), Path::new("/app/sub"), true)
            .unwrap();
        let want = std::fs::canonicalize(root.path().join("srv/app/sub")).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn helpers_run_concurrently_and_report_exec_failures() {
        let sh = Path::new("/bin/sh");
        let ok = ["-c".to_string(), "exit 3".to_string()];
        let results =
            LinuxSyscall.run_helpers(&[(sh, &ok[..]), (Path::new("/nonexistent/newuidmap"), &[])]);
        assert_eq!(results[0].as_ref().unwrap().code(), Some(3));
        let err = results[1].as_ref().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }

    #[test]
    fn mkdir_and_create_file_accept_existing() {
        let dir = tempfile::tempdir().unwrap();
        let sys = LinuxSyscall;
        sys.mkdir(&dir.path().join("d"), 0o755).unwrap();
        sys.mkdir(&dir.path().join("d"), 0o755).unwrap();
        sys.create_file(&dir.path().join("f"), 0o644).unwrap();
        sys.create_file(&dir.path().join("f"), 0o644).unwrap();
        assert_eq!(sys.mkdir(&dir.path().join("f"), 0o755), Err(Errno::EEXIST));
    }
}
