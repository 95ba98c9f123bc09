//! The workload's process as `docker run --rm` would run it: exit codes, signals, a
//! throwaway root, and the options `-e`, `--env-file`, `-w`, `-u`, `--entrypoint`, `--help`,
//! with arguments passed through verbatim and nothing of the host's environment but `TERM`.
//!
//! Every test runs the busybox test image's binary as the unprivileged test user, each with
//! its own cache directory.

use oci2bin_rt::payload::Payload;
use oci2bin_tests::oci_layout::{manifests_for_tag, read_config};
use oci2bin_tests::procs::{cmdline, descendants, wait_all_gone, wait_for_child_exe};
use oci2bin_tests::{
    image_source, shared_binary, test_images, test_user, user_output, CacheState, TestDir,
    TestUser, UserCommand,
};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The busybox binary, built once for this file.
fn busybox() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        shared_binary(
            "runtime_process",
            "busybox",
            &image_source(&test_images(), "busybox"),
        )
    })
}

/// A test's scratch directory, user and cache.
struct Setup {
    dir: TestDir,
    user: TestUser,
    cache: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = TestDir::new(name);
        let user = test_user();
        let cache = dir.user_dir("cache", &user);
        Setup { dir, user, cache }
    }

    /// The binary with `args`, as the user, in the scratch directory, with the cache set.
    fn cmd<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> UserCommand {
        UserCommand::new(&self.user, busybox())
            .args(args)
            .cache_dir(&self.cache)
            .current_dir(self.dir.path())
    }

    fn run<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Output {
        user_output(&self.cmd(args))
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "the run failed: {}", show(&out));
    stdout(&out)
}

