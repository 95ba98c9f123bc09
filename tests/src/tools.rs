//! Running the host tools the harness relies on and failing with their output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `cmd` to completion and panics, showing its stdout and stderr, unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The first of `candidates` that exists, for system tools that tests call by absolute path
/// (commands run with an empty environment have no `PATH` to search).
pub fn system_tool(candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("none of {candidates:?} exists; install it"))
        .to_path_buf()
}

/// Kills, when dropped, the rootless podman pause process that a test's podman started
/// with this runtime directory (`XDG_RUNTIME_DIR`): it outlives `podman load`.
pub struct PodmanPause(pub PathBuf);

impl Drop for PodmanPause {
    fn drop(&mut self) {
        let pidfile = self.0.join("libpod/tmp/pause.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on the pid podman recorded for this test's runtime directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ok_returns_output_and_panics_on_failure() {
        let out = run_ok(Command::new("sh").args(["-c", "echo out"]));
        assert_eq!(out.stdout, b"out\n");
        let failed = std::panic::catch_unwind(|| {
            run_ok(Command::new("sh").args(["-c", "echo why >&2; exit 3"]))
        });
        let msg = *failed.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("why") && msg.contains('3'), "{msg}");
    }

    #[test]
    fn system_tool_finds_the_first_existing() {
        assert_eq!(
            system_tool(&["/nonexistent/x", "/bin/sh"]),
            Path::new("/bin/sh")
        );
    }
}
