//! The Debian-based test images of `scripts/build-test-images.sh`, checked independently of
//! oci2bin's runtime: skopeo reads them, and each server starts and answers when its unpacked
//! root filesystem (umoci) runs under bubblewrap with the image's entrypoint, env and user.
//! When these pass and an oci2bin test of the same image fails, the runtime is at fault.

use oci2bin_tests::images::TEST_IMAGES;
use oci2bin_tests::oci_layout::{read_config, start_command};
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{
    free_port, http_get, is_root, postgres_query, redis_command, redis_ping, test_images,
    wait_for_port, ChildGuard, TestDir,
};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const E2E: &str = "e2e: needs root, mmdebstrap images; run with --include-ignored";

fn unpack(image: &str, dir: &TestDir) -> (PathBuf, Value) {
    let layout = test_images().join(image);
    let bundle = dir.join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:latest", layout.display())])
            .arg(&bundle),
    );
    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o755)).unwrap();
    (bundle.join("rootfs"), read_config(&layout, "latest"))
}

/// The uid and gid of `name` in the root filesystem's /etc/passwd.
fn image_user(rootfs: &Path, name: &str) -> (u32, u32) {
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    let f: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == name)
        .unwrap_or_else(|| panic!("no user {name} in the image"));
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// Starts the image's entrypoint+cmd in `rootfs` under bwrap (pid/ipc namespaces, host
/// network), with the config's env plus `env`, as `user` (uid, gid) or root.
fn start(
    rootfs: &Path,
    config: &Value,
    env: &[(&str, String)],
    user: Option<(u32, u32)>,
    log: &Path,
) -> ChildGuard {
    let mut cmd = match user {
        None => Command::new("bwrap"),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "bwrap",
            ]);
            c
        }
    };
    cmd.env_clear().arg("--bind").arg(rootfs).arg("/");
    cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    cmd.args([
        "--unshare-pid",
        "--unshare-ipc",
        "--die-with-parent",
        "--clearenv",
    ]);
    let c = &config["config"];
    cmd.args(["--chdir", c["WorkingDir"].as_str().unwrap_or("/")]);
    for kv in c["Env"].as_array().into_iter().flatten() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        cmd.args(["--setenv", k, v]);
    }
    for (k, v) in env {
        cmd.args(["--setenv", k, v]);
    }
    cmd.args(start_command(config));
    ChildGuard::spawn(cmd, log).unwrap()
}

