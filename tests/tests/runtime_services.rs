//! Real servers in their images, run as an unprivileged user on 127.0.0.1: redis answers
//! PING, nginx serves its page, postgres answers `select 1`, both with the official-image
//! style entrypoint that starts as root and drops to `postgres` (which needs a subordinate id
//! range) and with `User postgres` for a user without ranges. Each is then stopped with
//! SIGTERM to the binary, as `docker stop` would, and must exit 0 leaving no process behind.

use oci2bin_tests::procs::{descendants, signal, wait_all_gone, wait_for_child_exe, ProcId};
use oci2bin_tests::{
    ensure_subids, free_port, http_get, image_source, nosub_user, postgres_query, redis_command,
    redis_ping, shared_binary, test_images, test_user, CacheState, ChildGuard, TestDir, TestUser,
    UserCommand,
};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a server may take to answer (postgres runs initdb first, on a shared machine).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a server may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn binary(name: &str) -> PathBuf {
    shared_binary(
        "runtime_services",
        name,
        &image_source(&test_images(), name),
    )
}

/// A server started from a binary as a test user.
struct Service {
    name: String,
    guard: ChildGuard,
    /// The binary's process (below `runuser`).
    bin: ProcId,
    cache: PathBuf,
}

impl Service {
    fn start(
        name: &str,
        user: &TestUser,
        dir: &TestDir,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let bin = binary(name);
        let cache = dir.user_dir(&format!("cache-{name}"), user);
        let mut cmd = UserCommand::new(user, &bin)
            .args(args)
            .cache_dir(&cache)
            .current_dir(dir.path());
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        // The log is the server's stdout: give it to the user, as a file the user redirected
        // output to would be (nginx reopens /dev/stdout, which needs write permission).
        let log = dir.join(format!("{name}.log"));
        fs::write(&log, "").unwrap();
        std::os::unix::fs::chown(&log, Some(user.uid), Some(user.gid)).unwrap();
        let guard = cmd.spawn(&log).unwrap();
        let proc = wait_for_child_exe(guard.id() as i32, &bin, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{name}: the binary did not start: {}", guard.log()));
        Service {
            name: name.to_string(),
            guard,
            bin: proc,
            cache,
        }
    }

    /// Polls `probe` until it succeeds, failing if the server exits or takes too long.
    fn wait_ready<T>(&mut self, mut probe: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let result = probe();
            match result {
                Ok(v) => return v,
                Err(e) => {
                    if let Some(status) = self.guard.try_status() {
                        panic!(
                            "{} exited with {status} before answering ({e}):\n{}",
                            self.name,
                            self.guard.log()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{} did not answer within {READY_TIMEOUT:?} ({e}):\n{}",
                        self.name,
                        self.guard.log()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to the binary alone; it must exit 0 and take every process of the run with it.
    fn stop(mut self) {
        let mut procs = descendants(self.bin.pid);
        procs.push(self.bin);
        assert!(
            signal(&self.bin, libc::SIGTERM),
            "{}: the binary is gone",
            self.name
        );
        let status = self.guard.wait_timeout(STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} still runs {STOP_TIMEOUT:?} after SIGTERM:\n{}",
                self.name,
                self.guard.log()
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "{} did not stop cleanly:\n{}",
            self.name,
            self.guard.log()
        );
        let left = wait_all_gone(&procs, Duration::from_secs(5));
        assert!(
            left.is_empty(),
            "{}: processes left after the stop: {:?}",
            self.name,
            left.iter()
                .map(|p| (p.pid, oci2bin_tests::procs::cmdline(p.pid)))
                .collect::<Vec<_>>()
        );
    }

    /// The uid of `name` in the image's /etc/passwd.
    fn image_uid(&self, name: &str) -> u32 {
        let passwd = fs::read_to_string(self.rootfs().join("etc/passwd")).unwrap();
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == name)
            .and_then(|f| f.get(2)?.parse().ok())
            .unwrap_or_else(|| panic!("no user {name} in the image's /etc/passwd"))
    }

    /// The host uid of the postgres server process (the postmaster, `postgres -p PORT`).
    fn server_host_uid(&self) -> u32 {
        let server = descendants(self.bin.pid)
            .into_iter()
            .find(|p| {
                let cmd = oci2bin_tests::procs::cmdline(p.pid);
                cmd.starts_with("postgres ") || cmd.starts_with("/usr/lib/postgresql/")
            })
            .unwrap_or_else(|| panic!("no postgres process below the binary"));
        let status = fs::read_to_string(format!("/proc/{}/status", server.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
            .expect("a Uid line")
    }

    /// The unpacked root of the image in this service's cache.
    fn rootfs(&self) -> PathBuf {
        CacheState::read(&self.cache).single_rootfs(&self.cache)
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn redis_answers_ping() {
    let dir = TestDir::new("runtime_redis");
    let user = test_user();
    let port = free_port();
    let p = port.to_string();
    // The image has no entrypoint: the arguments replace its CMD (redis-server ...).
    let mut redis = Service::start(
        "redis",
        &user,
        &dir,
        &[
            "redis-server",
            "--port",
            &p,
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
        ],
        &[],
    );
    let pong = redis.wait_ready(|| redis_ping(port).map_err(|e| e.to_string()));
    assert_eq!(pong, "+PONG");
    assert_eq!(redis_command(port, &["SET", "k", "v"]).unwrap(), "+OK");
    assert_eq!(redis_command(port, &["GET", "k"]).unwrap(), "v");
    redis.stop();
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn nginx_serves_its_page() {
    let dir = TestDir::new("runtime_nginx");
    let user = test_user();
    let port = free_port();
    let mut nginx = Service::start(
        "nginx",
        &user,
        &dir,
        &["-e", &format!("NGINX_PORT={port}")],
        &[],
    );
    let response = nginx.wait_ready(|| http_get(port, "/").map_err(|e| e.to_string()));
    assert_eq!(response.status, 200, "{}", response.headers);
    let page = fs::read(nginx.rootfs().join("usr/share/nginx/html/index.html")).unwrap();
    assert_eq!(
        response.body, page,
        "nginx served something else than the image's index.html"
    );
    assert_eq!(http_get(port, "/no-such-page").unwrap().status, 404);
    nginx.stop();
}

/// Waits for `select 1` to answer 1 (the server refuses queries while it starts).
fn select_one(service: &mut Service, port: u16) {
    let rows = service
        .wait_ready(|| postgres_query(port, "postgres", "select 1").map_err(|e| e.to_string()));
    assert_eq!(rows, vec![vec![Some("1".to_string())]]);
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn postgres_drops_root_with_a_subid_range() {
    let dir = TestDir::new("runtime_postgres");
    let user = test_user();
    ensure_subids(&user);
    let port = free_port();
    let mut pg = Service::start(
        "postgres",
        &user,
        &dir,
        &["-e", &format!("PGPORT={port}")],
        &[],
    );
    select_one(&mut pg, port);
    // The entrypoint dropped from root to the image's postgres user, which the subordinate
    // range maps: container uid N (N >= 1) is host uid start + N - 1.
    let (start, _count) = ensure_subids(&user);
    let uid = pg.image_uid("postgres");
    assert!(uid >= 1);
    assert_eq!(pg.server_host_uid(), start + uid - 1);
    pg.stop();
}

/// Runs the `USER postgres` image as `user` and checks `select 1`: whatever ids are mapped,
/// the caller is the workload's user, so the postgres server runs as the caller's host uid
/// and may take the data directory the image gives it.
fn postgres_user_image_as(user: &TestUser, dir_name: &str) {
    let dir = TestDir::new(dir_name);
    let port = free_port();
    let mut pg = Service::start(
        "postgres-user",
        user,
        &dir,
        &["-e", &format!("PGPORT={port}")],
        &[],
    );
    select_one(&mut pg, port);
    assert_eq!(pg.server_host_uid(), user.uid);
    pg.stop();
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn postgres_user_image_runs_with_a_subid_range() {
    // With many ids mapped (podman's keep-id).
    let user = test_user();
    ensure_subids(&user);
    postgres_user_image_as(&user, "runtime_postgres_user_subids");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn postgres_user_image_runs_without_subids() {
    // One id mapped.
    postgres_user_image_as(&nosub_user(), "runtime_postgres_user");
}

/// nginx logs to `/dev/stdout`, which it reopens: with stdout a socket (as under systemd's
/// journal: ENXIO) or a file the user cannot open (EACCES) the runtime relays it through a
/// pipe, so nginx still starts, serves 200 and its access log arrives.
#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn nginx_logs_when_stdout_is_a_socket_or_a_file_of_roots() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;
    let dir = TestDir::new("runtime_nginx_stdout");
    let user = test_user();
    let bin = binary("nginx");
    let cache = dir.user_dir("cache", &user);
    for case in ["socket", "root-file"] {
        let port = free_port();
        let mut cmd = UserCommand::new(&user, &bin)
            .args(["-e", &format!("NGINX_PORT={port}")])
            .cache_dir(&cache)
            .current_dir(dir.path())
            .command();
        let root_file = dir.join("root-owned.log");
        let mut reader = None;
        match case {
            "socket" => {
                let (ours, theirs) = UnixStream::pair().unwrap();
                cmd.stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
                reader = Some(ours);
            }
            _ => {
                // Created by root, mode 0644: the user may write through the descriptor it
                // was given, but not open the file again.
                let file = fs::File::create(&root_file).unwrap();
                cmd.stdout(Stdio::from(file));
            }
        }
        cmd.stderr(Stdio::from(
            fs::File::create(dir.join(format!("{case}.err"))).unwrap(),
        ));
        let mut child = cmd.spawn().unwrap();
        let proc = wait_for_child_exe(child.id() as i32, &bin, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{case}: the binary did not start"));
        let deadline = Instant::now() + READY_TIMEOUT;
        let response = loop {
            if let Ok(r) = http_get(port, "/") {
                break r;
            }
            let err = fs::read_to_string(dir.join(format!("{case}.err"))).unwrap_or_default();
            assert!(
                child.try_wait().unwrap().is_none(),
                "{case}: nginx exited: {err}"
            );
            assert!(
                Instant::now() < deadline,
                "{case}: nginx did not answer: {err}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(response.status, 200, "{case}");
        assert!(signal(&proc, libc::SIGTERM));
        let status = child.wait().unwrap();
        let log = match reader.take() {
            Some(mut sock) => {
                sock.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut text = String::new();
                let _ = sock.read_to_string(&mut text);
                text
            }
            None => fs::read_to_string(&root_file).unwrap(),
        };
        assert!(
            log.contains("\"GET / HTTP/1.0\" 200"),
            "{case}: no access log line in {log:?}"
        );
        assert!(status.success(), "{case}: nginx exited with {status}");
        let meta = fs::metadata(&root_file);
        if case == "root-file" {
            assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta.unwrap()), 0);
        }
    }
}
