//! Running a container: the process topology and the order of the setup.
//!
//! ```text
//! runtime (host namespaces)          forwards signals, exits with the container's code
//!  └─ init, pid 1 (clone: user+mount+pid+uts+ipc namespaces)
//!       waits for its id maps, builds the root, pivots, then:
//!       └─ workload (fork + execve)  the image's entrypoint
//! ```
//!
//! One `clone` creates every namespace at once (the child is pid 1 of the new pid namespace,
//! no extra fork), and the parent writes the id maps from outside: directly for a single id,
//! through `newuidmap`/`newgidmap` for subordinate ranges. A one-byte pipe message tells the
//! child the maps are in place and which kind they are. The network namespace is the host's,
//! like `docker run --network host`.
//!
//! The init is closed to the workload: it starts a session of its own (the caller's terminal
//! and process group are out of reach), is not dumpable (it never calls `execve`, so its
//! memory stays owned by the host's user namespace and nothing inside can ptrace it or open
//! its `/proc/1/{mem,environ,fd,exe}`), holds no descriptor of the caller's (the runtime
//! closed them all at start), and joins a new session keyring before the workload starts.

use crate::cache::runs::RunCleanup;
use crate::confine::policy::Confinement;
use crate::confine::seccomp::Filters;
use crate::ns::binds::mount_requested;
use crate::ns::diagnose::diagnose;
use crate::ns::error::ContainerError;
use crate::ns::etc::{host_resolv_conf, write_etc_files};
use crate::ns::mounts::mount_kernel_filesystems;
use crate::ns::pivot::enter_root;
use crate::ns::report::Reporter;
use crate::ns::rootfs::prepare_root;
use crate::ns::syscall::Syscall;
use crate::ns::userns::{write_maps, AppliedMapping, IdMapPlan};
use crate::process::exit::{exit_code, RUNTIME_ERROR};
use crate::process::init::run_init;
use crate::process::output_relay::OutputRelays;
use crate::process::pty::{acknowledge, hand_over, open_container_pty, receive_master};
use crate::process::relay::{copy_window_size, relay_until_exit, RawMode};
use crate::process::rlimit::Rlimit;
use crate::process::signals::{block_supervised, supervise, Reaping, StopPolicy};
use crate::process::spec::ProcessSpec;
use crate::volume::host::ContainerMount;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

/// The namespaces every container gets: all but network (and cgroup, which needs cgroup v2
/// delegation to be useful).
pub const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC);

/// Everything needed to run one container.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// The pristine image root (the cache's, never written): the overlay's lower layer.
    pub rootfs: PathBuf,
    /// The (device, inode) of `rootfs` as checked by the cache; the init mounts only that
    /// directory (`None`: whatever `rootfs` is, for roots outside the cache).
    pub rootfs_identity: Option<(u64, u64)>,
    /// The workload.
    pub process: ProcessSpec,
    /// How ids are mapped.
    pub mapping: IdMapPlan,
    /// The container's hostname (its random id).
    pub hostname: String,
    /// Where messages go.
    pub reporter: Reporter,
    /// Where the sysctls are, for explaining a refused user namespace (`/proc/sys`).
    pub sysctl_root: PathBuf,
    /// Capabilities, seccomp, masked paths, read-only root.
    pub confinement: Confinement,
    /// The run's directory (`upper`, `work`, `root`; see [`crate::cache::runs`]).
    pub run_dir: PathBuf,
    /// What the init removes when the workload has ended (`None`: nothing).
    pub cleanup: Option<RunCleanup>,
    /// Whether the workload gets a terminal of its own, relayed to the caller's (`-t`).
    pub tty: bool,
    /// The compiled seccomp filters (`None`: unconfined), built on the host so a bad
    /// profile is reported before anything starts.
    pub seccomp: Option<Arc<Filters>>,
    /// The user's volumes, bind mounts and tmpfs mounts, prepared on the host.
    pub mounts: Vec<ContainerMount>,
    /// Resource limits the workload starts with (`--ulimit`).
    pub rlimits: Vec<Rlimit>,
    /// How `SIGTERM` to the runtime stops the container.
    pub stop: StopPolicy,
}

