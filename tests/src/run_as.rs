//! Running a command as a test user, as that user would run it from a login shell.
//!
//! `runuser -u USER -- env -i ...` drops root completely (real, effective and saved ids,
//! supplementary groups), and `env -i` gives the command only `HOME`, `USER`, `LOGNAME`,
//! a standard `PATH`, the per-test `OCI2BIN_CACHE_DIR` and what the test adds, so nothing of
//! the test runner's environment (`CARGO_*`, `RUST_*`, root's `HOME`) leaks into the run.

use crate::process::ChildGuard;
use crate::tools::system_tool;
use crate::users::TestUser;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `PATH` given to commands run as a test user.
pub const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A command to run as a test user.
#[derive(Clone, Debug)]
pub struct UserCommand {
    user: TestUser,
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
}

impl UserCommand {
    /// `program` (a path the user can execute) run as `user`.
    pub fn new(user: &TestUser, program: impl AsRef<OsStr>) -> UserCommand {
        UserCommand {
            user: user.clone(),
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Sets `OCI2BIN_CACHE_DIR` (give each test its own, owned by the user).
    pub fn cache_dir(self, dir: &Path) -> Self {
        self.env("OCI2BIN_CACHE_DIR", dir)
    }

    /// Runs the command in `dir` (default: the user's home directory).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The `runuser` command line.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(system_tool(&["/usr/sbin/runuser", "/sbin/runuser"]));
        cmd.env_clear()
            .current_dir(self.cwd.as_deref().unwrap_or(&self.user.home))
            .args(["-u", &self.user.name, "--"])
            .arg(system_tool(&["/usr/bin/env", "/bin/env"]))
            .arg("-i");
        let mut kv = |k: &OsStr, v: &OsStr| {
            let mut s = k.to_os_string();
            s.push("=");
            s.push(v);
            cmd.arg(s);
        };
        kv("HOME".as_ref(), self.user.home.as_os_str());
        kv("USER".as_ref(), self.user.name.as_ref());
        kv("LOGNAME".as_ref(), self.user.name.as_ref());
        kv("PATH".as_ref(), USER_PATH.as_ref());
        for (k, v) in &self.env {
            kv(k, v);
        }
        cmd.arg(&self.program).args(&self.args);
        cmd
    }

    /// Runs to completion, capturing stdout and stderr (stdin is empty).
    pub fn output(&self) -> io::Result<Output> {
        self.command().stdin(Stdio::null()).output()
    }

    /// Starts the command in the background, logging stdout and stderr to `log`; the process
    /// group is killed when the guard is dropped.
    pub fn spawn(&self, log: &Path) -> io::Result<ChildGuard> {
        ChildGuard::spawn(self.command(), log)
    }
}

/// Runs `bin echo hi` as `user` in `dir`, with the cache `dir/<cache>` owned by `user`, and
/// panics with the binary's stderr unless it printed `hi`: the smallest proof that an output
/// runs rootless.
pub fn assert_echo_hi(bin: &Path, user: &TestUser, dir: &crate::TestDir, cache: &str) {
    let run = UserCommand::new(user, bin)
        .args(["echo", "hi"])
        .cache_dir(&dir.user_dir(cache, user))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} echo hi exited with {}:\n{}",
        bin.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hi\n",
        "{}",
        bin.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_runuser_env_i() {
        let user = TestUser {
            name: "someone".into(),
            uid: 1234,
            gid: 1234,
            home: "/home/someone".into(),
        };
        let cmd = UserCommand::new(&user, "/x/bin")
            .args(["a", "b c"])
            .env("K", "V")
            .cache_dir(Path::new("/cache"))
            .current_dir(Path::new("/tmp"))
            .command();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args[..4],
            [
                "-u",
                "someone",
                "--",
                system_tool(&["/usr/bin/env", "/bin/env"]).to_str().unwrap()
            ]
        );
        assert_eq!(
            args[4..],
            [
                "-i",
                "HOME=/home/someone",
                "USER=someone",
                "LOGNAME=someone",
                &format!("PATH={USER_PATH}"),
                "K=V",
                "OCI2BIN_CACHE_DIR=/cache",
                "/x/bin",
                "a",
                "b c"
            ]
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/tmp")));
        assert_eq!(cmd.get_envs().count(), 0, "the environment is cleared");
    }
}
