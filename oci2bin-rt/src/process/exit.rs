//! Exit codes, chosen to match `docker run` so scripts written for docker keep working.

use nix::sys::wait::WaitStatus;

/// The runtime itself failed (bad option, image or namespace problem): docker's 125.
pub const RUNTIME_ERROR: i32 = 125;
/// The command exists but cannot be executed (permission, format): docker's 126.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command does not exist: docker's 127.
pub const NOT_FOUND: i32 = 127;

/// The exit code a shell would report for a child that ended with `status`: its code, or
/// 128 + N when killed by signal N. `None` for states that are not an end (stopped,
/// continued).
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn codes_like_a_shell() {
        let pid = Pid::from_raw(2);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 42)), Some(42));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, true)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