/// Runs the container and returns its exit code (the workload's code, 128 + N if it was
/// killed by signal N, 126/127 if it could not be executed, 125 if the container could not
/// be set up inside the namespaces; such errors are reported there, on stderr).
///
/// The calling process must be single-threaded. It keeps the forwarded signals blocked
/// afterwards (it is expected to exit with the code).
pub fn run_container(spec: &ContainerSpec, sys: &dyn Syscall) -> Result<i32, ContainerError> {
    let resolv_conf = host_resolv_conf();
    spec.reporter.debug(format_args!(
        "namespaces: user, mount, pid, uts, ipc (network is the host's); hostname {}; \
         run directory {}",
        spec.hostname,
        spec.run_dir.display()
    ));
    spec.reporter.debug(spec.confinement.describe());
    // Before anything else is open: the relays must hold no descriptor but their own.
    let relays = OutputRelays::start();
    if relays.count() > 0 {
        spec.reporter.debug(format_args!(
            "stdout/stderr: {} relayed through a pipe (a socket, or a file that is not yours, cannot be reopened inside)",
            relays.count()
        ));
    }
    block_supervised(spec.stop.signal).map_err(|errno| ContainerError::Process {
        step: "block the forwarded signals",
        errno,
    })?;
    let (ready_read, ready_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| ContainerError::Sync {
            step: "create the pipe",
            errno,
        })?;
    let tty_socket = if spec.tty {
        Some(
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|errno| ContainerError::Sync {
                step: "create the terminal socket",
                errno,
            })?,
        )
    } else {
        None
    };
    let (tty_host, tty_init) = match tty_socket {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    // SAFETY: the runtime is single-threaded (documented requirement of this function).
    match unsafe { sys.clone_process(NAMESPACES) } {
        Err(errno) => Err(ContainerError::UserNamespace {
            errno,
            diagnosis: diagnose(&spec.sysctl_root, errno),
        }),
        Ok(Some(child)) => {
            drop(ready_read);
            drop(tty_init);
            supervise_from_host(sys, spec, child, ready_write, tty_host)
        }
        Ok(None) => {
            drop(ready_write);
            drop(tty_host);
            let code = match init_container(sys, spec, resolv_conf.as_deref(), ready_read, tty_init)
            {
                Ok(code) => code,
                Err(e) => {
                    spec.reporter.error(&e);
                    RUNTIME_ERROR
                }
            };
            std::process::exit(code)
        }
    }
}