/// `env` output as a map.
fn env_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The image config's `Env` as a map.
fn image_env() -> BTreeMap<String, String> {
    let config = read_config(&test_images().join("busybox"), "latest");
    config["config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn exit_codes_come_through() {
    let s = Setup::new("runtime_exit_codes");
    for code in [0, 1, 42, 255] {
        let out = s.run(["sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code), "exit {code}: {}", show(&out));
    }
    // A workload killed by a signal gives 128 + N, as in docker.
    for (signal, code) in [("TERM", 143), ("KILL", 137)] {
        let out = s.run(["sh", "-c", &format!("kill -{signal} $$")]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "kill -{signal}: {}",
            show(&out)
        );
    }
    // docker's codes for a command that cannot be found or executed.
    let out = s.run(["no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-command"),
        "{}",
        show(&out)
    );
    let out = s.run(["/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", show(&out));
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn sigterm_to_the_binary_stops_the_workload() {
    let s = Setup::new("runtime_sigterm");
    let log = s.dir.join("log");
    let mut guard = s.cmd(["sleep", "1000"]).spawn(&log).unwrap();
    // The binary is the child of runuser; signal it alone, as `kill PID` would.
    let bin = wait_for_child_exe(guard.id() as i32, busybox(), Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the binary did not start: {}", guard.log()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let tree = loop {
        let tree = descendants(bin.pid);
        if tree.iter().any(|p| cmdline(p.pid) == "sleep 1000") {
            break tree;
        }
        assert!(
            Instant::now() < deadline && guard.try_status().is_none(),
            "`sleep 1000` did not start: {}",
            guard.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let sent = Instant::now();
    assert!(oci2bin_tests::procs::signal(&bin, libc::SIGTERM));
    let status = guard.wait_timeout(Duration::from_secs(2));
    let took = sent.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the binary still runs {took:?} after SIGTERM: {}",
            guard.log()
        )
    });
    assert_eq!(status.code(), Some(143), "{}", guard.log());
    let left = wait_all_gone(&tree, Duration::from_secs(2));
    assert!(left.is_empty(), "container processes survive: {left:?}");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn writes_vanish_with_the_run() {
    let s = Setup::new("runtime_throwaway");
    let out = ok(s.run([
        "sh",
        "-c",
        "echo one > /marker && echo two > /etc/marker && rm /bin/ls && cat /marker",
    ]));
    assert_eq!(out, "one\n");
    let out = ok(s.run([
        "sh",
        "-c",
        "for f in /marker /etc/marker; do test -e $f && echo $f; done; test -e /bin/ls && echo ls-back",
    ]));
    assert_eq!(
        out, "ls-back\n",
        "a write of the first run is visible in the second"
    );
    // Nor did the writes reach the cached root.
    let rootfs = CacheState::read(&s.cache).single_rootfs(&s.cache);
    assert!(!rootfs.join("marker").exists());
    assert!(!rootfs.join("etc/marker").exists());
    assert!(rootfs.join("bin/ls").symlink_metadata().is_ok());
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn env_options_behave_like_docker() {
    let s = Setup::new("runtime_env");
    let env_file = s.dir.join("vars.env");
    fs::write(
        &env_file,
        "# a comment\n\n  FILE_VAR=from the file = verbatim  \nFILE_COPY\nFILE_UNSET\nOVER=file\n",
    )
    .unwrap();
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o644)).unwrap();
    let out = ok(user_output(
        &s.cmd([
            "--env-file".as_ref(),
            env_file.as_os_str(),
            "-e".as_ref(),
            "A=1".as_ref(),
            "--env=EMPTY=".as_ref(),
            "-e".as_ref(),
            "FROM_HOST".as_ref(),
            "-e".as_ref(),
            "NOT_ON_HOST".as_ref(),
            "-e".as_ref(),
            "OVER=cli".as_ref(),
            "-e".as_ref(),
            "PATH=/bin:/usr/bin".as_ref(),
            "env".as_ref(),
        ])
        .env("FROM_HOST", "host value")
        .env("FILE_COPY", "copied"),
    ));
    let env = env_map(&out);
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("A"), Some("1"), "{out}");
    assert_eq!(get("EMPTY"), Some(""), "{out}");
    assert_eq!(get("FROM_HOST"), Some("host value"), "{out}");
    assert_eq!(
        get("NOT_ON_HOST"),
        None,
        "-e KEY of an unset variable is skipped: {out}"
    );
    assert_eq!(get("FILE_VAR"), Some("from the file = verbatim  "), "{out}");
    assert_eq!(get("FILE_COPY"), Some("copied"), "{out}");
    assert_eq!(get("FILE_UNSET"), None, "{out}");
    assert_eq!(get("OVER"), Some("cli"), "-e wins over --env-file: {out}");
    assert_eq!(
        get("PATH"),
        Some("/bin:/usr/bin"),
        "-e replaces the image's PATH: {out}"
    );

    // Malformed values are refused before anything runs.
    for bad in [&["-e", "=x", "true"][..], &["-e", "A B=1", "true"][..]] {
        let out = s.run(bad);
        assert_eq!(out.status.code(), Some(125), "{bad:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid environment variable"),
            "{bad:?}: {}",
            show(&out)
        );
    }
    let out = s.run(["--env-file", "/nonexistent/vars.env", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/vars.env"),
        "{}",
        show(&out)
    );
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn host_environment_does_not_leak() {
    let s = Setup::new("runtime_env_leak");
    let mut want: BTreeMap<String, String> = image_env();
    let out = ok(user_output(
        &s.cmd(["env"])
            .env("SECRET_TOKEN", "do-not-leak")
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-oci2bin-test"),
    ));
    let got = env_map(&out);
    want.insert("TERM".into(), "xterm-oci2bin-test".into());
    // docker also sets HOSTNAME (the container's) and HOME (the user's, from the image).
    let hostname = got.get("HOSTNAME").cloned().unwrap_or_default();
    assert!(!hostname.is_empty(), "no HOSTNAME: {out}");
    assert_ne!(
        hostname,
        fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "the host's name leaked"
    );
    want.insert("HOSTNAME".into(), hostname);
    // root's home in the image's own /etc/passwd (the default user is root).
    let rootfs = CacheState::read(&s.cache).single_rootfs(&s.cache);
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    let home = passwd
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .and_then(|rest| rest.split(':').nth(4))
        .expect("root in the image's /etc/passwd");
    want.insert("HOME".into(), home.into());
    assert_eq!(got, want, "the container's environment: {out}");

    // Without TERM on the host there is none inside.
    let got = env_map(&ok(s.run(["env"])));
    assert!(!got.contains_key("TERM"), "{got:?}");
    // The user's PATH (the harness sets one) did not replace the image's.
    assert_eq!(got.get("PATH"), image_env().get("PATH"));
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn workdir_option() {
    let s = Setup::new("runtime_workdir");
    let config = read_config(&test_images().join("busybox"), "latest");
    let image_workdir = config["config"]["WorkingDir"].as_str().unwrap_or("");
    let default = if image_workdir.is_empty() {
        "/"
    } else {
        image_workdir
    };
    assert_eq!(ok(s.run(["pwd"])), format!("{default}\n"));
    // Created if missing, like docker.
    assert_eq!(ok(s.run(["-w", "/new/work dir", "pwd"])), "/new/work dir\n");
    assert_eq!(ok(s.run(["--workdir=/etc", "pwd"])), "/etc\n");
    let out = s.run(["-w", "relative", "pwd"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absolute"),
        "{}",
        show(&out)
    );
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn user_option() {
    let s = Setup::new("runtime_user");
    // The image's passwd and group, as the container sees them without -u.
    let passwd = ok(s.run(["cat", "/etc/passwd"]));
    let group = ok(s.run(["cat", "/etc/group"]));
    let field = |text: &str, name: &str, i: usize| -> String {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == name)
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))[i]
            .to_string()
    };
    let id = |args: &[&str]| -> String {
        let mut all = args.to_vec();
        all.extend(["sh", "-c", "echo $(id -u) $(id -g)"]);
        ok(s.run(&all)).trim().to_string()
    };
    assert_eq!(id(&[]), "0 0", "the image's default user is root");
    let nobody_uid = field(&passwd, "nobody", 2);
    let nobody_gid = field(&passwd, "nobody", 3);
    let nobody = format!("{nobody_uid} {nobody_gid}");
    assert_eq!(id(&["-u", "nobody"]), nobody);
    assert_eq!(ok(s.run(["-u", "nobody", "id", "-un"])), "nobody\n");
    assert_eq!(
        id(&["--user", &nobody_uid]),
        nobody,
        "a uid gets its passwd group"
    );
    // Numeric ids the image does not know are used as they are.
    assert_eq!(id(&["-u", "1234:5678"]), "1234 5678");
    assert_eq!(id(&["-u", "1234"]), "1234 0");
    let root_group = group
        .lines()
        .next()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        id(&["-u", &format!("nobody:{root_group}")]),
        format!("{nobody_uid} {}", field(&group, &root_group, 2))
    );
    // Files the workload creates belong to it.
    let owner = ok(s.run([
        "-u",
        "1234:5678",
        "sh",
        "-c",
        "touch /tmp/f && stat -c '%u:%g' /tmp/f",
    ]));
    assert_eq!(owner, "1234:5678\n");
    for bad in ["no-such-user", "nobody:no-such-group"] {
        let out = s.run(["-u", bad, "true"]);
        assert_eq!(out.status.code(), Some(125), "-u {bad}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no-such-"), "-u {bad}: {}", show(&out));
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn entrypoint_option_and_arguments_pass_through() {
    let s = Setup::new("runtime_entrypoint");
    // --entrypoint drops the image's CMD: echo prints an empty line, as in docker.
    assert_eq!(ok(s.run(["--entrypoint", "echo"])), "\n");
    assert_eq!(ok(s.run(["--entrypoint=echo", "a", "b"])), "a b\n");
    assert_eq!(
        ok(s.run([
            "--entrypoint",
            "/bin/sh",
            "--",
            "-c",
            "echo $0-$1",
            "zero",
            "one"
        ])),
        "zero-one\n"
    );
    // After `--` everything is passed verbatim, ours or not: `./redis -- --port 6380`
    // reaches redis.
    assert_eq!(
        ok(s.run([
            "--entrypoint",
            "echo",
            "--",
            "--port",
            "6380",
            "-e",
            "X=1",
            "--debug",
            "--",
            "--help",
            "-u"
        ])),
        "--port 6380 -e X=1 --debug -- --help -u\n"
    );
    assert_eq!(
        ok(s.run(["echo", "--help", "--version"])),
        "--help --version\n"
    );
    assert_eq!(ok(s.run(["-e", "X=1", "--", "echo", "hi"])), "hi\n");
    // Arguments with spaces, quotes and empty strings arrive as they are.
    assert_eq!(
        ok(s.run([
            "sh",
            "-c",
            "printf '[%s]' \"$@\"",
            "sh",
            "a b",
            "",
            "'q'",
            "$HOME"
        ])),
        "[a b][]['q'][$HOME]"
    );
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn help_and_version_describe_the_image() {
    let s = Setup::new("runtime_help");
    let bytes = fs::read(busybox()).unwrap();
    let payload = Payload::parse(&bytes).expect("the binary is also its payload tar");
    // The platform the layout's index declares for the tagged manifest.
    let layout = test_images().join("busybox");
    let entry = &manifests_for_tag(&layout, "latest")[0]["platform"];
    let platform = format!(
        "{}/{}",
        entry["os"].as_str().unwrap(),
        entry["architecture"].as_str().unwrap()
    );
    let help = ok(s.run(["--help"]));
    let reference = &payload.metadata.reference;
    assert!(!reference.is_empty());
    assert!(
        help.contains(reference.as_str()),
        "no image name {reference}:\n{help}"
    );
    let digest = payload.manifest_digest.to_string();
    assert!(help.contains(&digest), "no digest {digest}:\n{help}");
    assert!(help.contains(&platform), "no platform {platform}:\n{help}");
    for option in ["--entrypoint", "--env", "--env-file", "--workdir", "--user"] {
        assert!(help.contains(option), "no {option}:\n{help}");
    }
    let version = ok(s.run(["--version"]));
    assert!(
        version.contains(reference.as_str()) && version.contains(&digest),
        "{version}"
    );
    // Neither unpacks the image.
    assert_eq!(
        CacheState::read(&s.cache),
        CacheState::default(),
        "--help or --version touched the cache"
    );
}
