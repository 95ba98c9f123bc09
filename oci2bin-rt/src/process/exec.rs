//! Starting the workload inside the container: its ids, working directory, a clean signal
//! state and file descriptor table, then `execve` with a `PATH` lookup done inside the image.

use crate::confine::policy::Confinement;
use crate::confine::seccomp::Filters;
use crate::ns::report::Reporter;
use crate::ns::syscall::Syscall;
use crate::ns::userns::AppliedMapping;
use crate::process::exit::{NOT_EXECUTABLE, NOT_FOUND, RUNTIME_ERROR};
use crate::process::signals::reset_for_exec;
use crate::process::spec::ProcessSpec;
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Switches to the workload's ids. With many ids mapped the init is container root and sets
/// supplementary groups, gid and uid (in that order: each step needs the privilege the next
/// one drops). With a single id the process already has the workload's ids and `setgroups`
/// is denied, so there is nothing to do.
pub fn apply_credentials(
    sys: &dyn Syscall,
    spec: &ProcessSpec,
    mapping: AppliedMapping,
) -> nix::Result<()> {
    if mapping == AppliedMapping::Single {
        return Ok(());
    }
    let groups: Vec<Gid> = spec
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    sys.setgroups(&groups)?;
    sys.setresgid(Gid::from_raw(spec.gid))?;
    sys.setresuid(Uid::from_raw(spec.uid))
}

/// The paths `execvp` would try for `program`: itself if it contains a `/`, else each `PATH`
/// entry joined with it (an empty entry means the current directory).
pub fn exec_candidates(program: &OsStr, path: Option<&OsStr>) -> Vec<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return vec![PathBuf::from(program)];
    }
    let path = path.unwrap_or(OsStr::new(crate::process::env::DEFAULT_PATH));
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            PathBuf::from(OsStr::from_bytes(dir)).join(program)
        })
        .collect()
}

/// Why the workload could not be started, with docker's exit code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecFailure {
    /// 125, 126 or 127.
    pub code: i32,
    /// What to tell the user.
    pub message: String,
}

/// Classifies the last `execve` error of a lookup, as docker reports it.
pub fn exec_failure(
    program: &OsStr,
    searched_path: bool,
    errno: Errno,
    saw_eacces: bool,
) -> ExecFailure {
    let name = program.to_string_lossy();
    if searched_path && !saw_eacces && matches!(errno, Errno::ENOENT | Errno::ENOTDIR) {
        return ExecFailure {
            code: NOT_FOUND,
            message: format!("exec: {name:?}: executable file not found in $PATH"),
        };
    }
    match (errno, saw_eacces) {
        (Errno::EACCES, _) | (_, true) => ExecFailure {
            code: NOT_EXECUTABLE,
            message: format!("exec: {name:?}: permission denied"),
        },
        (Errno::ENOENT | Errno::ENOTDIR, _) => ExecFailure {
            code: NOT_FOUND,
            message: format!("exec: {name:?}: no such file or directory"),
        },
        (errno, _) => ExecFailure {
            code: NOT_EXECUTABLE,
            message: format!("exec: {name:?}: {}", errno.desc()),
        },
    }
}

/// Marks every inherited descriptor above stderr close-on-exec, so nothing the runtime or
/// its caller had open reaches the workload.
fn close_inherited_fds() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    let res = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if res == 0 {
        return;
    }
    // Kernels before 5.11: walk the descriptor table.
    for fd in crate::process::fds::open_above_stderr() {
        // SAFETY: setting FD_CLOEXEC on a descriptor number; a stale one fails with EBADF.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Converts to C strings; NUL bytes cannot come from argv or a parsed config, so one is
/// reported as an invalid argument.
fn c_strings(items: &[OsString]) -> Result<Vec<CString>, ExecFailure> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| ExecFailure {
                code: RUNTIME_ERROR,
                message: format!("argument or variable {s:?} contains a NUL byte"),
            })
        })
        .collect()
}

/// A runtime error (125) for a confinement step that failed.
fn confinement_failure(step: &str, errno: Errno) -> ExecFailure {
    ExecFailure {
        code: RUNTIME_ERROR,
        message: format!("cannot {step}: {errno}; nothing was run"),
    }
}