/// The parent's side: write the maps, release the child, then forward signals and wait.
fn supervise_from_host(
    sys: &dyn Syscall,
    spec: &ContainerSpec,
    child: Pid,
    ready: OwnedFd,
    tty: Option<OwnedFd>,
) -> Result<i32, ContainerError> {
    let applied = match write_maps(sys, child, &spec.mapping, &spec.sysctl_root, &spec.reporter) {
        Ok(applied) => applied,
        Err(e) => {
            let _ = kill(child, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            return Err(e);
        }
    };
    // If the child is already gone the write fails; its exit status below tells why.
    let _ = nix::unistd::write(&ready, &[applied.to_byte()]);
    drop(ready);
    let master = match &tty {
        // The init ends without one if its setup failed: its exit status tells why.
        Some(sock) => receive_master(sock.as_fd()).unwrap_or(None),
        None => None,
    };
    let status = match (master, tty) {
        (Some(master), Some(sock)) => {
            let raw = RawMode::enable();
            copy_window_size(master.as_fd());
            let _ = acknowledge(sock.as_fd());
            let status = relay_until_exit(child, master, spec.stop.signal);
            drop(raw);
            status
        }
        _ => supervise(child, Reaping::ChildOnly, spec.stop.signal, Some(spec.stop)),
    }
    .map_err(|errno| ContainerError::Process {
        step: "wait for the container's init",
        errno,
    })?;
    Ok(exit_code(status).unwrap_or(RUNTIME_ERROR))
}

/// The child's side, as pid 1 in the new namespaces: wait for the maps, build and enter the
/// root, run the workload.
fn init_container(
    sys: &dyn Syscall,
    spec: &ContainerSpec,
    resolv_conf: Option<&[u8]>,
    ready: OwnedFd,
    tty: Option<OwnedFd>,
) -> Result<i32, ContainerError> {
    sys.setsid().map_err(|errno| ContainerError::Process {
        step: "start the init's own session (setsid)",
        errno,
    })?;

    // If the runtime dies (SIGKILL), take the container with it rather than leave it
    // running unsupervised.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|errno| ContainerError::Sync {
        step: "set the parent-death signal",
        errno,
    })?;
    let mut byte = [0u8; 1];
    let applied = loop {
        match nix::unistd::read(&ready, &mut byte) {
            Ok(1) => break AppliedMapping::from_byte(byte[0]),
            Ok(_) => break None,
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(ContainerError::Sync {
                    step: "wait for the id maps",
                    errno,
                })
            }
        }
    }
    .ok_or(ContainerError::Sync {
        step: "wait for the id maps: the runtime exited",
        errno: Errno::EPIPE,
    })?;
    drop(ready);
    // Only now: the runtime writes the id maps into /proc/PID/, which a non-dumpable
    // process's owner can no longer open. Nothing of the image runs before this point.
    sys.set_undumpable()
        .map_err(|errno| ContainerError::Process {
            step: "make the init non-dumpable (PR_SET_DUMPABLE)",
            errno,
        })?;
    if let Err(errno) = sys.join_new_session_keyring() {
        // Inside another container keyctl may be filtered; the workload's filter denies
        // keyctl anyway, so the caller's keyring is still out of its reach.
        spec.reporter.debug(format_args!(
            "session keyring: cannot join a new one ({errno}); keyctl is denied to the workload"
        ));
    }
    let root = setup_container(sys, spec, resolv_conf, applied)?;
    enter_root(sys, &root)?;
    let slave = match tty {
        Some(sock) => {
            let (master, slave) =
                open_container_pty(spec.process.uid).map_err(|errno| ContainerError::Process {
                    step: "open a terminal in the container's /dev/ptmx (-t)",
                    errno,
                })?;
            hand_over(sock.as_fd(), master).map_err(|errno| ContainerError::Sync {
                step: "hand the terminal to the runtime",
                errno,
            })?;
            Some(slave)
        }
        None => None,
    };
    crate::process::rlimit::apply(&spec.rlimits).map_err(|errno| ContainerError::Process {
        step: "set the resource limits (--ulimit)",
        errno,
    })?;
    let code = run_init(
        sys,
        &spec.process,
        applied,
        (&spec.confinement, spec.seccomp.as_deref()),
        slave,
        spec.stop.signal,
        &spec.reporter,
    );
    end_container(spec);
    code
}

/// After the workload has ended: kills what is left in the pid namespace, reaps it, and
/// empties the run's directories (only possible in here, as root of the user namespace).
fn end_container(spec: &ContainerSpec) {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while !matches!(nix::sys::wait::waitpid(None, None), Err(Errno::ECHILD)) {}
    if let Some(cleanup) = &spec.cleanup {
        for failure in cleanup.clean_inside() {
            spec.reporter
                .debug(format_args!("run directory: cannot remove {failure}"));
        }
    }
}

