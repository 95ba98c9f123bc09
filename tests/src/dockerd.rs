//! A private Docker daemon for a test, so that `docker load` of a built executable can be
//! checked without touching (or needing) the host's daemon.
//!
//! It runs as root with its own data root, exec root, socket and pid file in a temporary
//! directory, no iptables, no bridge and the vfs storage driver, and is stopped (with its
//! containerd) when dropped.

use crate::process::ChildGuard;
use crate::tools::system_tool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the daemon gets to answer `docker version`.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running private `dockerd`.
pub struct Dockerd {
    // Dropped first: the daemon stops before its directory is removed.
    guard: ChildGuard,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts `dockerd` and waits until it answers; panics with its log if it does not.
    pub fn start() -> Dockerd {
        // A short path under /tmp: the sockets under it must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("oci2bin-dockerd-")
            .tempdir_in("/tmp")
            .expect("a temporary directory for dockerd");
        let d = dir.path();
        let socket = d.join("docker.sock");
        let mut cmd = Command::new(system_tool(&["/usr/sbin/dockerd", "/usr/bin/dockerd"]));
        cmd.args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()));
        let guard = ChildGuard::spawn(cmd, &d.join("dockerd.log")).expect("cannot start dockerd");
        let mut daemon = Dockerd { guard, socket, dir };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let up = daemon
                .docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return daemon;
            }
            if let Some(status) = daemon.guard.try_status() {
                panic!("dockerd exited with {status}:\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within {START_TIMEOUT:?}:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A `docker` client command talking to this daemon (Debian's client, matching the
    /// daemon's version).
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(system_tool(&["/usr/bin/docker", "/usr/local/bin/docker"]));
        cmd.env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        cmd
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.guard.log()
    }

    /// The daemon's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
