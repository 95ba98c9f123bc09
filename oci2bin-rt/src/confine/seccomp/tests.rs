//! Real installs: each test forks a child that sets `no_new_privs`, installs the filters,
//! makes raw syscalls and reports their results through a pipe; the parent compares them
//! with the same calls made by an unconfined child, so a result the kernel would give anyway
//! does not pass for the filter's work. Children are always reaped.

use super::*;
use crate::confine::seccomp::profile::capability;
use libc::c_long;

/// A syscall's result: the return value, or -errno.
fn sys(rc: c_long) -> i64 {
    if rc < 0 {
        -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        rc
    }
}

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Forks a child that installs `filters` (none: unconfined) and runs `probes`; returns
/// their results, in order, and how the child ended. The child only makes syscalls (no
/// allocation), as a child of a multi-threaded process must.
fn run_in_child(filters: Option<&Filters>, probes: &[fn() -> i64]) -> (Vec<i64>, Ended) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child below only makes syscalls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain syscalls on this process's own descriptors and state.
        unsafe {
            libc::close(fds[0]);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(90);
            }
            if let Some(filters) = filters {
                if filters.install().is_err() {
                    libc::_exit(91);
                }
            }
            for probe in probes {
                let result = probe();
                let bytes = result.to_ne_bytes();
                if libc::write(fds[1], bytes.as_ptr().cast(), bytes.len()) != 8 {
                    libc::_exit(92);
                }
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end, so that read sees EOF when the child ends.
    unsafe { libc::close(fds[1]) };
    let mut out = Vec::new();
    let mut buf = [0u8; 8];
    loop {
        // SAFETY: buf is 8 writable bytes. Results are written whole (8 < PIPE_BUF).
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), 8) };
        if n == 8 {
            out.push(i64::from_ne_bytes(buf));
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            break;
        }
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe {
        libc::close(fds[0]);
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
    }
    let ended = if libc::WIFEXITED(status) {
        Ended::Exited(libc::WEXITSTATUS(status))
    } else {
        Ended::Signaled(libc::WTERMSIG(status))
    };
    (out, ended)
}

/// What a probe must give under the filter.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Fails with this errno, and does not unconfined: the filter did it.
    Denied(i32),
    /// Fails with this errno (unconfined too, for some users or always).
    Is(i32),
    /// Succeeds.
    Ok,
    /// Gives what it gives unconfined: the profile lets the kernel decide.
    Same,
}

