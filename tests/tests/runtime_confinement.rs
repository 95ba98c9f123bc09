//! The container is at least as confined as rootless podman's defaults: every attack of the
//! confinement issue is run for real, from inside an output binary run as an ordinary user
//! (with and without a subordinate id range) and as root, and must fail.
//!
//! The probes are `tests/attack/attack.c` in the `attack` test image (busybox plus the
//! probe program): each prints `PROBE: denied ERRNO (...)` when the attack was refused and
//! `PROBE: ok` when it worked.

use oci2bin_tests::procs::wait_for_child_exe;
use oci2bin_tests::timed::output_within;
use oci2bin_tests::users::{ensure_subids, is_root, nosub_user};
use oci2bin_tests::{
    image_source, shared_binary, test_images, test_user, user_output, CacheState, TestDir,
    TestUser, UserCommand,
};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The attack image's binary, built once for this file.
fn attack_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        shared_binary(
            "runtime_confinement",
            "attack",
            &image_source(&test_images(), "attack"),
        )
    })
}

/// The two kinds of ordinary user: with a subordinate range (the container has many ids,
/// root inside) and without (only the caller's id is mapped).
fn users() -> Vec<TestUser> {
    let with_range = test_user();
    ensure_subids(&with_range);
    vec![with_range, nosub_user()]
}

/// A test's scratch directory and a cache of the user's.
struct Setup {
    dir: TestDir,
    user: TestUser,
    cache: PathBuf,
}

impl Setup {
    fn new(name: &str, user: &TestUser) -> Setup {
        let dir = TestDir::new(&format!("{name}-{}", user.name));
        let cache = dir.user_dir("cache", user);
        Setup {
            dir,
            user: user.clone(),
            cache,
        }
    }

    /// The attack binary with `args`, as the user, in the scratch directory.
    fn cmd(&self, args: &[&str]) -> UserCommand {
        UserCommand::new(&self.user, attack_bin())
            .args(args)
            .cache_dir(&self.cache)
            .current_dir(self.dir.path())
    }

    fn run(&self, args: &[&str]) -> Output {
        user_output(&self.cmd(args))
    }

    /// `sh -c SCRIPT` on the host, as the user, with `$BIN` the attack binary.
    fn host_sh(&self, script: &str) -> Output {
        let cmd = UserCommand::new(&self.user, "/bin/sh")
            .args(["-c", script])
            .env("BIN", attack_bin())
            .cache_dir(&self.cache)
            .current_dir(self.dir.path());
        user_output(&cmd)
    }

    /// The probe `args` run with the runtime `options` before the container's command.
    fn probe(&self, options: &[&str], args: &[&str]) -> Output {
        let mut all: Vec<&str> = options.to_vec();
        all.push("attack");
        all.extend(args);
        self.run(&all)
    }
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that the probe ran and reported the attack refused.
fn assert_denied(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(0) && stdout.contains(": denied "),
        "{what}: the attack was not refused: {}",
        show(out)
    );
}

/// Asserts that the probe ran and the operation worked (a control for a denial).
fn assert_allowed(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(1) && stdout.contains(": ok"),
        "{what}: expected the operation to work: {}",
        show(out)
    );
}