fn wait_or_show(port: u16, server: &mut ChildGuard, secs: u64) {
    if !wait_for_port(port, Duration::from_secs(secs)) {
        panic!(
            "nothing listens on {port} after {secs}s (exited: {:?})\n{}",
            server.try_status(),
            server.log()
        );
    }
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn test_images_are_valid_layouts_with_the_documented_configs() {
    let dir = test_images();
    for name in TEST_IMAGES {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            &format!("oci:{}:latest", dir.join(name).display()),
        ]));
        let info: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info["Os"], "linux", "{name}");
    }
    let cfg = |name| read_config(&dir.join(name), "latest")["config"].clone();
    assert_eq!(cfg("busybox")["Cmd"], json!(["sh"]));
    let redis = cfg("redis");
    assert_eq!(redis["Entrypoint"], json!(["docker-entrypoint.sh"]));
    assert_eq!(redis["Cmd"], json!(["redis-server"]));
    assert_eq!(redis["ExposedPorts"], json!({"6379/tcp": {}}));
    assert_eq!(cfg("nginx")["Cmd"], json!(["nginx", "-g", "daemon off;"]));
    assert_eq!(
        cfg("postgres")["Entrypoint"],
        json!(["docker-entrypoint.sh"])
    );
    assert!(cfg("postgres")["User"].is_null());
    assert_eq!(cfg("postgres-user")["User"], "postgres");
    let archive = dir.join("busybox.docker-archive.tar");
    run_ok(
        Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", archive.display())]),
    );
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn busybox_image_runs_applets() {
    let dir = TestDir::new("img-busybox");
    let (rootfs, _) = unpack("busybox", &dir);
    let out = run_ok(
        Command::new("bwrap")
            .arg("--bind")
            .arg(&rootfs)
            .arg("/")
            .args(["--proc", "/proc", "--dev", "/dev", "--clearenv"])
            .args(["--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["/bin/sh", "-c"])
            .arg("echo hi; busybox --list | wc -l; for a in $(busybox --list); do command -v $a >/dev/null || echo missing $a; done"),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("hi"));
    let applets: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(applets > 200, "only {applets} applets");
    let missing: Vec<&str> = lines.collect();
    assert!(missing.is_empty(), "applets not on PATH: {missing:?}");
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn redis_image_answers_and_can_save() {
    assert!(is_root(), "{E2E}");
    let dir = TestDir::new("img-redis");
    let (rootfs, mut config) = unpack("redis", &dir);
    let port = free_port();
    // Override the port the way a user would: replace Cmd.
    config["config"]["Cmd"] = json!([
        "redis-server",
        "--protected-mode",
        "no",
        "--port",
        port.to_string()
    ]);
    let mut server = start(&rootfs, &config, &[], None, &dir.join("redis.log"));
    wait_or_show(port, &mut server, 30);
    assert_eq!(redis_ping(port).unwrap(), "+PONG");
    assert_eq!(redis_command(port, &["SET", "k", "v"]).unwrap(), "+OK");
    assert_eq!(redis_command(port, &["GET", "k"]).unwrap(), "v");
    // SAVE writes dump.rdb into the working directory /data.
    assert_eq!(
        redis_command(port, &["SAVE"]).unwrap(),
        "+OK",
        "{}",
        server.log()
    );
    assert!(rootfs.join("data/dump.rdb").is_file());
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn nginx_image_serves_on_nginx_port() {
    assert!(is_root(), "{E2E}");
    let dir = TestDir::new("img-nginx");
    let (rootfs, config) = unpack("nginx", &dir);
    let port = free_port();
    let env = [("NGINX_PORT", port.to_string())];
    let mut server = start(&rootfs, &config, &env, None, &dir.join("nginx.log"));
    wait_or_show(port, &mut server, 30);
    let resp = http_get(port, "/").unwrap();
    assert_eq!(resp.status, 200, "{}", server.log());
    assert!(String::from_utf8_lossy(&resp.body).contains("oci2bin nginx test image"));
    assert_eq!(http_get(port, "/missing").unwrap().status, 404);
    // Access log on stdout.
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.log().contains("GET /missing"), "{}", server.log());
}

fn check_postgres(image: &str, as_image_user: bool) {
    assert!(is_root(), "{E2E}");
    let dir = TestDir::new(&format!("img-{image}"));
    let (rootfs, config) = unpack(image, &dir);
    let user = as_image_user.then(|| image_user(&rootfs, "postgres"));
    let port = free_port();
    let env = [("PGPORT", port.to_string())];
    let mut server = start(&rootfs, &config, &env, user, &dir.join("postgres.log"));
    wait_or_show(port, &mut server, 120);
    // The port opens before recovery ends ("the database system is starting up"): retry.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let rows = loop {
        match postgres_query(port, "postgres", "SELECT current_user, 40 + 2") {
            Ok(rows) => break rows,
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.to_string().contains("starting up") =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{e}\n{}", server.log()),
        }
    };
    assert_eq!(
        rows,
        [vec![Some("postgres".to_string()), Some("42".to_string())]]
    );
    assert!(rootfs.join("var/lib/postgresql/data/PG_VERSION").is_file());
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn postgres_image_initialises_as_root_then_drops_to_postgres() {
    check_postgres("postgres", false);
}

#[test]
#[ignore = "e2e: needs root, mmdebstrap images; run with --include-ignored"]
fn postgres_user_image_runs_as_postgres() {
    check_postgres("postgres-user", true);
}