/// Confines the calling process before it becomes the workload, in the order each step
/// allows: a session of its own (no controlling terminal, its own process group), the
/// capability bounding set (needs `CAP_SETPCAP`, so before the ids change), then
/// `no_new_privs` when asked for, then the seccomp filters. With `tty` (the container's pty slave, `-t`) the new
/// session's controlling terminal and stdio are that terminal.
pub fn confine_workload(
    sys: &dyn Syscall,
    confinement: &Confinement,
    seccomp: Option<&Filters>,
    tty: Option<BorrowedFd<'_>>,
) -> Result<(), ExecFailure> {
    sys.setsid()
        .map_err(|e| confinement_failure("start a new session (setsid)", e))?;
    if let Some(slave) = tty {
        crate::process::pty::attach_stdio(slave)
            .map_err(|e| confinement_failure("attach the container's terminal", e))?;
    }
    sys.limit_capabilities(confinement.caps)
        .map_err(|e| confinement_failure("limit the capabilities", e))?;
    if confinement.no_new_privs {
        sys.set_no_new_privs()
            .map_err(|e| confinement_failure("set no_new_privs", e))?;
    }
    if let Some(filters) = seccomp {
        // Still holding CAP_SYS_ADMIN of the user namespace, which installing needs without
        // no_new_privs; the profile allows what follows (setgroups, setresuid, execve).
        sys.install_seccomp(filters).map_err(|e| ExecFailure {
            code: RUNTIME_ERROR,
            message: format!("{e}; nothing was run"),
        })?;
    }
    Ok(())
}

/// Becomes the workload: confinement, ids, working directory, signals, descriptors, then
/// `execve` along `PATH`. Returns only on failure.
pub fn exec_workload(
    sys: &dyn Syscall,
    spec: &ProcessSpec,
    mapping: AppliedMapping,
    confinement: &Confinement,
    seccomp: Option<&Filters>,
    tty: Option<BorrowedFd<'_>>,
) -> ExecFailure {
    if let Err(failure) = confine_workload(sys, confinement, seccomp, tty) {
        return failure;
    }
    if let Err(errno) = apply_credentials(sys, spec, mapping) {
        return ExecFailure {
            code: RUNTIME_ERROR,
            message: format!(
                "cannot switch to user {}:{} (groups {:?}): {errno}",
                spec.uid, spec.gid, spec.additional_gids
            ),
        };
    }
    if let Err(errno) = sys.chdir(&spec.cwd) {
        return ExecFailure {
            code: RUNTIME_ERROR,
            message: format!(
                "cannot change to the working directory {}: {errno}",
                spec.cwd.display()
            ),
        };
    }
    let (argv, envp) = match (c_strings(&spec.args), c_strings(&spec.env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(f), _) | (_, Err(f)) => return f,
    };
    if let Err(errno) = reset_for_exec() {
        return ExecFailure {
            code: RUNTIME_ERROR,
            message: format!("cannot reset the signal mask: {errno}"),
        };
    }
    close_inherited_fds();
    let program = spec.args[0].as_os_str();
    let candidates = exec_candidates(program, spec.path_env());
    let searched_path = !program.as_bytes().contains(&b'/');
    let mut saw_eacces = false;
    let mut last = Errno::ENOENT;
    for candidate in candidates {
        let Ok(path) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        let Err(errno) = nix::unistd::execve(&path, &argv, &envp);
        last = errno;
        match errno {
            Errno::EACCES => saw_eacces = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            _ => break,
        }
    }
    exec_failure(program, searched_path, last, saw_eacces)
}