/// The `Key:\tvalue` lines of `attack status` (the workload's `/proc/self/status`).
fn status_fields(out: &Output) -> BTreeMap<String, String> {
    assert!(out.status.success(), "attack status failed: {}", show(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `attack status` under rootless podman, as `user` (who needs a subordinate range), from
/// the same image layout.
fn podman_status(user: &TestUser) -> BTreeMap<String, String> {
    let runtime_dir = format!("/tmp/oci2bin-podman-{}", user.uid);
    let layout = test_images().join("attack");
    let script = format!(
        "mkdir -p {runtime_dir} && chmod 700 {runtime_dir} && podman run --rm --net=host oci:{}:latest attack status",
        layout.display()
    );
    let cmd = UserCommand::new(user, "/bin/sh")
        .args(["-c", &script])
        .env("XDG_RUNTIME_DIR", &runtime_dir);
    let out = output_within(cmd.command(), Duration::from_secs(180));
    status_fields(&out)
}

#[test]
#[ignore = "e2e: needs root, podman and the test images; run with --include-ignored"]
fn workload_status_matches_rootless_podman_field_by_field() {
    let with_range = test_user();
    ensure_subids(&with_range);
    let podman = podman_status(&with_range);
    assert_eq!(
        podman["CapBnd"], "00000000800405fb",
        "podman's own defaults changed"
    );
    for user in users() {
        let setup = Setup::new("confine_status", &user);
        let ours = status_fields(&setup.probe(&[], &["status"]));
        for field in [
            "CapBnd",
            "CapEff",
            "CapPrm",
            "CapInh",
            "CapAmb",
            "Seccomp",
            "NoNewPrivs",
        ] {
            assert_eq!(
                ours[field], podman[field],
                "{field} as {} differs from rootless podman's",
                user.name
            );
        }
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn the_init_is_closed_to_the_workload() {
    for user in users() {
        let setup = Setup::new("confine_init", &user);
        for probe in ["ptrace1", "mem1", "environ1", "fd1"] {
            assert_denied(&setup.probe(&[], &[probe]), probe);
        }
        // /proc/1/exe must not be a route to the user's own copy of the binary.
        let before = fs::metadata(attack_bin()).unwrap().mode();
        assert_denied(&setup.probe(&[], &["chmod-exe1"]), "chmod-exe1");
        assert_eq!(fs::metadata(attack_bin()).unwrap().mode(), before);
        // A directory the caller passed as fd 3 is not reachable through the init.
        let host_dir = setup.dir.user_dir("passed", &user);
        let out = setup.host_sh(&format!(
            "exec 3<{}; \"$BIN\" attack fdwrite1",
            host_dir.display()
        ));
        assert_denied(&out, "fdwrite1");
        assert_eq!(
            fs::read_dir(&host_dir).unwrap().count(),
            0,
            "a file appeared"
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn kill_0_inside_does_not_reach_the_callers_process_group() {
    for user in users() {
        let setup = Setup::new("confine_pgrp", &user);
        let out = setup.host_sh("\"$BIN\" attack kill-pgrp; echo caller-survived");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("caller-survived"),
            "the caller's shell was signalled: {}",
            show(&out)
        );
    }
}

/// Runs `script` under `script(1)`, so that stdin and stdout are a terminal, as the user.
fn on_a_terminal(setup: &Setup, command: &str) -> Output {
    let inner = format!("\"$BIN\" {command}");
    let cmd = UserCommand::new(&setup.user, "/usr/bin/script")
        .args(["-qec", &inner, "/dev/null"])
        .env("BIN", attack_bin())
        .cache_dir(&setup.cache)
        .current_dir(setup.dir.path());
    user_output(&cmd)
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn terminal_injection_into_the_callers_terminal_is_refused() {
    for user in users() {
        let setup = Setup::new("confine_tty", &user);
        // Without a terminal of its own the workload has no controlling terminal: even
        // with seccomp off, TIOCSTI on the caller's terminal is refused by the kernel.
        let out = on_a_terminal(
            &setup,
            "--no-tty --security-opt seccomp=unconfined attack tiocsti",
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("tiocsti: denied"),
            "{}",
            show(&out)
        );
        // With its own pty (the default on a terminal) the filter refuses TIOCSTI too.
        let out = on_a_terminal(&setup, "attack tiocsti");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("tiocsti: denied"),
            "{}",
            show(&out)
        );
        // That pty is the container's own.
        let out = on_a_terminal(&setup, "tty");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
            "{}",
            show(&out)
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn namespaces_mounts_and_risky_kernel_interfaces_are_denied() {
    let probes = [
        "mount-tmpfs",
        "remount-sys-rw",
        "unshare-user",
        "unshare-net",
        "unshare-mnt",
        "clone-newuser",
        "clone3-newuser",
        "io_uring",
        "add-key",
        "bpf",
        "perf",
        "userfaultfd",
        "raw-socket",
    ];
    for user in users() {
        let setup = Setup::new("confine_syscalls", &user);
        for probe in probes {
            assert_denied(&setup.probe(&[], &[probe]), probe);
        }
        // Unknown syscalls get ENOSYS, so that new C libraries fall back.
        let out = setup.probe(&[], &["syscall", "1000"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("denied ENOSYS"),
            "{}",
            show(&out)
        );
        // Controls: seccomp=unconfined lets the same user create a user namespace, and
        // --privileged keeps the mount denial only as far as the user namespace goes.
        let out = setup.probe(&["--security-opt", "seccomp=unconfined"], &["unshare-user"]);
        assert_allowed(&out, "unshare-user with seccomp=unconfined");
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn the_callers_session_keyring_is_out_of_reach() {
    for user in users() {
        let setup = Setup::new("confine_keys", &user);
        // The host copy of the probe program plants a key in the caller's session keyring;
        // the container then tries to read it back.
        let rootfs = {
            let out = setup.run(&["true"]);
            assert!(out.status.success(), "{}", show(&out));
            CacheState::read(&setup.cache).single_rootfs(&setup.cache)
        };
        let host_probe = setup.dir.join("host-attack");
        fs::copy(rootfs.join("usr/local/bin/attack"), &host_probe).unwrap();
        fs::set_permissions(&host_probe, fs::Permissions::from_mode(0o755)).unwrap();
        let out = setup.host_sh(&format!(
            "{} add-key >/dev/null; {} keyctl-read oci2bin-planted >/dev/null; [ $? = 1 ] || exit 9; \"$BIN\" attack keyctl-read oci2bin-planted",
            host_probe.display(),
            host_probe.display()
        ));
        assert_denied(&out, "keyctl-read of the caller's key");
        assert_denied(&setup.probe(&[], &["add-key"]), "add-key");
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn kernel_paths_are_masked_and_read_only() {
    for user in users() {
        let setup = Setup::new("confine_paths", &user);
        for path in [
            "/proc/keys",
            "/proc/timer_list",
            "/sys/firmware",
            "/proc/kcore",
        ] {
            assert_denied(&setup.probe(&[], &["read-masked", path]), path);
        }
        // Read-only (EROFS) where the owner check would pass (see the root caller's test).
        let out = setup.probe(&[], &["sysctl-write", "/proc/sys/kernel/hostname"]);
        assert_denied(&out, "a host sysctl");
        // --privileged lifts the masks (podman's meaning), but not the user namespace.
        let out = setup.probe(&["--privileged"], &["read-masked", "/proc/keys"]);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("ENODATA"),
            "still masked under --privileged: {}",
            show(&out)
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn run_by_root_the_container_cannot_write_host_sysctls() {
    assert!(is_root(), "this test runs the binary as root");
    let dir = TestDir::new("confine_root");
    let cache = dir.join("cache");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(attack_bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("OCI2BIN_CACHE_DIR", &cache)
            .current_dir(dir.path());
        output_within(cmd, Duration::from_secs(60))
    };
    let before = fs::read("/proc/sys/kernel/core_pattern").unwrap();
    let out = run(&["attack", "core-pattern"]);
    assert_denied(&out, "core_pattern as root");
    assert_eq!(fs::read("/proc/sys/kernel/core_pattern").unwrap(), before);
    let status = status_fields(&run(&["attack", "status"]));
    assert_eq!(status["CapBnd"], "00000000800405fb");
    assert_eq!(status["Seccomp"], "2");
    let out = run(&["--debug", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("confinement: capabilities"),
        "{}",
        show(&out)
    );
}

/// `Shmem:` of `/proc/meminfo` in kB, from a line of the workload's output.
fn shmem_kb(line: &str) -> u64 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn writes_into_the_root_go_to_disk_not_ram_and_are_removed() {
    let user = test_user();
    ensure_subids(&user);
    let setup = Setup::new("confine_disk", &user);
    let out = setup.run(&[
        "sh",
        "-c",
        "grep Shmem: /proc/meminfo; dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null; sync; grep Shmem: /proc/meminfo",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Shmem:")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let grown = shmem_kb(lines[1]).saturating_sub(shmem_kb(lines[0]));
    assert!(
        grown < 100 << 10,
        "Shmem grew by {grown} kB for a 300 MB write"
    );
    // The run's directory is gone afterwards.
    let runs = setup.cache.join("runs");
    let left: Vec<_> = fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", runs.display());
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn read_only_root_refuses_writes_with_erofs() {
    for user in users() {
        let setup = Setup::new("confine_ro", &user);
        let out = setup.probe(&["--read-only"], &["write", "/etc/x"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("denied EROFS"),
            "{}",
            show(&out)
        );
        for writable in ["/tmp/x", "/run/x", "/var/tmp/x"] {
            assert_allowed(
                &setup.probe(&["--read-only"], &["write", writable]),
                writable,
            );
        }
        // The root cannot be remounted writable from inside either.
        let out = setup.run(&[
            "--read-only",
            "sh",
            "-c",
            "mount -o remount,rw / && echo remounted",
        ]);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("remounted"),
            "{}",
            show(&out)
        );
        assert_allowed(
            &setup.probe(&[], &["write", "/etc/x"]),
            "a writable root by default",
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn capabilities_follow_cap_add_and_cap_drop() {
    for user in users() {
        let setup = Setup::new("confine_caps", &user);
        let status = status_fields(&setup.probe(&["--cap-drop", "ALL"], &["status"]));
        assert_eq!(status["CapBnd"], "0000000000000000");
        assert_eq!(status["CapEff"], "0000000000000000");
        assert_denied(
            &setup.probe(&["--cap-drop", "ALL"], &["raw-socket"]),
            "raw socket",
        );
        // chown works by default (CAP_CHOWN) and not without it.
        let chown = "touch /f && chown 1:1 /f && echo chowned";
        let out = setup.run(&["sh", "-c", chown]);
        let ranged = user.name == test_user().name;
        if ranged {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("chowned"),
                "{}",
                show(&out)
            );
        }
        let out = setup.run(&["--cap-drop", "chown", "sh", "-c", chown]);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("chowned"),
            "{}",
            show(&out)
        );
        let status = status_fields(&setup.probe(&["--cap-add", "SYS_ADMIN"], &["status"]));
        let bnd = u64::from_str_radix(&status["CapBnd"], 16).unwrap();
        assert_eq!(bnd, 0x8004_05fb | 1 << 21, "CAP_SYS_ADMIN is bit 21");
        let out = setup.run(&["--cap-add", "NOPE", "true"]);
        assert_eq!(out.status.code(), Some(125), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("NOPE"),
            "{}",
            show(&out)
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn a_seccomp_profile_in_dockers_format_is_honoured() {
    let user = nosub_user();
    let setup = Setup::new("confine_profile", &user);
    let profile = setup.dir.join("deny-mkdir.json");
    fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    fs::set_permissions(&profile, fs::Permissions::from_mode(0o644)).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = setup.run(&["--security-opt", &opt, "mkdir", "/newdir"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        show(&out)
    );
    let out = setup.run(&["mkdir", "/newdir"]);
    assert!(out.status.success(), "{}", show(&out));
    // unconfined: no filter at all; no-new-privileges sets the flag.
    let status =
        status_fields(&setup.probe(&["--security-opt", "seccomp=unconfined"], &["status"]));
    assert_eq!(status["Seccomp"], "0");
    let status = status_fields(&setup.probe(&["--security-opt", "no-new-privileges"], &["status"]));
    assert_eq!(status["NoNewPrivs"], "1");
    // A broken profile is refused before anything runs.
    fs::write(&profile, "{\"defaultAction\": \"SCMP_ACT_NOPE\"}").unwrap();
    let out = setup.run(&["--security-opt", &opt, "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SCMP_ACT_NOPE"),
        "{}",
        show(&out)
    );
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn a_cache_others_can_write_is_refused_and_planted_files_are_not_used() {
    let user = nosub_user();
    let setup = Setup::new("confine_cache", &user);
    // Shared and world-writable: refused with the reason, nothing run.
    fs::set_permissions(&setup.cache, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = setup.run(&["echo", "ran"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lets others write"),
        "{}",
        show(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
    // Someone else's directory: refused.
    let other = setup.dir.join("others");
    fs::create_dir(&other).unwrap();
    let out = user_output(&setup.cmd(&["true"]).cache_dir(&other));
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("belongs to uid 0"),
        "{}",
        show(&out)
    );
    // A planted lock symlink is not written through.
    fs::set_permissions(&setup.cache, fs::Permissions::from_mode(0o700)).unwrap();
    let first = setup.run(&["true"]);
    assert!(first.status.success(), "{}", show(&first));
    let state = CacheState::read(&setup.cache);
    let rootfs = state.single_rootfs(&setup.cache);
    let entry = rootfs.parent().unwrap().to_path_buf();
    let hex = entry.file_name().unwrap().to_str().unwrap().to_string();
    let victim = setup.dir.join("victim");
    fs::write(&victim, "precious").unwrap();
    let lock = setup.cache.join("images").join(format!("{hex}.lock"));
    let _ = fs::remove_file(&lock);
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    // Force an unpack: move the entry away.
    fs::rename(&entry, setup.cache.join("images").join("moved")).unwrap();
    let out = setup.run(&["true"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn a_killed_run_is_cleaned_up_by_the_next_run() {
    let user = test_user();
    ensure_subids(&user);
    let setup = Setup::new("confine_killed", &user);
    let mut runner = setup
        .cmd(&["sh", "-c", "mkdir -p /var/lib/db && dd if=/dev/zero of=/var/lib/db/f bs=1M count=5 2>/dev/null && chown -R 1000:1000 /var/lib/db && sleep 60"])
        .spawn(&setup.dir.join("killed.log"))
        .unwrap();
    let runtime = wait_for_child_exe(runner.id() as i32, attack_bin(), Duration::from_secs(20))
        .expect("the runtime started");
    let runs = setup.cache.join("runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no run directory appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    oci2bin_tests::procs::signal(&runtime, libc::SIGKILL);
    runner
        .wait_timeout(Duration::from_secs(20))
        .expect("the runtime ended");
    assert!(
        fs::read_dir(&runs).unwrap().count() >= 2,
        "the killed run left nothing to clean"
    );
    let out = setup.run(&["true"]);
    assert!(out.status.success(), "{}", show(&out));
    let left: Vec<_> = fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", runs.display());
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn a_newuidmap_planted_in_the_current_directory_never_runs() {
    let user = test_user();
    ensure_subids(&user);
    let setup = Setup::new("confine_path", &user);
    let cwd = setup.dir.user_dir("cwd", &user);
    let marker = cwd.join("planted-ran");
    for helper in ["newuidmap", "newgidmap"] {
        let path = cwd.join(helper);
        fs::write(
            &path,
            format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = user_output(
        &setup
            .cmd(&["echo", "hi"])
            .env("PATH", ":/usr/bin:/bin")
            .current_dir(&cwd),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(!marker.exists(), "the planted helper ran");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn the_runtime_with_its_seccomp_filter_stays_within_1_mib() {
    // The x86_64 + zstd runtime, as attached in front of every payload (polyglot header
    // and alignment included).
    let info = oci2bin_tests::built::inspect_json(attack_bin());
    let size = info["runtime_size"]
        .as_u64()
        .expect("inspect reports runtime_size");
    assert!(
        size <= 1 << 20,
        "the runtime is {size} bytes, over the 1 MiB budget"
    );
}
