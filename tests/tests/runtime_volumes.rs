//! `docker run` parity of the output binary, run for real as ordinary users (with and
//! without a subordinate id range): bind mounts and their `:ro`, named volumes, kept
//! containers (`--name` without `--rm`), `--tmpfs`, `--ulimit`, `--hostname`, the stop
//! timeout, and unknown options. A volume's host data must survive everything: the
//! workload, a SIGKILL of the runtime mid-write, and cache pruning; a symlink in the image
//! must not redirect a mount.

use oci2bin_tests::built::pack;
use oci2bin_tests::procs::wait_for_child_exe;
use oci2bin_tests::users::{ensure_subids, is_root, nosub_user};
use oci2bin_tests::{
    cargo_oci2bin, free_port, image_source, postgres_query, shared_binary, test_images, test_user,
    user_output, TestDir, TestUser, UserCommand,
};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const E2E: &str = "e2e: needs root and the test images; run with --include-ignored";

fn busybox_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        shared_binary(
            "runtime_volumes",
            "busybox",
            &image_source(&test_images(), "busybox"),
        )
    })
}

/// busybox with symlinks that try to redirect a volume: `/data -> /`, `/up ->
/// ../../../..`, `/pr -> /proc`, and `/victim -> VICTIM`, an absolute path that exists on
/// the host.
fn links_bin(victim: &Path) -> PathBuf {
    let dir = TestDir::new("volumes-links-image");
    let root = dir.join("rootfs");
    oci2bin_tests::arm64::busybox_rootfs(&root, Path::new("/bin/busybox"));
    symlink("/", root.join("data")).unwrap();
    symlink("../../../..", root.join("up")).unwrap();
    symlink("/proc", root.join("pr")).unwrap();
    symlink(victim, root.join("victim")).unwrap();
    let layout = dir.join("layout");
    pack(&root, &layout, "latest", "amd64", &["--cmd", "sh"]);
    let bins = oci2bin_tests::paths::e2e_dir().join("bins");
    let bin = bins.join("runtime_volumes").join("links");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    for d in [&bins, &bins.join("runtime_volumes")] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let source = format!("oci:{}:latest", layout.display());
    let built = oci2bin_tests::build_binary(&source, &bin, &["--force"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    bin
}

fn users() -> Vec<TestUser> {
    let with_range = test_user();
    ensure_subids(&with_range);
    vec![with_range, nosub_user()]
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test's directory, the user's cache in it, and a host directory of the user's to share.
struct Setup {
    dir: TestDir,
    user: TestUser,
    cache: PathBuf,
    host: PathBuf,
}

impl Setup {
    fn new(name: &str, user: &TestUser) -> Setup {
        let dir = TestDir::new(&format!("{name}-{}", user.name));
        let cache = dir.user_dir("cache", user);
        let host = dir.user_dir("host", user);
        Setup {
            dir,
            user: user.clone(),
            cache,
            host,
        }
    }

    fn cmd(&self, bin: &Path, args: &[&str]) -> UserCommand {
        UserCommand::new(&self.user, bin)
            .args(args)
            .cache_dir(&self.cache)
            .current_dir(self.dir.path())
    }

    fn run(&self, args: &[&str]) -> Output {
        user_output(&self.cmd(busybox_bin(), args))
    }

    /// Writes a host file as the user.
    fn host_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.host.join(name);
        fs::write(&path, contents).unwrap();
        std::os::unix::fs::chown(&path, Some(self.user.uid), Some(self.user.gid)).unwrap();
        path
    }

    fn volume(&self, target: &str, opts: &str) -> String {
        format!("{}:{target}{opts}", self.host.display())
    }
}

/// Every file below `dir` with its contents (directories as `<dir>`), to compare trees.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, "<dir>".into());
                stack.push(p);
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned(),
                );
            }
        }
    }
    out
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn bind_mounts_share_files_both_ways_with_the_callers_ownership() {
    assert!(is_root(), "{E2E}");
    for user in users() {
        let s = Setup::new("volumes-rw", &user);
        s.host_file("in.txt", "from the host\n");
        let out = s.run(&[
            "-v",
            &s.volume("/data", ""),
            "sh",
            "-c",
            "cat /data/in.txt && echo from the container > /data/out.txt && mkdir /data/sub",
        ]);
        assert_eq!(stdout(&out), "from the host\n");
        let written = s.host.join("out.txt");
        assert_eq!(
            fs::read_to_string(&written).unwrap(),
            "from the container\n"
        );
        let meta = fs::metadata(&written).unwrap();
        assert_eq!(
            meta.uid(),
            user.uid,
            "{}: a file written inside is the caller's",
            user.name
        );
        assert_eq!(fs::metadata(s.host.join("sub")).unwrap().uid(), user.uid);
        // A single file, and a missing host directory that -v creates (as docker).
        let file = s.host_file("conf", "k=v\n");
        let made = s.host.join("made/by/v");
        let out = s.run(&[
            "-v",
            &format!("{}:/etc/app.conf:ro", file.display()),
            "-v",
            &format!("{}:/made", made.display()),
            "sh",
            "-c",
            "cat /etc/app.conf; touch /made/x",
        ]);
        assert_eq!(stdout(&out), "k=v\n");
        assert!(made.join("x").exists());
        // --mount wants an existing source.
        let out = s.run(&[
            "--mount",
            &format!("type=bind,src={},dst=/m", s.host.join("nope").display()),
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("bind source path does not exist"),
            "{}",
            show(&out)
        );
        assert!(!s.host.join("nope").exists());
        // Relative host paths get docker's message.
        let out = s.run(&["-v", "./host:/data", "true"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(String::from_utf8_lossy(&out.stderr).contains("use absolute path"));
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn read_only_volumes_refuse_writes_and_remounts() {
    assert!(is_root(), "{E2E}");
    for user in users() {
        let s = Setup::new("volumes-ro", &user);
        let file = s.host_file("keep.txt", "precious\n");
        let script = "echo x > /data/new; echo \"write=$?\"; echo y >> /data/keep.txt; \
                      mount -o remount,rw /data; echo \"remount=$?\"; \
                      mount -o remount,bind,rw /data; echo \"bindremount=$?\"; \
                      echo z > /data/new2; echo \"after=$?\"";
        let out = s.run(&["-v", &s.volume("/data", ":ro"), "sh", "-c", script]);
        let text = stdout(&out);
        for probe in ["write", "remount", "bindremount", "after"] {
            assert!(
                !text.contains(&format!("{probe}=0")),
                "{}: {probe} succeeded on a :ro volume: {}",
                user.name,
                show(&out)
            );
        }
        assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
        assert_eq!(fs::read_to_string(&file).unwrap(), "precious\n");
        assert!(!s.host.join("new").exists() && !s.host.join("new2").exists());
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn host_data_survives_a_sigkill_mid_write_and_cache_pruning() {
    assert!(is_root(), "{E2E}");
    let user = test_user();
    ensure_subids(&user);
    let s = Setup::new("volumes-kill", &user);
    for i in 0..20 {
        s.host_file(&format!("f{i}"), &format!("data {i}\n"));
    }
    fs::create_dir(s.host.join("deep")).unwrap();
    std::os::unix::fs::chown(s.host.join("deep"), Some(user.uid), Some(user.gid)).unwrap();
    let before = tree(&s.host);
    let log = s.dir.join("kill.log");
    let mut guard = s
        .cmd(
            busybox_bin(),
            &[
                "-v",
                &s.volume("/data", ""),
                "-v",
                "keep-me:/named",
                "sh",
                "-c",
                "echo named > /named/n; while :; do echo line >> /data/log; done",
            ],
        )
        .spawn(&log)
        .unwrap();
    let bin = wait_for_child_exe(guard.id() as i32, busybox_bin(), Duration::from_secs(30))
        .expect("the binary did not start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(s.host.join("log")).map_or(0, |m| m.len()) < 4096 {
        assert!(
            Instant::now() < deadline,
            "nothing written: {}",
            guard.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the binary's pid.
    unsafe { libc::kill(bin.pid, libc::SIGKILL) };
    guard
        .wait_timeout(Duration::from_secs(10))
        .expect("the runtime did not die");
    std::thread::sleep(Duration::from_millis(300));
    let mut after = tree(&s.host);
    assert!(
        after.remove("log").is_some(),
        "the workload's writes are kept"
    );
    assert_eq!(
        after, before,
        "host data changed after SIGKILL of the runtime"
    );
    // The next run cleans the killed run's leftovers; the volume stays.
    let out = s.run(&["-v", &s.volume("/data", ""), "cat", "/data/f3"]);
    assert_eq!(stdout(&out), "data 3\n");
    let named = s.cache.join("volumes/keep-me/_data/n");
    assert_eq!(fs::read_to_string(&named).unwrap(), "named\n");
    // `cargo oci2bin cache prune --all` for this user's cache never touches volumes.
    let prune = UserCommand::new(&user, cargo_oci2bin())
        .args(["oci2bin", "cache", "prune", "--all"])
        .env("OCI2BIN_CACHE_DIR", &s.cache)
        .current_dir(s.dir.path());
    let out = user_output(&prune);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fs::read_to_string(&named).unwrap(), "named\n");
    let mut again = tree(&s.host);
    again.remove("log");
    assert_eq!(again, before, "host data changed by the cache prune");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn symlinks_in_the_image_cannot_redirect_a_volume() {
    assert!(is_root(), "{E2E}");
    let victim_dir = TestDir::new("volumes-victim");
    let victim = victim_dir.join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("host-file"), "host\n").unwrap();
    let bin = links_bin(&victim);
    for user in users() {
        let s = Setup::new("volumes-links", &user);
        s.host_file("v", "volume\n");
        let before = tree(&s.host);
        for target in ["/data", "/up", "/pr", "/pr/sys"] {
            let out = user_output(&s.cmd(&bin, &["-v", &s.volume(target, ""), "ls", "/"]));
            assert_eq!(out.status.code(), Some(125), "{target}: {}", show(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("container's root") || err.contains("/proc"),
                "{target}: {}",
                show(&out)
            );
        }
        // A link to a host path resolves inside the image: the volume is mounted there, the
        // host directory of that name is neither used nor changed.
        let out = user_output(&s.cmd(
            &bin,
            &[
                "-v",
                &s.volume("/victim", ""),
                "sh",
                "-c",
                "cat /victim/v; ls /victim; echo w > /victim/w",
            ],
        ));
        let text = stdout(&out);
        assert!(
            text.starts_with("volume\n") && !text.contains("host-file"),
            "{}",
            show(&out)
        );
        assert_eq!(fs::read_to_string(s.host.join("w")).unwrap(), "w\n");
        assert_eq!(
            fs::read_dir(&victim).unwrap().count(),
            1,
            "the host path the link names was written"
        );
        let mut after = tree(&s.host);
        after.remove("w");
        assert_eq!(after, before);
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn tmpfs_ulimit_hostname_and_unknown_options() {
    assert!(is_root(), "{E2E}");
    for user in users() {
        let s = Setup::new("volumes-misc", &user);
        let out = s.run(&[
            "--tmpfs",
            "/scratch:size=2m,mode=700",
            "--ulimit",
            "nofile=64:128",
            "-h",
            "web1",
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; ulimit -n; ulimit -Hn; hostname; \
             grep web1 /etc/hosts >/dev/null && echo hosts-ok; \
             dd if=/dev/zero of=/scratch/big bs=1M count=3 2>/dev/null; echo dd=$?",
        ]);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("tmpfs") && lines[0].contains("size=2048k"),
            "{text}"
        );
        assert!(
            lines[0].contains("noexec") && lines[0].contains("nosuid"),
            "{text}"
        );
        assert_eq!(
            &lines[1..],
            ["700", "64", "128", "web1", "hosts-ok", "dd=1"],
            "{text}"
        );
        // Options that are not the runtime's fail before anything runs, naming the option.
        for (args, says) in [
            (
                &["--frobnicate", "true"][..],
                "unknown option '--frobnicate'",
            ),
            (
                &["--network", "none", "true"],
                "'--network' is a `docker run` option",
            ),
            (&["-p", "80:80", "true"], "(--publish)"),
        ] {
            let out = s.run(args);
            assert_eq!(out.status.code(), Some(125), "{args:?}: {}", show(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(says), "{args:?}: {}", show(&out));
            assert!(out.stdout.is_empty());
        }
        // After `--` everything is the container's; `-h` alone is the help.
        assert_eq!(
            stdout(&s.run(&["--", "echo", "--frobnicate"])),
            "--frobnicate\n"
        );
        assert!(stdout(&s.run(&["-h"])).contains("Usage: busybox"));
        // A hard limit above the session's is refused before the start.
        let out = s.run(&["--ulimit", "nofile=1:99999999", "true"]);
        assert_eq!(out.status.code(), Some(125), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--ulimit"));
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn sigterm_stops_like_docker_stop_with_the_timeout() {
    assert!(is_root(), "{E2E}");
    let user = test_user();
    ensure_subids(&user);
    let s = Setup::new("volumes-stop", &user);
    for (timeout, signal, script, code, at_least, at_most) in [
        // The workload ignores the stop signal: SIGKILL after the timeout (exit 137).
        (
            "2",
            "SIGTERM",
            "trap '' TERM; while :; do sleep 1; done",
            137,
            1.8,
            8.0,
        ),
        // A stop signal of the user's choice reaches the workload at once.
        (
            "30",
            "SIGUSR1",
            "trap 'exit 7' USR1; while :; do sleep 0.1; done",
            7,
            0.0,
            5.0,
        ),
    ] {
        let log = s.dir.join(format!("stop-{signal}.log"));
        let mut guard = s
            .cmd(
                busybox_bin(),
                &[
                    "--stop-timeout",
                    timeout,
                    "--stop-signal",
                    signal,
                    "sh",
                    "-c",
                    script,
                ],
            )
            .spawn(&log)
            .unwrap();
        let bin = wait_for_child_exe(guard.id() as i32, busybox_bin(), Duration::from_secs(30))
            .expect("the binary did not start");
        std::thread::sleep(Duration::from_millis(500));
        let start = Instant::now();
        // SAFETY: kill(2) on the binary's pid.
        unsafe { libc::kill(bin.pid, libc::SIGTERM) };
        let status = guard
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{signal}: still running 20 s after SIGTERM"));
        let took = start.elapsed().as_secs_f64();
        assert_eq!(status.code(), Some(code), "{signal}: {}", guard.log());
        assert!(
            took >= at_least && took <= at_most,
            "{signal}: stopped after {took:.1} s"
        );
    }
}

/// Runs the postgres image as `s.user` with `args` until `select` answers, runs `sql`,
/// stops it with SIGTERM, and returns the rows.
fn postgres_session(s: &Setup, bin: &Path, args: &[&str], sql: &str) -> Vec<Vec<Option<String>>> {
    let port = free_port();
    let mut all = vec!["-e".to_string(), format!("PGPORT={port}")];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let log = s.dir.join(format!("pg-{port}.log"));
    fs::write(&log, "").unwrap();
    std::os::unix::fs::chown(&log, Some(s.user.uid), Some(s.user.gid)).unwrap();
    let mut guard = s.cmd(bin, &all).spawn(&log).unwrap();
    let bin_proc = wait_for_child_exe(guard.id() as i32, bin, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("postgres did not start: {}", guard.log()));
    let deadline = Instant::now() + Duration::from_secs(180);
    let rows = loop {
        match postgres_query(port, "postgres", sql) {
            Ok(rows) => break rows,
            Err(e) => {
                assert!(
                    guard.try_status().is_none(),
                    "postgres exited ({e}): {}",
                    guard.log()
                );
                assert!(
                    Instant::now() < deadline,
                    "postgres did not answer ({e}): {}",
                    guard.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    // SAFETY: kill(2) on the binary's pid.
    unsafe { libc::kill(bin_proc.pid, libc::SIGTERM) };
    let status = guard
        .wait_timeout(Duration::from_secs(60))
        .expect("postgres did not stop");
    assert!(
        status.success(),
        "postgres did not stop cleanly: {}",
        guard.log()
    );
    rows
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn postgres_keeps_its_data_in_a_named_volume_and_in_a_kept_container() {
    assert!(is_root(), "{E2E}");
    let user = test_user();
    ensure_subids(&user);
    let bin = shared_binary(
        "runtime_volumes",
        "postgres",
        &image_source(&test_images(), "postgres"),
    );
    let s = Setup::new("volumes-pg", &user);
    let create = "create table t (x int); insert into t values (42); select count(*) from t";
    let select = "select x from t";
    let volume = ["-v", "pgdata:/var/lib/postgresql/data"];
    assert_eq!(
        postgres_session(&s, &bin, &volume, create),
        [[Some("1".into())]]
    );
    assert_eq!(
        postgres_session(&s, &bin, &volume, select),
        [[Some("42".into())]]
    );
    // Without the volume, the default --rm run starts from the image again.
    let tables = "select count(*) from pg_tables where tablename = 't'";
    assert_eq!(
        postgres_session(&s, &bin, &[], tables),
        [[Some("0".into())]]
    );
    // A kept container: the writable layer stays between runs with the same --name.
    let name = ["--name", "db1"];
    assert_eq!(
        postgres_session(&s, &bin, &name, create),
        [[Some("1".into())]]
    );
    assert_eq!(
        postgres_session(&s, &bin, &name, select),
        [[Some("42".into())]]
    );
    assert!(s.cache.join("containers/db1/upper").is_dir());
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn cache_and_prune_through_the_binary_leave_volumes_alone() {
    assert!(is_root(), "{E2E}");
    let user = test_user();
    ensure_subids(&user);
    let s = Setup::new("volumes-prune", &user);
    // A kept container whose layer holds a file of a container user (a subordinate id).
    let out = s.run(&[
        "--name",
        "kept",
        "-v",
        "vol1:/v",
        "sh",
        "-c",
        "echo data > /v/f; mkdir /owned && echo x > /owned/f && chown -R 1000:1000 /owned",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&s.run(&["--cache"]));
    assert!(text.contains(&s.cache.display().to_string()), "{text}");
    for part in ["this image:", "images", "runs", "containers", "volumes"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let images = || fs::read_dir(s.cache.join("images")).unwrap().count();
    assert!(images() > 0);
    let text = stdout(&s.run(&["--prune"]));
    assert!(text.contains("removed"), "{text}");
    assert!(
        fs::read_dir(s.cache.join("images"))
            .unwrap()
            .flatten()
            .all(|e| !e.file_type().unwrap().is_dir()),
        "the image's root is still there"
    );
    assert!(
        s.cache.join("containers/kept/upper").is_dir(),
        "kept without --volumes"
    );
    let text = stdout(&s.run(&["--prune", "--volumes"]));
    assert!(text.contains("kept container"), "{text}");
    assert!(!s.cache.join("containers/kept").exists());
    // The next run unpacks again and frees what only the user namespace could remove.
    assert_eq!(stdout(&s.run(&["echo", "again"])), "again\n");
    let out = s.run(&["-v", "vol1:/v", "cat", "/v/f"]);
    assert_eq!(
        stdout(&out),
        "data\n",
        "the named volume survived --prune --volumes"
    );
    let runs: Vec<_> = fs::read_dir(s.cache.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        runs.is_empty(),
        "left in runs/: {:?}",
        runs.iter().map(|e| e.file_name()).collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn detached_redis_is_listed_logged_and_stopped_through_the_binary() {
    assert!(is_root(), "{E2E}");
    let user = test_user();
    ensure_subids(&user);
    let bin = shared_binary(
        "runtime_volumes",
        "redis",
        &image_source(&test_images(), "redis"),
    );
    let s = Setup::new("volumes-detach", &user);
    let port = free_port();
    let p = port.to_string();
    let start = Instant::now();
    let out = user_output(&s.cmd(
        &bin,
        &[
            "-d",
            "--name",
            "cache1",
            "--",
            "--port",
            &p,
            "--protected-mode",
            "no",
        ],
    ));
    assert_eq!(stdout(&out), "cache1\n");
    // If an assertion below fails, the background container must not outlive the test.
    struct StopOnDrop<'a>(&'a Setup, &'a Path);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            let stop = ["--stop", "cache1", "--stop-timeout", "5"];
            let _ = user_output(&self.0.cmd(self.1, &stop));
        }
    }
    let _guard = StopOnDrop(&s, &bin);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "-d waited for the container"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while oci2bin_tests::redis_ping(port).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis did not answer: {}",
            show(&user_output(&s.cmd(&bin, &["--logs", "cache1"])))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // --ps shows it running, with the runtime's pid.
    let table = stdout(&user_output(&s.cmd(&bin, &["--ps"])));
    let row = table
        .lines()
        .find(|l| l.starts_with("cache1 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("running") && row.contains("docker-entrypoint.sh --port"),
        "{table}"
    );
    let json = stdout(&user_output(&s.cmd(&bin, &["--ps", "--json"])));
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pid = list[0]["pid"].as_i64().unwrap_or_else(|| panic!("{json}")) as i32;
    let procs = {
        let mut all = oci2bin_tests::procs::descendants(pid);
        all.push(
            oci2bin_tests::procs::stat(pid)
                .map(|st| oci2bin_tests::procs::ProcId {
                    pid,
                    start_time: st.start_time,
                })
                .unwrap(),
        );
        all
    };
    // A second start under the same name is refused while it runs.
    let again = user_output(&s.cmd(&bin, &["-d", "--name", "cache1", "--", "--port", "1"]));
    assert_eq!(again.status.code(), Some(125), "{}", show(&again));
    // The log has redis's start-up lines; --tail limits them.
    let logs = stdout(&user_output(&s.cmd(&bin, &["--logs", "cache1"])));
    assert!(logs.contains("Ready to accept connections"), "{logs}");
    let tail = stdout(&user_output(
        &s.cmd(&bin, &["--logs", "cache1", "--tail", "1"]),
    ));
    assert_eq!(tail.lines().count(), 1, "{tail}");
    // --stop: redis shuts down on SIGTERM, the exit is recorded, nothing is left.
    let out = user_output(&s.cmd(&bin, &["--stop", "cache1"]));
    assert_eq!(stdout(&out), "cache1\n");
    assert!(oci2bin_tests::redis_ping(port).is_err());
    let left = oci2bin_tests::procs::wait_all_gone(&procs, Duration::from_secs(5));
    assert!(left.is_empty(), "processes left: {left:?}");
    let table = stdout(&user_output(&s.cmd(&bin, &["--ps"])));
    assert!(table.contains("exited (0)"), "{table}");
    let logs = stdout(&user_output(&s.cmd(&bin, &["--logs", "cache1"])));
    assert!(logs.contains("ready to exit, bye bye"), "{logs}");
    // --rm-container forgets it: its background state and its kept layer (--name, no --rm).
    assert!(s.cache.join("containers/cache1/upper").is_dir());
    let out = stdout(&user_output(&s.cmd(&bin, &["--rm-container", "cache1"])));
    assert!(
        out.contains("removed the kept container") && out.ends_with("cache1\n"),
        "{out}"
    );
    assert!(!s.cache.join("containers/cache1").exists());
    assert!(!stdout(&user_output(&s.cmd(&bin, &["--ps"]))).contains("cache1"));
    let gone = user_output(&s.cmd(&bin, &["--logs", "cache1"]));
    assert_eq!(gone.status.code(), Some(125), "{}", show(&gone));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no container named cache1"));
}
