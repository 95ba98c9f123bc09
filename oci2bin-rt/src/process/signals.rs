//! Signal forwarding and child reaping, shared by the outer process (outside the namespaces)
//! and the container's init (pid 1 inside).
//!
//! Both block the forwarded signals and `SIGCHLD` and collect them with `sigwaitinfo`, which
//! needs no handler and no async-signal-safety reasoning. Every signal is passed on, also
//! those the kernel generates for the terminal's foreground process group (Ctrl-C, Ctrl-\,
//! hangup): the init and the workload each run in a session of their own, away from the
//! caller's terminal and process group, so the runtime is the only one to receive them.

use crate::process::exit::exit_code;
use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The signals passed on to the workload, as docker does for `docker run` (with `--init`).
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// The forwarded signals plus `SIGCHLD` and the container's stop signal: what a supervisor
/// blocks and waits for.
pub fn supervised_set(stop: Signal) -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set.add(stop);
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks the supervised signals for the calling process and, through inheritance, for the
/// children it creates before they reset their mask. Returns nothing to restore: the
/// workload starts from an empty mask, like a container started by docker.
pub fn block_supervised(stop: Signal) -> nix::Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&supervised_set(stop)), None)
}

/// How the container is stopped, as `docker stop` does it: `SIGTERM` to the runtime sends
/// `signal` to the workload, and SIGKILL follows after `timeout` (`None`: never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopPolicy {
    /// The image's `StopSignal`, `--stop-signal`, or SIGTERM.
    pub signal: Signal,
    /// `--stop-timeout`, 10 seconds by default.
    pub timeout: Option<std::time::Duration>,
}

impl Default for StopPolicy {
    fn default() -> Self {
        StopPolicy {
            signal: Signal::SIGTERM,
            timeout: Some(std::time::Duration::from_secs(10)),
        }
    }
}

/// A signal by docker's spellings: `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(text: &str) -> Option<Signal> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    format!("SIG{name}").parse().ok()
}

/// Resets every signal disposition to the default and unblocks all signals, just before
/// `execve` of the workload: the runtime ignores `SIGPIPE` (Rust does) and may have been
/// started with signals ignored (`nohup`), none of which the workload should inherit.
pub fn reset_for_exec() -> nix::Result<()> {
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL has no memory-safety requirements; numbers the C
        // library reserves for itself fail with EINVAL, which is fine to ignore.
        unsafe {
            libc::signal(signo, libc::SIG_DFL);
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Which children a supervisor waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaping {
    /// Only the one child (the outer process has no other).
    ChildOnly,
    /// Any child: pid 1 inherits every orphan of the container and must reap them.
    All,
}

/// Waits for one supervised signal, at most until `deadline`; returns its number, or
/// `None` at the deadline.
fn wait_signal(set: &SigSet, deadline: Option<std::time::Instant>) -> nix::Result<Option<i32>> {
    // SAFETY: siginfo_t is plain data; sigwaitinfo fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        let res = match deadline {
            // SAFETY: `set` is a valid sigset and `info` a valid siginfo_t to write.
            None => unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) },
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ts = libc::timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                };
                // SAFETY: as above, and `ts` is a valid timespec.
                unsafe { libc::sigtimedwait(set.as_ref(), &mut info, &ts) }
            }
        };
        match Errno::result(res) {
            Ok(signo) => return Ok(Some(signo)),
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reaps children without blocking; returns the end status of `child` once it has ended.
pub(crate) fn reap(child: Pid, reaping: Reaping) -> nix::Result<Option<WaitStatus>> {
    let target = match reaping {
        Reaping::ChildOnly => Some(child),
        Reaping::All => None,
    };
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) if status.pid() == Some(child) && exit_code(status).is_some() => {
                return Ok(Some(status));
            }
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Forwards signals to `child` and reaps until it ends; returns how it ended.
///
/// With a `stop` policy (the runtime, outside the namespaces), `SIGTERM` stops the
/// container as `docker stop` does: the child gets the stop signal, and SIGKILL after the
/// timeout if it is still there. Without one (the init), every signal is passed on as is;
/// `stop_signal` is the one the runtime may send besides the forwarded ones.
///
/// The supervised signals must be blocked (see [`block_supervised`]) since before `child`
/// was created, so that none is lost.
pub fn supervise(
    child: Pid,
    reaping: Reaping,
    stop_signal: Signal,
    stop: Option<StopPolicy>,
) -> nix::Result<WaitStatus> {
    let set = supervised_set(stop_signal);
    let mut deadline = None;
    loop {
        if let Some(status) = reap(child, reaping)? {
            return Ok(status);
        }
        let Some(signo) = wait_signal(&set, deadline)? else {
            // The stop timeout passed: as `docker stop`, kill it.
            let _ = kill(child, Signal::SIGKILL);
            deadline = None;
            continue;
        };
        if signo == libc::SIGCHLD {
            continue;
        }
        let Ok(mut signal) = Signal::try_from(signo) else {
            continue;
        };
        if let (Some(policy), Signal::SIGTERM) = (stop, signal) {
            signal = policy.signal;
            if deadline.is_none() {
                deadline = policy.timeout.map(|t| std::time::Instant::now() + t);
            }
        }
        // The child may have just exited: ESRCH is expected then.
        let _ = kill(child, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_as_docker() {
        for text in ["SIGQUIT", "QUIT", "quit", "3"] {
            assert_eq!(parse_signal(text), Some(Signal::SIGQUIT), "{text}");
        }
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("99"), None);
    }

    #[test]
    fn supervised_set_has_forwarded_and_sigchld() {
        let set = supervised_set(Signal::SIGPWR);
        assert!(set.contains(Signal::SIGPWR));
        for signal in FORWARDED {
            assert!(set.contains(signal));
        }
        assert!(set.contains(Signal::SIGCHLD));
        assert!(!set.contains(Signal::SIGKILL));
    }
}
