//! Background processes (servers under test) that are stopped when the test ends.
//!
//! The command is started in its own process group, so that stopping it reaches `runuser`,
//! the oci2bin binary and the container's processes alike, and only them: SIGTERM to the
//! group, then SIGKILL if it has not exited after a grace period. Output goes to a log file
//! that the test can show when an assertion fails.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a stopped process group gets to exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// A running child process group, terminated on drop.
pub struct ChildGuard {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group with stdin empty and stdout+stderr appended to
    /// `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> io::Result<ChildGuard> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()?;
        Ok(ChildGuard {
            child,
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The process id (also the process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status if the process has exited (without waiting).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process group.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the negated id of the group this guard created.
        unsafe { libc::kill(-(self.child.id() as i32), signal) };
    }

    /// Stops the group (SIGTERM, then SIGKILL after a grace period) and returns the leader's
    /// exit status.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            // The leader is gone; its group may still have members.
            self.signal(libc::SIGKILL);
            return status;
        }
        self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_timeout(GRACE) {
            self.signal(libc::SIGKILL);
            return status;
        }
        self.signal(libc::SIGKILL);
        let status = self.child.wait().expect("waiting for a killed child");
        self.status = Some(status);
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_output_and_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let pidfile = dir.path().join("grandchild");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "echo started; sleep 300 & echo $! > {}; wait",
            pidfile.display()
        ));
        let mut guard = ChildGuard::spawn(cmd, &log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(guard.log().contains("started") && pidfile.exists()) {
            assert!(
                Instant::now() < deadline,
                "child did not start: {}",
                guard.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(guard.try_status().is_none());
        let grandchild: i32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let status = guard.stop();
        assert!(!status.success());
        // The background `sleep` was in the group and dies too (it may linger briefly as a
        // zombie until it is reaped, so "gone or zombie" is what is awaited).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break;
            }
            assert!(Instant::now() < deadline, "sleep still runs: {stat}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn wait_timeout_returns_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 7"]);
        let mut guard = ChildGuard::spawn(cmd, &dir.path().join("log")).unwrap();
        let status = guard.wait_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(status.code(), Some(7));
    }
}
