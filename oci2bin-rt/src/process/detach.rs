//! Background containers and their management through the binary itself: `-d/--detach`,
//! `--ps`, `--logs`, `--stop`.
//!
//! A detached run forks: the caller gets the container's name and exit 0 once the
//! background runtime has recorded itself; the background runtime starts a session of its
//! own, reads `/dev/null`, and writes stdout and stderr through a pipe to a log relay that
//! keeps `log` under [`LOG_LIMIT`] bytes (the older part in `log.1`). Its state is a
//! directory per name under `$XDG_RUNTIME_DIR/oci2bin` (else `<cache>/state`), checked as
//! the cache is: `pid` holds the runtime's pid, its start time in clock ticks since boot
//! (field 22 of `/proc/PID/stat`, so a reused pid is never taken for it) and the wall-clock
//! start; `command` the command; `exit` the exit code once it has ended. The state
//! survives the runtime being killed: such a container shows as `killed`.

use crate::cache::trust::{caller_uid, open_dir_at, open_root, TrustError};
use crate::process::output_relay::read_until_eof;
use crate::process::relay::write_all;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{fork, ForkResult, Pid};
use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The size at which `log` is moved to `log.1` and started again.
pub const LOG_LIMIT: u64 = 10 << 20;

/// A management command that cannot be carried out.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// The state directory cannot be used.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A file of the state cannot be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No container of that name.
    #[error("no container named {0} (see --ps)")]
    Unknown(String),
    /// A detached container of that name is running.
    #[error(
        "a container named {0} is running; stop it first (--stop {0}) or choose another --name"
    )]
    Running(String),
}

/// Where the state of background containers lives.
pub fn state_root(cache_root: &Path) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_dir()) {
        Some(dir) => Path::new(&dir).join("oci2bin"),
        None => cache_root.join("state"),
    }
}

/// The start time of process `pid` in clock ticks since boot, if it exists.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// One background container, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Its name.
    pub name: String,
    /// The runtime's pid, if it is still that process.
    pub running: Option<i32>,
    /// Seconds since it started.
    pub uptime: u64,
    /// The exit code once it has ended (`None` and not running: killed).
    pub exit: Option<i32>,
    /// The command.
    pub command: String,
}

impl Recorded {
    /// `running`, `exited (N)` or `killed`.
    pub fn status(&self) -> String {
        match (self.running, self.exit) {
            (Some(_), _) => "running".into(),
            (None, Some(code)) => format!("exited ({code})"),
            (None, None) => "killed".into(),
        }
    }
}

/// Reads the state of `name` in `dir`.
fn read_state(dir: &Path, name: &str) -> Option<Recorded> {
    let base = dir.join(name);
    let pid = std::fs::read_to_string(base.join("pid")).ok()?;
    let mut fields = pid.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (pid, ticks, started) = (fields.next()??, fields.next()??, fields.next()??);
    let pid = pid as i32;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(Recorded {
        name: name.to_string(),
        running: (start_time(pid) == Some(ticks)).then_some(pid),
        uptime: now.saturating_sub(started),
        exit: std::fs::read_to_string(base.join("exit"))
            .ok()
            .and_then(|c| c.trim().parse().ok()),
        command: std::fs::read_to_string(base.join("command")).unwrap_or_default(),
    })
}

/// Every background container recorded under `dir` (in directory order: sorting would
/// cost the runtime more than it is worth).
pub fn list(dir: &Path) -> Vec<Recorded> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read_state(dir, e.file_name().to_str()?))
        .collect()
}

/// A JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--ps` text: a table, or with `json` one JSON array.
pub fn ps(dir: &Path, json: bool) -> String {
    let all = list(dir);
    let mut out = String::new();
    if json {
        let items: Vec<String> = all
            .iter()
            .map(|r| {
                format!(
                    "{{\"name\":{},\"status\":{},\"pid\":{},\"uptime_seconds\":{},\"exit_code\":{},\"command\":{}}}",
                    json_string(&r.name),
                    json_string(&r.status()),
                    r.running.map_or("null".into(), |p| p.to_string()),
                    r.uptime,
                    r.exit.map_or("null".into(), |c| c.to_string()),
                    json_string(&r.command)
                )
            })
            .collect();
        let _ = writeln!(out, "[{}]", items.join(","));
        return out;
    }
    let _ = writeln!(
        out,
        "{:<20} {:<12} {:>8} {:>9}  COMMAND",
        "NAME", "STATUS", "PID", "UPTIME"
    );
    for r in &all {
        let pid = r.running.map_or("-".into(), |p| p.to_string());
        let up = match r.running {
            Some(_) => format!("{}s", r.uptime),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<20} {:<12} {pid:>8} {up:>9}  {}",
            r.name,
            r.status(),
            r.command
        );
    }
    out
}

