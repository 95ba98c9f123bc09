//! The host's view of the processes a test started: the tree below a pid, read from
//! `/proc`, so a test can signal one process of a run (the oci2bin binary rather than
//! `runuser` or the whole group) and check that none of them outlives the run.
//!
//! Processes are identified by pid and start time, so a pid reused by an unrelated process
//! after the original exited is not mistaken for it. Container processes live in their own
//! pid namespace but appear here with their host pids, below the binary that cloned them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One process, as identified on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcId {
    /// Host pid.
    pub pid: i32,
    /// Start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start_time: u64,
}

/// The fields of `/proc/PID/stat` that tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat` (the command name may contain spaces and parentheses,
/// so fields are counted from the last `)`).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field N is fields[N - 3].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat` of `pid`, if it exists.
pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the host with its stat.
fn all_processes() -> Vec<(i32, ProcStat)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// The processes below `root` (children, their children, ...), not including `root`.
pub fn descendants(root: i32) -> Vec<ProcId> {
    let all = all_processes();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, st) in &all {
            if st.ppid == parent && *pid != root {
                out.push(ProcId {
                    pid: *pid,
                    start_time: st.start_time,
                });
                frontier.push(*pid);
            }
        }
    }
    out
}

/// Whether `p` still runs (a zombie has finished and only waits to be reaped).
pub fn is_running(p: &ProcId) -> bool {
    stat(p.pid).is_some_and(|st| st.start_time == p.start_time && st.state != 'Z')
}

/// Waits up to `timeout` until none of `procs` runs; returns those still running.
pub fn wait_all_gone(procs: &[ProcId], timeout: Duration) -> Vec<ProcId> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<ProcId> = procs.iter().copied().filter(is_running).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The executable of a process (`/proc/PID/exe`; readable by root for any process).
pub fn exe(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The command line of a process, for messages.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Waits up to `timeout` for the direct child of `parent` that runs the executable `exe`
/// (e.g. the oci2bin binary below `runuser`).
pub fn wait_for_child_exe(parent: i32, exe_path: &Path, timeout: Duration) -> Option<ProcId> {
    let want = fs::canonicalize(exe_path).unwrap_or_else(|_| exe_path.to_path_buf());
    let deadline = Instant::now() + timeout;
    loop {
        let found = all_processes().into_iter().find(|(pid, st)| {
            st.ppid == parent && st.state != 'Z' && exe(*pid).as_deref() == Some(want.as_path())
        });
        if let Some((pid, st)) = found {
            return Some(ProcId {
                pid,
                start_time: st.start_time,
            });
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to the single process `p` if it is still the same process.
pub fn signal(p: &ProcId, signal: i32) -> bool {
    if stat(p.pid).is_none_or(|st| st.start_time != p.start_time) {
        return false;
    }
    // SAFETY: kill(2) on a pid checked above to be the process we mean.
    unsafe { libc::kill(p.pid, signal) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn parses_stat_with_odd_command_names() {
        let text = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 100 5";
        let st = parse_stat(text).unwrap();
        assert_eq!(
            st,
            ProcStat {
                state: 'S',
                ppid: 7,
                start_time: 12345
            }
        );
        assert!(parse_stat("1 (x) S").is_none());
    }

    #[test]
    fn finds_children_and_sees_them_exit() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let me = child.id() as i32;
        let sleep = wait_for_child_exe(me, Path::new("/bin/sleep"), Duration::from_secs(10))
            .or_else(|| wait_for_child_exe(me, Path::new("/usr/bin/sleep"), Duration::from_secs(1)))
            .expect("the sleep child");
        assert!(descendants(me).contains(&sleep));
        assert!(is_running(&sleep));
        assert!(signal(&sleep, libc::SIGKILL));
        assert!(wait_all_gone(&[sleep], Duration::from_secs(10)).is_empty());
        child.wait().unwrap();
        assert!(!signal(&sleep, 0), "a reaped process is not signalled");
    }
}