/// A probe: its name, the call (a plain `fn`, so the child needs no allocation), and what the
/// filter must make of it.
type Probe = (&'static str, fn() -> i64, Expect);

/// Runs `probes` confined by `filters` and unconfined, and checks every expectation.
fn check(filters: &Filters, probes: &[Probe]) {
    let calls: Vec<fn() -> i64> = probes.iter().map(|p| p.1).collect();
    let (confined, ended) = run_in_child(Some(filters), &calls);
    assert_eq!(ended, Ended::Exited(0), "confined child ({confined:?})");
    let (unconfined, ended) = run_in_child(None, &calls);
    assert_eq!(ended, Ended::Exited(0), "unconfined child");
    let mut failures = Vec::new();
    for (i, (name, _, expect)) in probes.iter().enumerate() {
        let (got, free) = (confined[i], unconfined[i]);
        let ok = match *expect {
            Expect::Denied(e) => got == -i64::from(e) && free != got,
            Expect::Is(e) => got == -i64::from(e),
            Expect::Ok => got >= 0,
            Expect::Same => got == free,
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got {got} confined, {free} unconfined"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn caps(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| 1u64 << capability(n).unwrap())
        .fold(0, |a, b| a | b)
}

/// Rootless podman's default capabilities (containers.conf).
fn podman_caps() -> u64 {
    caps(&[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    ])
}

/// A plain fork (clone with SIGCHLD and no namespace flags) whose child exits 7: 0 if the
/// parent sees exactly that.
fn plain_fork() -> i64 {
    // SAFETY: the new process only calls _exit; the parent reaps it.
    unsafe {
        let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as c_long, 0, 0, 0, 0);
        if pid == 0 {
            libc::_exit(7);
        }
        if pid < 0 {
            return sys(pid);
        }
        let mut status = 0;
        if libc::waitpid(pid as libc::pid_t, &mut status, 0) < 0 {
            return sys(-1);
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7 {
            0
        } else {
            -1000
        }
    }
}

/// Under a directory that does not exist: mkdir, mount and chroot fail with ENOENT when the
/// filter lets them through, and create nothing.
const NOWHERE: &std::ffi::CStr = c"/nonexistent-oci2bin-seccomp-test/below";

fn nowhere() -> *const libc::c_char {
    NOWHERE.as_ptr()
}

/// `socket(family, type, protocol)`, closing a socket it gets: 0 or -errno.
fn socket(family: c_long, kind: c_long, protocol: c_long) -> i64 {
    // SAFETY: socket and close take plain integers.
    let fd = sys(unsafe { libc::syscall(libc::SYS_socket, family, kind, protocol) });
    if fd >= 0 {
        unsafe { libc::close(fd as i32) };
        return 0;
    }
    fd
}

const NETLINK_AUDIT: c_long = 9;

#[test]
fn default_profile_denies_what_podman_denies_and_runs_the_rest() {
    let filters = compile(&Profile::default_profile(), podman_caps()).unwrap();
    // SAFETY (all probes): raw syscalls with invalid descriptors, null pointers or paths
    // that do not exist, so that an allowed call fails harmlessly in the kernel.
    let probes: &[Probe] = &[
        (
            "getpid",
            || sys(unsafe { libc::syscall(libc::SYS_getpid) }),
            Expect::Ok,
        ),
        (
            "write(-1)",
            || sys(unsafe { libc::syscall(libc::SYS_write, -1, 0, 0) }),
            Expect::Same,
        ),
        ("clone, a plain fork", plain_fork, Expect::Is(0)),
        // Not in the profile: the default, ENOSYS.
        (
            "syscall 1000",
            || sys(unsafe { libc::syscall(1000) }),
            Expect::Is(libc::ENOSYS),
        ),
        (
            "io_uring_setup",
            || sys(unsafe { libc::syscall(libc::SYS_io_uring_setup, 0, 0) }),
            Expect::Denied(libc::ENOSYS),
        ),
        (
            "add_key",
            || sys(unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) }),
            Expect::Denied(libc::ENOSYS),
        ),
        (
            "request_key",
            || sys(unsafe { libc::syscall(libc::SYS_request_key, 0, 0, 0, 0) }),
            Expect::Denied(libc::ENOSYS),
        ),
        // Our additions: terminal injection, also with garbage in the upper half.
        (
            "ioctl(TIOCSTI)",
            || sys(unsafe { libc::syscall(libc::SYS_ioctl, -1, libc::TIOCSTI as c_long, 0) }),
            Expect::Denied(libc::EPERM),
        ),
        (
            "ioctl(TIOCSTI | 1 << 32)",
            || {
                let request = libc::TIOCSTI as c_long | (1 << 32);
                sys(unsafe { libc::syscall(libc::SYS_ioctl, -1, request, 0) })
            },
            Expect::Denied(libc::EPERM),
        ),
        (
            "ioctl(TIOCLINUX)",
            || sys(unsafe { libc::syscall(libc::SYS_ioctl, -1, libc::TIOCLINUX as c_long, 0) }),
            Expect::Denied(libc::EPERM),
        ),
        (
            "ioctl(TIOCGWINSZ)",
            || sys(unsafe { libc::syscall(libc::SYS_ioctl, -1, libc::TIOCGWINSZ as c_long, 0) }),
            Expect::Same,
        ),
        // containers-common's explicit EPERM list.
        (
            "kexec_load",
            || sys(unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) }),
            Expect::Is(libc::EPERM),
        ),
        (
            "userfaultfd",
            || {
                let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, 0) };
                if fd >= 0 {
                    unsafe { libc::close(fd as i32) };
                }
                sys(fd)
            },
            Expect::Is(libc::EPERM),
        ),
        // CAP_SYS_ADMIN-only syscalls: EPERM without it, even for root.
        (
            "setns(-1)",
            || sys(unsafe { libc::syscall(libc::SYS_setns, -1, 0) }),
            Expect::Denied(libc::EPERM),
        ),
        (
            "sethostname(too long)",
            || sys(unsafe { libc::syscall(libc::SYS_sethostname, 0, 100_000) }),
            Expect::Is(libc::EPERM),
        ),
        (
            "bpf",
            || sys(unsafe { libc::syscall(libc::SYS_bpf, 0, 0, 0) }),
            Expect::Is(libc::EPERM),
        ),
        // CAP_SYS_CHROOT is one of podman's capabilities: allowed.
        (
            "chroot(nowhere)",
            || sys(unsafe { libc::syscall(libc::SYS_chroot, nowhere()) }),
            Expect::Same,
        ),
        // Without CAP_AUDIT_WRITE: audit netlink sockets are EINVAL, other sockets work.
        (
            "socket(AF_NETLINK, NETLINK_AUDIT)",
            || {
                socket(
                    libc::AF_NETLINK.into(),
                    libc::SOCK_RAW.into(),
                    NETLINK_AUDIT,
                )
            },
            Expect::Denied(libc::EINVAL),
        ),
        (
            "socket(AF_UNIX)",
            || socket(libc::AF_UNIX.into(), libc::SOCK_STREAM.into(), 0),
            Expect::Ok,
        ),
        // personality: only the values docker lists, compared on the low 32 bits.
        (
            "personality(0xffffffff)",
            || sys(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffff_u32 as c_long) }),
            Expect::Ok,
        ),
        (
            "personality(-1 as a long)",
            || sys(unsafe { libc::syscall(libc::SYS_personality, -1 as c_long) }),
            Expect::Ok,
        ),
        (
            "personality(ADDR_NO_RANDOMIZE)",
            || {
                sys(unsafe {
                    libc::syscall(libc::SYS_personality, libc::ADDR_NO_RANDOMIZE as c_long)
                })
            },
            Expect::Denied(libc::ENOSYS),
        ),
        // containers-common allows these (the kernel's capability checks decide): mount,
        // unshare and keyctl are in its allow list, unlike docker's profile.
        (
            "mount(tmpfs on nowhere)",
            || {
                let fs = c"tmpfs".as_ptr();
                sys(unsafe { libc::syscall(libc::SYS_mount, fs, nowhere(), fs, 0, 0) })
            },
            Expect::Same,
        ),
        (
            "unshare(CLONE_NEWUSER)",
            || sys(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER as c_long) }),
            Expect::Same,
        ),
        (
            "keyctl(9999)",
            || sys(unsafe { libc::syscall(libc::SYS_keyctl, 9999, 0, 0, 0, 0) }),
            Expect::Same,
        ),
    ];
    check(&filters, probes);
}