/// Prints the last `tail` lines (all with `None`) of `name`'s log, then with `follow` what
/// is added while it runs.
pub fn logs(dir: &Path, name: &str, tail: Option<usize>, follow: bool) -> Result<(), DetachError> {
    let base = dir.join(name);
    let state = read_state(dir, name).ok_or_else(|| DetachError::Unknown(name.into()))?;
    let read = |f: &str| std::fs::read(base.join(f)).unwrap_or_default();
    let mut text = read("log.1");
    text.extend(read("log"));
    let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let start: usize = lines[..skip].iter().map(|l| l.len()).sum();
    let stdout = std::io::stdout();
    let _ = write_all(stdout.as_fd(), &text[start..]);
    let mut seen = read("log").len();
    while follow && state.running.is_some_and(|pid| start_time(pid).is_some()) {
        std::thread::sleep(Duration::from_millis(200));
        let now = read("log");
        // Rotated meanwhile: the new file starts from nothing.
        let from = if now.len() < seen { 0 } else { seen };
        let _ = write_all(stdout.as_fd(), &now[from..]);
        seen = now.len();
    }
    Ok(())
}

/// `--stop`: sends SIGTERM to `name`'s runtime (which stops the container as `docker stop`:
/// the stop signal, SIGKILL after the container's stop timeout) and waits for it to end;
/// after `kill_after` (if given) the runtime is killed, which takes the container with it.
pub fn stop(dir: &Path, name: &str, kill_after: Option<Duration>) -> Result<(), DetachError> {
    let state = read_state(dir, name).ok_or_else(|| DetachError::Unknown(name.into()))?;
    let Some(pid) = state.running else {
        return Ok(());
    };
    let ticks = start_time(pid);
    let alive = || ticks.is_some() && start_time(pid) == ticks;
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let start = std::time::Instant::now();
    while alive() {
        if kill_after.is_some_and(|t| start.elapsed() >= t) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Copies `from` into the log at `path` until end of file, moving it to `path.1` whenever
/// it would pass [`LOG_LIMIT`].
fn log_until_eof(from: &OwnedFd, path: &Path) {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    };
    let Some(mut file) = open() else { return };
    let mut size = file.metadata().map_or(0, |m| m.len());
    read_until_eof(from, |chunk| {
        if size + chunk.len() as u64 > LOG_LIMIT {
            let _ = std::fs::rename(path, path.with_extension("1"));
            let Some(f) = open() else { return false };
            (file, size) = (f, 0);
        }
        size += chunk.len() as u64;
        write_all(file.as_fd(), chunk).is_ok()
    });
}

/// Forks into the background as the container `name` running `command` (see the module).
/// Returns in the background runtime, with the directory to record the exit code in; the
/// foreground process prints the name and exits 0. Must be called single-threaded, after
/// everything that can fail in front of the user has been checked.
pub fn detach(dir: &Path, name: &str, command: &str) -> Result<PathBuf, DetachError> {
    let uid = caller_uid();
    let root = open_root(dir, uid)?;
    if read_state(dir, name).is_some_and(|s| s.running.is_some()) {
        return Err(DetachError::Running(name.into()));
    }
    let base = dir.join(name);
    let _ = crate::layer::remove::remove_all_at(root.as_fd(), name.as_ref());
    open_dir_at(root.as_fd(), dir, name.as_ref(), true, uid)?;
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| DetachError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::write(base.join("command"), command).map_err(io("writing", &base))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe().map_err(|e| io("creating a pipe in", &base)(e.into()))?;
    // SAFETY: single-threaded (documented requirement).
    match unsafe { fork() }.map_err(|e| io("forking for", &base)(e.into()))? {
        ForkResult::Parent { .. } => {
            drop(ready_w);
            let mut byte = [0u8; 1];
            let started = matches!(nix::unistd::read(&ready_r, &mut byte), Ok(1));
            if started {
                println!("{name}");
                std::process::exit(0);
            }
            // The background runtime reported its error in the log.
            eprintln!("{name}: the container did not start; see --logs {name}");
            std::process::exit(crate::process::exit::RUNTIME_ERROR)
        }
        ForkResult::Child => {
            drop(ready_r);
            let _ = nix::unistd::setsid();
            let (log_r, log_w) =
                nix::unistd::pipe().map_err(|e| io("creating a pipe in", &base)(e.into()))?;
            // SAFETY: still single-threaded: the relay only copies and exits.
            if let Ok(ForkResult::Child) = unsafe { fork() } {
                drop((log_w, ready_w));
                // The caller's stdio must not stay open here: it would keep `$(./app -d)`
                // waiting for the end of its output.
                for stdio in 0..3 {
                    let _ = nix::unistd::close(stdio);
                }
                log_until_eof(&log_r, &base.join("log"));
                std::process::exit(0);
            }
            drop(log_r);
            let null =
                std::fs::File::open("/dev/null").map_err(io("opening", Path::new("/dev/null")))?;
            for (from, to) in [
                (null.as_raw_fd(), 0),
                (log_w.as_raw_fd(), 1),
                (log_w.as_raw_fd(), 2),
            ] {
                // SAFETY: 0, 1 and 2 are stdio, replaced and kept open.
                let _ =
                    unsafe { nix::unistd::dup2_raw(std::os::fd::BorrowedFd::borrow_raw(from), to) }
                        .map(IntoRawFd::into_raw_fd);
            }
            let me = std::process::id() as i32;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let record = format!("{me} {} {now}\n", start_time(me).unwrap_or(0));
            std::fs::write(base.join("pid"), record).map_err(io("writing", &base))?;
            let _ = nix::unistd::write(&ready_w, b"1");
            Ok(base)
        }
    }
}

/// `--rm-container`: forgets the background state of `name` (refused while it runs);
/// whether there was any.
pub fn forget(dir: &Path, name: &str) -> Result<bool, DetachError> {
    match read_state(dir, name) {
        Some(s) if s.running.is_some() => Err(DetachError::Running(name.into())),
        _ if dir.join(name).is_dir() => {
            let root = open_root(dir, caller_uid())?;
            crate::layer::remove::remove_all_at(root.as_fd(), name.as_ref()).map_err(|e| {
                DetachError::Io {
                    action: "removing",
                    path: dir.join(name),
                    source: e.into(),
                }
            })?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Records the exit code of the background container whose state is `base`.
pub fn record_exit(base: &Path, code: i32) {
    let _ = std::fs::write(base.join("exit"), format!("{code}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_read_with_the_pid_checked_by_start_time() {
        let t = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let base = t.path().join("web");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(
            base.join("pid"),
            format!("{me} {} 0\n", start_time(me as i32).unwrap()),
        )
        .unwrap();
        std::fs::write(base.join("command"), "nginx -g 'daemon off;'").unwrap();
        let r = &list(t.path())[0];
        assert_eq!(r.running, Some(me as i32));
        assert_eq!(r.status(), "running");
        // The same pid with another start time is another process: not ours.
        std::fs::write(base.join("pid"), format!("{me} 1 0\n")).unwrap();
        assert_eq!(list(t.path())[0].status(), "killed");
        std::fs::write(base.join("exit"), "3\n").unwrap();
        assert_eq!(list(t.path())[0].status(), "exited (3)");
        let json = ps(t.path(), true);
        assert!(
            json.starts_with("[{\"name\":\"web\",\"status\":\"exited (3)\",\"pid\":null"),
            "{json}"
        );
        assert!(
            json.contains("\"command\":\"nginx -g 'daemon off;'\""),
            "{json}"
        );
        assert!(ps(t.path(), false).contains("web"));
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        assert_eq!(
            json_string("a\"b\\c\n\u{1b}"),
            "\"a\\\"b\\\\c\\u000a\\u001b\""
        );
    }

    #[test]
    fn the_log_rotates_at_the_limit() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        std::fs::write(&log, vec![b'a'; LOG_LIMIT as usize - 10]).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, b"0123456789abcdef\n").unwrap();
        drop(w);
        log_until_eof(&r, &log);
        assert_eq!(std::fs::read(&log).unwrap(), b"0123456789abcdef\n");
        assert_eq!(
            std::fs::metadata(t.path().join("log.1")).unwrap().len(),
            LOG_LIMIT - 10
        );
    }
}