/// Runs in the forked workload process: [`exec_workload`], and on failure reports and exits
/// with docker's code.
pub fn exec_or_exit(
    sys: &dyn Syscall,
    spec: &ProcessSpec,
    mapping: AppliedMapping,
    confinement: &Confinement,
    seccomp: Option<&Filters>,
    tty: Option<BorrowedFd<'_>>,
    reporter: &Reporter,
) -> ! {
    let failure = exec_workload(sys, spec, mapping, confinement, seccomp, tty);
    reporter.error(&failure);
    std::process::exit(failure.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    fn spec() -> ProcessSpec {
        ProcessSpec {
            args: vec!["redis-server".into()],
            env: vec!["PATH=/usr/local/bin:/usr/bin".into()],
            cwd: "/data".into(),
            uid: 999,
            gid: 998,
            additional_gids: vec![10, 29],
        }
    }

    #[test]
    fn credentials_groups_then_gid_then_uid() {
        let sys = RecordingSyscall::new();
        apply_credentials(&sys, &spec(), AppliedMapping::Full).unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::Setgroups(vec![10, 29]),
                Call::Setresgid(998),
                Call::Setresuid(999),
            ]
        );
        let sys = RecordingSyscall::new();
        apply_credentials(&sys, &spec(), AppliedMapping::Single).unwrap();
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn path_lookup_like_execvp() {
        assert_eq!(
            exec_candidates(OsStr::new("ls"), Some(OsStr::new("/usr/bin::/bin"))),
            vec![
                PathBuf::from("/usr/bin/ls"),
                PathBuf::from("./ls"),
                PathBuf::from("/bin/ls")
            ]
        );
        assert_eq!(
            exec_candidates(OsStr::new("./run.sh"), Some(OsStr::new("/bin"))),
            vec![PathBuf::from("./run.sh")]
        );
    }

    #[test]
    fn failures_map_to_docker_codes() {
        let f = exec_failure(OsStr::new("nope"), true, Errno::ENOENT, false);
        assert_eq!(f.code, 127);
        assert_eq!(
            f.message,
            "exec: \"nope\": executable file not found in $PATH"
        );
        let f = exec_failure(OsStr::new("/nope"), false, Errno::ENOENT, false);
        assert_eq!(f.code, 127);
        assert!(f.message.contains("no such file or directory"));
        let f = exec_failure(OsStr::new("/etc"), false, Errno::EACCES, false);
        assert_eq!(f.code, 126);
        let f = exec_failure(OsStr::new("tool"), true, Errno::ENOENT, true);
        assert_eq!(
            f.code, 126,
            "a non-executable match in PATH wins over not found"
        );
        let f = exec_failure(OsStr::new("/bin.txt"), false, Errno::ENOEXEC, false);
        assert_eq!(f.code, 126);
        assert!(f.message.contains("Exec format error"), "{}", f.message);
    }

    #[test]
    fn failing_setuid_is_a_runtime_error() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::Setresuid(_)), Errno::EINVAL);
        let f = exec_workload(
            &sys,
            &spec(),
            AppliedMapping::Full,
            &Confinement::default(),
            None,
            None,
        );
        assert_eq!(f.code, RUNTIME_ERROR);
        assert!(f.message.contains("999:998"), "{}", f.message);
    }

    #[test]
    fn failing_chdir_is_reported_with_the_path() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::Chdir(_)), Errno::EACCES);
        let f = exec_workload(
            &sys,
            &spec(),
            AppliedMapping::Single,
            &Confinement::default(),
            None,
            None,
        );
        assert_eq!(f.code, RUNTIME_ERROR);
        assert!(f.message.contains("/data"), "{}", f.message);
    }

    #[test]
    fn confinement_comes_before_the_ids_change() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::Chdir(_)), Errno::EACCES);
        let confinement = Confinement {
            no_new_privs: true,
            ..Confinement::default()
        };
        exec_workload(
            &sys,
            &spec(),
            AppliedMapping::Full,
            &confinement,
            None,
            None,
        );
        let calls = sys.calls();
        assert_eq!(
            calls[..4],
            [
                Call::Setsid,
                Call::LimitCapabilities(0x8004_05fb),
                Call::SetNoNewPrivs,
                Call::Setgroups(vec![10, 29]),
            ]
        );
    }

    #[test]
    fn a_failing_confinement_step_runs_nothing() {
        let sys = RecordingSyscall::new();
        sys.fail_when(|c| matches!(c, Call::LimitCapabilities(_)), Errno::EPERM);
        let f = exec_workload(
            &sys,
            &spec(),
            AppliedMapping::Full,
            &Confinement::default(),
            None,
            None,
        );
        assert_eq!(f.code, RUNTIME_ERROR);
        assert!(
            f.message.contains("limit the capabilities"),
            "{}",
            f.message
        );
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Setresuid(_))));
    }
}