#[test]
fn capabilities_switch_the_default_profiles_rules() {
    let chroot: fn() -> i64 = || sys(unsafe { libc::syscall(libc::SYS_chroot, nowhere()) });
    let setns: fn() -> i64 = || sys(unsafe { libc::syscall(libc::SYS_setns, -1, 0) });
    let audit: fn() -> i64 = || {
        socket(
            libc::AF_NETLINK.into(),
            libc::SOCK_RAW.into(),
            NETLINK_AUDIT,
        )
    };
    let none = compile(&Profile::default_profile(), 0).unwrap();
    check(
        &none,
        &[
            (
                "chroot without CAP_SYS_CHROOT",
                chroot,
                Expect::Denied(libc::EPERM),
            ),
            (
                "setns without CAP_SYS_ADMIN",
                setns,
                Expect::Denied(libc::EPERM),
            ),
        ],
    );
    let admin = compile(
        &Profile::default_profile(),
        caps(&["CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"]),
    )
    .unwrap();
    check(
        &admin,
        &[
            ("chroot with CAP_SYS_CHROOT", chroot, Expect::Same),
            ("setns with CAP_SYS_ADMIN", setns, Expect::Same),
            ("audit socket with CAP_AUDIT_WRITE", audit, Expect::Same),
        ],
    );
    // The EINVAL filter for audit sockets is not needed with CAP_AUDIT_WRITE.
    assert_eq!(none.len(), 3);
    assert_eq!(admin.len(), 2);
}

fn getppid() -> i64 {
    sys(unsafe { libc::syscall(libc::SYS_getppid) })
}

fn getpid() -> i64 {
    sys(unsafe { libc::syscall(libc::SYS_getpid) })
}

