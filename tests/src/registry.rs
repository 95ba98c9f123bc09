//! A real registry for end-to-end tests: Debian's `docker-registry` on a free loopback port,
//! with storage in a test directory, filled with `skopeo copy` from the test images' OCI
//! layouts, and stopped when dropped.

use crate::net::{free_port, wait_for_port};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running registry.
pub struct Registry {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Registry {
    /// Starts a registry storing under `dir`.
    pub fn start(dir: &Path) -> Registry {
        let port = free_port();
        let storage = dir.join("registry-storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt install docker-registry)");
        let registry = Registry { child, port };
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "docker-registry did not listen on 127.0.0.1:{port}"
        );
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes `layout:tag` as `NAME:tag`, in OCI form or (with `docker_v2s2`) converted to
    /// Docker schema 2, and returns the reference.
    pub fn push(&self, layout: &Path, tag: &str, name: &str, docker_v2s2: bool) -> String {
        let reference = format!("{}/{name}:{tag}", self.host());
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if docker_v2s2 {
            cmd.args(["--format", "v2s2"]);
        } else {
            cmd.arg("--preserve-digests");
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{reference}"));
        let out = cmd.output().expect("skopeo (apt install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy to {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