/// Builds the container's root below `scratch` and sets the hostname; returns the root's
/// path, ready for [`enter_root`]. Runs inside the new namespaces, as their root.
pub fn setup_container(
    sys: &dyn Syscall,
    spec: &ContainerSpec,
    resolv_conf: Option<&[u8]>,
    applied: AppliedMapping,
) -> Result<PathBuf, ContainerError> {
    let lower = match spec.rootfs_identity {
        Some(identity) => sys
            .reopen_dir_checked(&spec.rootfs, identity)
            .map_err(|errno| ContainerError::Lower {
                path: spec.rootfs.clone(),
                errno,
            })?,
        None => spec.rootfs.clone(),
    };
    let (root, _) = prepare_root(sys, &lower, &spec.run_dir, &spec.reporter)?;
    mount_kernel_filesystems(
        sys,
        &root,
        applied == AppliedMapping::Full,
        &spec.confinement,
        &spec.reporter,
    )?;
    write_etc_files(sys, &root, &spec.hostname, resolv_conf)?;
    // After everything the runtime writes, so none of it can land in a volume.
    mount_requested(sys, &root, &spec.mounts, &spec.reporter)?;
    sys.resolve_dir_in_root(&root, &spec.process.cwd, true)
        .map_err(|errno| ContainerError::Workdir {
            path: spec.process.cwd.clone(),
            errno,
        })?;
    sys.sethostname(&spec.hostname)
        .map_err(|errno| ContainerError::Hostname {
            name: spec.hostname.clone(),
            errno,
        })?;
    if spec.confinement.read_only_root {
        // Only the root's own mount: /tmp, /run, /dev and the rest stay as they are.
        let flags = sys.mount_flags(&root).unwrap_or(MsFlags::empty());
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags;
        sys.mount(None, &root, None, remount, None)
            .map_err(ContainerError::mount(
                "the root read-only (--read-only)",
                &root,
            ))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};
    use crate::ns::userns::{choose_mapping, HostUser};
    use std::path::Path;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            rootfs: "/cache/root".into(),
            rootfs_identity: None,
            process: ProcessSpec {
                args: vec!["/bin/sh".into()],
                env: vec![],
                cwd: "/data".into(),
                uid: 0,
                gid: 0,
                additional_gids: vec![],
            },
            mapping: choose_mapping(
                HostUser {
                    uid: 1000,
                    gid: 1000,
                    name: None,
                },
                0,
                0,
                vec![],
                vec![],
                None,
            ),
            hostname: "0123456789ab".into(),
            reporter: Reporter::new("test", false),
            sysctl_root: "/proc/sys".into(),
            confinement: Confinement::default(),
            run_dir: "/tmp".into(),
            cleanup: None,
            tty: false,
            seccomp: None,
            mounts: vec![],
            rlimits: vec![],
            stop: StopPolicy::default(),
        }
    }

    #[test]
    fn setup_order_private_overlay_kernel_fs_masks_etc_workdir_hostname() {
        let sys = RecordingSyscall::new();
        let root = setup_container(&sys, &spec(), None, AppliedMapping::Single).unwrap();
        assert_eq!(root, Path::new("/tmp/root"));
        let mut want: Vec<String> = [
            "/",
            "/tmp/root",
            "/tmp/root/proc",
            "/tmp/root/dev",
            "/tmp/root/dev/null",
            "/tmp/root/dev/zero",
            "/tmp/root/dev/full",
            "/tmp/root/dev/random",
            "/tmp/root/dev/urandom",
            "/tmp/root/dev/tty",
            "/tmp/root/dev/pts",
            "/tmp/root/dev/shm",
            "/tmp/root/dev/mqueue",
            "/tmp/root/sys",
        ]
        .map(String::from)
        .to_vec();
        let masked = crate::confine::paths::MASKED_PROC
            .iter()
            .map(|n| format!("/tmp/root/proc/{n}"));
        want.extend(masked);
        want.extend(
            crate::confine::paths::MASKED_SYS
                .iter()
                .map(|n| format!("/tmp/root/sys/{n}")),
        );
        want.extend(
            crate::confine::paths::READONLY_PROC
                .iter()
                .map(|n| format!("/tmp/root/proc/{n}")),
        );
        want.push("/tmp/root/tmp".into());
        assert_eq!(sys.mount_targets(), want);
        let calls = sys.calls();
        assert_eq!(
            calls[0],
            Call::mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        );
        let n = calls.len();
        assert_eq!(
            calls[n - 2],
            Call::ResolveDir("/tmp/root".into(), "/data".into(), true)
        );
        assert_eq!(calls[n - 1], Call::Sethostname("0123456789ab".into()));
        assert!(calls.contains(&Call::WriteInRoot(
            "/tmp/root".into(),
            "/etc/hostname".into(),
            "0123456789ab\n".into()
        )));
    }

    #[test]
    fn a_failing_workdir_is_named() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::ResolveDir(_, p, _) if p == Path::new("/data")),
            Errno::ENOTDIR,
        );
        let err = setup_container(&sys, &spec(), None, AppliedMapping::Full).unwrap_err();
        assert!(err.to_string().contains("working directory /data"), "{err}");
    }

    #[test]
    fn clone_failure_is_diagnosed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("user")).unwrap();
        std::fs::write(dir.path().join("user/max_user_namespaces"), "0\n").unwrap();
        let mut spec = spec();
        spec.sysctl_root = dir.path().into();
        // run_container blocks signals for the calling thread; do it on a thread of its own.
        let err = std::thread::spawn(move || {
            let sys = RecordingSyscall::new();
            sys.fail_when(|c| matches!(c, Call::Clone(_)), Errno::ENOSPC);
            run_container(&spec, &sys).unwrap_err().to_string()
        })
        .join()
        .unwrap();
        assert!(err.contains("user.max_user_namespaces=0"), "{err}");
    }
}