#[test]
fn a_custom_profile_denying_mkdir_is_honoured_and_default_allow_works() {
    let profile = Profile::from_json(
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let filters = compile(&profile, 0).unwrap();
    // Default allow: only the EACCES filter.
    assert_eq!(filters.len(), 1);
    check(
        &filters,
        &[
            (
                "mkdirat",
                || {
                    let path = nowhere();
                    sys(unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path, 0o755) })
                },
                Expect::Denied(libc::EACCES),
            ),
            #[cfg(target_arch = "x86_64")]
            (
                "mkdir",
                || sys(unsafe { libc::syscall(libc::SYS_mkdir, nowhere(), 0o755) }),
                Expect::Denied(libc::EACCES),
            ),
            ("getpid", getpid, Expect::Ok),
            (
                "syscall 1000, the kernel's ENOSYS",
                || sys(unsafe { libc::syscall(1000) }),
                Expect::Is(libc::ENOSYS),
            ),
            (
                "io_uring_setup, allowed",
                || sys(unsafe { libc::syscall(libc::SYS_io_uring_setup, 0, 0) }),
                Expect::Same,
            ),
        ],
    );
}

#[test]
fn includes_and_excludes_caps_switch_custom_rules() {
    let profile = Profile::from_json(
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}}]}"#,
    )
    .unwrap();
    let cases = [
        (0, Expect::Denied(libc::EACCES), Expect::Ok),
        (caps(&["CAP_SYS_ADMIN"]), Expect::Ok, Expect::Ok),
        (
            caps(&["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]),
            Expect::Ok,
            Expect::Denied(libc::EPERM),
        ),
    ];
    for (caps, ppid, pid) in cases {
        let filters = compile(&profile, caps).unwrap();
        check(
            &filters,
            &[("getppid", getppid, ppid), ("getpid", getpid, pid)],
        );
    }
}

#[test]
fn conditions_are_anded_within_a_rule_and_rules_ored() {
    // getpriority(which, who): denied for (PRIO_PGRP, who > 5) or (PRIO_USER, any).
    let profile = Profile::from_json(
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 5, "op": "SCMP_CMP_GT"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let filters = compile(&profile, 0).unwrap();
    fn prio(which: c_long, who: c_long) -> i64 {
        // SAFETY: getpriority takes two integers.
        sys(unsafe { libc::syscall(libc::SYS_getpriority, which, who) })
    }
    check(
        &filters,
        &[
            (
                "(PGRP, 999999)",
                || prio(1, 999_999),
                Expect::Denied(libc::EACCES),
            ),
            ("(PGRP, 3)", || prio(1, 3), Expect::Same),
            ("(PROCESS, 999999)", || prio(0, 999_999), Expect::Same),
            ("(USER, 0)", || prio(2, 0), Expect::Denied(libc::EACCES)),
            // getpriority's arguments compare as 64 bits, as libseccomp's.
            (
                "(PGRP | 1 << 32, 999999)",
                || prio(1 | (1 << 32), 999_999),
                Expect::Same,
            ),
        ],
    );
}

#[test]
fn a_kill_default_still_gives_rule_errnos_and_installs_its_filters() {
    // The base filter here denies seccomp(2) (kill), so it must be installed after the
    // EACCES filter: installed first, the second install would kill the child before any
    // probe ran.
    let profile = Profile::from_json(
        br#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
            {"names": ["write", "exit_group", "exit", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let filters = compile(&profile, 0).unwrap();
    assert_eq!(filters.len(), 2);
    let probes: &[fn() -> i64] = &[getpid, getppid, || {
        sys(unsafe { libc::syscall(libc::SYS_getuid) })
    }];
    let (results, ended) = run_in_child(Some(&filters), probes);
    assert_eq!(ended, Ended::Signaled(libc::SIGSYS), "{results:?}");
    assert_eq!(results.len(), 2, "getuid must kill: {results:?}");
    assert!(results[0] > 0, "getpid {}", results[0]);
    assert_eq!(results[1], -i64::from(libc::EACCES));
}

#[test]
fn install_without_no_new_privs_says_what_is_missing() {
    // Only meaningful without CAP_SYS_ADMIN (as root the kernel accepts the filter).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let err = SeccompError::Install {
            index: 1,
            count: 1,
            source: io::Error::from_raw_os_error(libc::EACCES),
            hint: install_hint(0, -1, Some(libc::EACCES)),
        };
        assert!(err.to_string().contains("no_new_privs"), "{err}");
        return;
    }
    let filters = compile(&Profile::default_profile(), 0).unwrap();
    // SAFETY: the child only installs and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match filters.install() {
            Err(SeccompError::Install { source, .. })
                if source.raw_os_error() == Some(libc::EACCES) =>
            {
                0
            }
            _ => 1,
        };
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
}
