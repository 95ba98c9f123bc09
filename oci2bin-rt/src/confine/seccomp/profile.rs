//! docker's seccomp profile format (moby's `types.Seccomp`, which containers-common reads
//! too): the model and the checks of every field the compiler reads (the JSON reader is
//! `json.rs`).

use super::bpf::Verdict;
use super::SeccompError;
use std::borrow::Cow;
use std::path::Path;

/// The built-in default profile, minified: containers-common's `pkg/seccomp/seccomp.json` as
/// last changed by commit 8c41d98b3801a23a9e27acd06670b4d8da35e168 ("seccomp: allow
/// fanotify_init without CAP_SYS_ADMIN", 2025-04-07; unchanged up to f437c58a, 2025-08-25),
/// without what applies to neither x86_64 nor aarch64 (other architectures' rules and syscall
/// names neither has), comments and the `errno` names that repeat `errnoRet`, plus two rules at
/// the end: `ioctl` with request `TIOCSTI` or `TIOCLINUX` → `EPERM`.
///
/// JSON (8 KB), parsed by the same code as a user's profile: one code path, which the test
/// `default_json_is_upstream_minified_plus_additions` can check. That test rebuilds this file
/// from the upstream copy in `testdata/` (`OCI2BIN_WRITE_DEFAULT_SECCOMP=1` writes it), and
/// others show that both compile to identical filters on both architectures. A table of
/// syscall numbers per architecture would be about 2 KB, at the cost of a second path into
/// the compiler.
pub(super) const DEFAULT_JSON: &str = include_str!("default.json");

/// A seccomp profile in docker's format: the JSON of `docker run --security-opt
/// seccomp=FILE`.
///
/// Build one with [`Profile::from_json`], [`Profile::from_file`] or
/// [`Profile::default_profile`] (all three check every field), and turn it into filters with
/// [`compile`](super::compile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// What a syscall gets when no rule matches it.
    pub default_action: Action,
    /// The errno of a `SCMP_ACT_ERRNO` default (`EPERM` when absent, as in docker).
    pub default_errno_ret: Option<u32>,
    /// containers-common's spelling of `defaultErrnoRet` by name (`"ENOSYS"`).
    pub default_errno: Option<String>,
    /// `SECCOMP_FILTER_FLAG_TSYNC`, `_LOG` or `_SPEC_ALLOW`, passed to `seccomp(2)`.
    pub flags: Vec<String>,
    /// The socket of a `SCMP_ACT_NOTIFY` agent; oci2bin has none, so it must be absent.
    pub listener_path: Option<String>,
    /// The rules, in profile order.
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of a profile's `syscalls`: an action for some syscalls, maybe only for some
/// argument values, maybe only for some architectures, capabilities or kernels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    /// The syscalls, by name (names this architecture lacks are skipped). Borrowed from the
    /// syscall table for the names it has, which saves an allocation each.
    pub names: Vec<Cow<'static, str>>,
    /// docker's older spelling for one syscall; only one of `name` and `names` may be given.
    pub name: Option<Cow<'static, str>>,
    /// What a matching call gets.
    pub action: Action,
    /// The errno of `SCMP_ACT_ERRNO` (`EPERM` when absent, as in docker).
    pub errno_ret: Option<u32>,
    /// containers-common's errno by name (`"EPERM"`) or number; must agree with `errnoRet`.
    pub errno: Option<String>,
    /// Conditions on the arguments, all of which must hold.
    pub args: Vec<Arg>,
    /// The rule applies only where all of these hold.
    pub includes: Filter,
    /// The rule does not apply where any of these holds.
    pub excludes: Filter,
}

/// A condition on one syscall argument (libseccomp's `scmp_arg_cmp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// Which argument, 0 to 5.
    pub index: u32,
    /// The value compared with; the mask for `SCMP_CMP_MASKED_EQ`.
    pub value: u64,
    /// For `SCMP_CMP_MASKED_EQ`: what the masked argument must equal.
    pub value_two: u64,
    /// The comparison.
    pub op: CmpOp,
}

/// libseccomp's comparison operators, unsigned 64-bit (see the module documentation for the
/// arguments compared as 32-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// argument != value
    Ne,
    /// argument < value
    Lt,
    /// argument <= value
    Le,
    /// argument == value
    Eq,
    /// argument >= value
    Ge,
    /// argument > value
    Gt,
    /// (argument & value) == valueTwo
    MaskedEq,
}

/// The actions of docker's format (libseccomp's `SCMP_ACT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the syscall.
    Allow,
    /// Fail it with `errnoRet` (default `EPERM`).
    Errno,
    /// Kill the thread (libseccomp's `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`).
    Kill,
    /// Kill the thread.
    KillThread,
    /// Kill the whole process.
    KillProcess,
    /// Send `SIGSYS`.
    Trap,
    /// Run the syscall and log it to the audit log.
    Log,
    /// Hand it to a ptrace tracer; with none (oci2bin has none) the kernel fails it with
    /// `ENOSYS`, which is what oci2bin compiles it to.
    Trace,
    /// Hand it to a user-space agent through `listenerPath`; not supported (no agent).
    Notify,
}

/// A rule's `includes` or `excludes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`): `includes` needs all, `excludes` drops the rule if the
    /// workload has any.
    pub caps: Vec<String>,
    /// Architectures in Go's names (`amd64`, `arm64`, `x86`, ...).
    pub arches: Vec<String>,
    /// A kernel version (`"5.8"`): `includes` needs at least it, `excludes` drops the rule on
    /// it and later ones.
    pub min_kernel: Option<String>,
}

impl Action {
    /// Every action, by its name in the format.
    pub(crate) const NAMES: [(&'static str, Action); 9] = [
        ("SCMP_ACT_ALLOW", Action::Allow),
        ("SCMP_ACT_ERRNO", Action::Errno),
        ("SCMP_ACT_KILL", Action::Kill),
        ("SCMP_ACT_KILL_THREAD", Action::KillThread),
        ("SCMP_ACT_KILL_PROCESS", Action::KillProcess),
        ("SCMP_ACT_TRAP", Action::Trap),
        ("SCMP_ACT_LOG", Action::Log),
        ("SCMP_ACT_TRACE", Action::Trace),
        ("SCMP_ACT_NOTIFY", Action::Notify),
    ];
}

impl CmpOp {
    /// Every operator, by its name in the format.
    pub(crate) const NAMES: [(&'static str, CmpOp); 7] = [
        ("SCMP_CMP_NE", CmpOp::Ne),
        ("SCMP_CMP_LT", CmpOp::Lt),
        ("SCMP_CMP_LE", CmpOp::Le),
        ("SCMP_CMP_EQ", CmpOp::Eq),
        ("SCMP_CMP_GE", CmpOp::Ge),
        ("SCMP_CMP_GT", CmpOp::Gt),
        ("SCMP_CMP_MASKED_EQ", CmpOp::MaskedEq),
    ];
}

impl Filter {
    /// True when the filter has no condition (JSON `{}`).
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

impl Profile {
    /// The default: containers-common's `seccomp.json` (what rootless podman applies), plus
    /// `ioctl` `TIOCSTI` and `TIOCLINUX` denied with `EPERM` (both inject input into the
    /// terminal the workload shares with the user).
    pub fn default_profile() -> Profile {
        // Tested to parse; no `expect`, which would link SeccompError's Debug.
        Self::parse(DEFAULT_JSON.as_bytes(), "the built-in seccomp profile")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parses and checks a profile in docker's format.
    pub fn from_json(bytes: &[u8]) -> Result<Profile, SeccompError> {
        Self::parse(bytes, "the seccomp profile")
    }

    /// Reads, parses and checks a profile file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Profile, SeccompError> {
        let bytes = std::fs::read(path).map_err(|source| SeccompError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes, &format!("the seccomp profile {}", path.display()))
    }

    fn parse(bytes: &[u8], origin: &str) -> Result<Profile, SeccompError> {
        let profile = super::json::parse(bytes, origin)?;
        profile.check(origin)?;
        Ok(profile)
    }

    /// Checks every field the compiler reads, in every rule (also the rules that do not apply
    /// on this machine), so that a mistake shows on any machine.
    pub(crate) fn check(&self, origin: &str) -> Result<(), SeccompError> {
        self.default_verdict(origin)?;
        self.filter_flags(origin)?;
        for (i, rule) in self.syscalls.iter().enumerate() {
            rule.resolve(i, origin)?;
        }
        Ok(())
    }

    /// The default action as a filter result.
    pub(crate) fn default_verdict(&self, origin: &str) -> Result<Verdict, SeccompError> {
        verdict(
            self.default_action,
            self.default_errno_ret,
            self.default_errno.as_deref(),
        )
        .map_err(|problem| invalid(origin, "defaultAction", problem))
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits of `flags`; also refuses a `listenerPath`.
    pub(crate) fn filter_flags(&self, origin: &str) -> Result<libc::c_ulong, SeccompError> {
        if self.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid(
                origin,
                "listenerPath",
                "oci2bin has no seccomp notify agent; remove listenerPath and the \
                 SCMP_ACT_NOTIFY rules",
            ));
        }
        let mut bits = 0;
        for (i, flag) in self.flags.iter().enumerate() {
            bits |= match flag.as_str() {
                "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
                "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                _ => {
                    return Err(invalid(
                        origin,
                        format!("flags[{i}]"),
                        format!(
                            "{flag:?} is not a flag oci2bin can pass; use \
                             SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG or \
                             SECCOMP_FILTER_FLAG_SPEC_ALLOW"
                        ),
                    ))
                }
            };
        }
        Ok(bits)
    }
}

/// A rule with its action, capabilities and kernel versions decoded.
pub(crate) struct Resolved<'a> {
    /// The syscall names (`names`, or `name`).
    pub names: &'a [Cow<'static, str>],
    /// What a match gets.
    pub action: Verdict,
    /// The arguments, indexes checked to be 0 to 5.
    pub args: &'a [Arg],
    includes: Applies<'a>,
    excludes: Applies<'a>,
}

/// `includes` or `excludes`, decoded.
struct Applies<'a> {
    caps: u64,
    arches: &'a [String],
    min_kernel: Option<Kernel>,
}

impl Resolved<'_> {
    /// Whether the rule applies on `arch` (Go's name) for a workload with `caps` on `kernel`.
    pub fn applies(&self, arch: &str, caps: u64, kernel: Kernel) -> bool {
        let (inc, exc) = (&self.includes, &self.excludes);
        let on_arch = |list: &[String]| list.iter().any(|a| a == arch);
        !(on_arch(exc.arches)
            || exc.caps & caps != 0
            || exc.min_kernel.is_some_and(|k| kernel >= k)
            || (!inc.arches.is_empty() && !on_arch(inc.arches))
            || inc.caps & !caps != 0
            || inc.min_kernel.is_some_and(|k| kernel < k))
    }
}

impl SyscallRule {
    /// Decodes and checks the rule `syscalls[index]`.
    pub(crate) fn resolve(&self, index: usize, origin: &str) -> Result<Resolved<'_>, SeccompError> {
        let at = |field: &str| format!("syscalls[{index}]{field}");
        let name = self.name.as_ref().filter(|n| !n.is_empty());
        let names = match (name, self.names.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    origin,
                    at(""),
                    "both \"name\" and \"names\" are given; use either",
                ))
            }
            (Some(name), true) => std::slice::from_ref(name),
            (None, false) => &self.names[..],
            (None, true) => {
                return Err(invalid(
                    origin,
                    at(""),
                    "names no syscall; give \"names\": [\"...\"]",
                ))
            }
        };
        let action = verdict(self.action, self.errno_ret, self.errno.as_deref())
            .map_err(|problem| invalid(origin, at(&describe(names)), problem))?;
        for (j, arg) in self.args.iter().enumerate() {
            if arg.index > 5 {
                return Err(invalid(
                    origin,
                    at(&format!(".args[{j}].index")),
                    format!("{} is not an argument index (0 to 5)", arg.index),
                ));
            }
        }
        let includes = applies(&self.includes, origin, &|| at(".includes"))?;
        let excludes = applies(&self.excludes, origin, &|| at(".excludes"))?;
        Ok(Resolved {
            names,
            action,
            args: &self.args,
            includes,
            excludes,
        })
    }
}

/// Decodes an `includes` or `excludes`; `at` names it for errors.
fn applies<'a>(
    filter: &'a Filter,
    origin: &str,
    at: &dyn Fn() -> String,
) -> Result<Applies<'a>, SeccompError> {
    let mut caps = 0;
    for (i, cap) in filter.caps.iter().enumerate() {
        caps |= 1u64
            << capability(cap).ok_or_else(|| {
                invalid(
                    origin,
                    format!("{}.caps[{i}]", at()),
                    format!(
                        "{cap:?} is not a capability; use a name from capabilities(7), such as \
                         \"CAP_SYS_ADMIN\""
                    ),
                )
            })?;
    }
    let min_kernel = match &filter.min_kernel {
        None => None,
        Some(v) => Some(Kernel::parse(v).ok_or_else(|| {
            invalid(
                origin,
                format!("{}.minKernel", at()),
                format!("{v:?} is not a kernel version such as \"5.8\""),
            )
        })?),
    };
    Ok(Applies {
        caps,
        arches: &filter.arches,
        min_kernel,
    })
}

/// `" (mount, umount2)"`, or the first three names and a count, to say which rule is meant.
fn describe(names: &[Cow<'static, str>]) -> String {
    match names {
        [a, b, c, _, ..] => format!(" ({a}, {b}, {c}, ... {} names)", names.len()),
        _ => format!(" ({})", names.join(", ")),
    }
}

/// An action of the format as a filter result, with its errno; the error is the problem.
fn verdict(action: Action, errno_ret: Option<u32>, errno: Option<&str>) -> Result<Verdict, String> {
    Ok(match action {
        Action::Allow => Verdict::Allow,
        Action::Errno => Verdict::Errno(errno_value(errno_ret, errno)?),
        Action::Kill | Action::KillThread => Verdict::KillThread,
        Action::KillProcess => Verdict::KillProcess,
        Action::Trap => Verdict::Trap,
        Action::Log => Verdict::Log,
        Action::Trace => Verdict::Errno(libc::ENOSYS as u16),
        Action::Notify => {
            return Err(
                "SCMP_ACT_NOTIFY needs a seccomp notify agent, which oci2bin does not \
                        have; use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW"
                    .to_owned(),
            )
        }
    })
}

/// The errno of an `SCMP_ACT_ERRNO`: `errnoRet`, or containers-common's `errno`, or `EPERM`.
fn errno_value(errno_ret: Option<u32>, errno: Option<&str>) -> Result<u16, String> {
    let named = match errno.filter(|e| !e.is_empty()) {
        None => None,
        Some(name) => Some(
            name.parse::<u32>()
                .ok()
                .or_else(|| errno_by_name(name))
                .ok_or_else(|| {
                    format!(
                        "errno {name:?} is not an errno name oci2bin knows; give its number in \
                         \"errnoRet\" instead"
                    )
                })?,
        ),
    };
    let value = match (errno_ret, named) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "errnoRet {a} and errno {:?} ({b}) disagree; give one of them",
                errno.unwrap_or("")
            ))
        }
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => libc::EPERM as u32,
    };
    // The kernel caps the errno at MAX_ERRNO; beyond it libc would not see an error at all.
    if value > 4095 {
        return Err(format!("errno {value} is out of range (1 to 4095)"));
    }
    Ok(value as u16)
}

fn invalid(origin: &str, field: impl Into<String>, problem: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        origin: origin.to_owned(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// Capability names without `CAP_`, by number (capability.h; Linux 5.9 added the last, 40).
const CAP_NAMES: &str = "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID \
    SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER \
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE \
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP \
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF \
    CHECKPOINT_RESTORE";

/// The number of a capability named as in docker's profiles (`CAP_SYS_ADMIN`).
pub(crate) fn capability(name: &str) -> Option<u32> {
    let bare = name.strip_prefix("CAP_")?;
    CAP_NAMES
        .split_ascii_whitespace()
        .position(|n| n == bare)
        .map(|n| n as u32)
}

/// errno names 1 to 40, by number: the same on x86_64 and aarch64 (asm-generic's errno-base
/// plus the first of errno.h), enough for what profiles return.
const ERRNO_NAMES: &str = "EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD \
    EAGAIN ENOMEM EACCES EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE \
    EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK \
    ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP";

fn errno_by_name(name: &str) -> Option<u32> {
    let extra = [
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
        ("ENOTSUP", libc::ENOTSUP),
        ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
        ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ];
    ERRNO_NAMES
        .split_ascii_whitespace()
        .position(|n| n == name)
        .map(|n| n as u32 + 1)
        .or_else(|| {
            extra
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v as u32)
        })
}

/// A kernel version, `major.minor.patch` (missing parts are 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Kernel(pub u32, pub u32, pub u32);

impl Kernel {
    /// Parses `"5.8"` or `"5.8.1"` (a `minKernel`).
    pub fn parse(text: &str) -> Option<Kernel> {
        let mut parts = [0u32; 3];
        for (i, part) in text.split('.').enumerate() {
            if i == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[i] = part.parse().ok()?;
        }
        Some(Kernel(parts[0], parts[1], parts[2]))
    }

    /// Parses the start of a release string, `"6.18.44-fc-v1045"` → 6.18.44.
    pub fn from_release(release: &str) -> Option<Kernel> {
        let end = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        Kernel::parse(release[..end].trim_end_matches('.'))
    }

    /// The running kernel (`uname -r`); 0.0.0 if it cannot be read, which leaves out the
    /// rules that need a `minKernel`.
    pub fn running() -> Kernel {
        // SAFETY: utsname is plain bytes, for which zero is a valid value; uname fills it.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `uts` is a valid, writable utsname.
        if unsafe { libc::uname(&mut uts) } != 0 {
            return Kernel(0, 0, 0);
        }
        // SAFETY: the kernel NUL-terminates release within the array.
        let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
        release
            .to_str()
            .ok()
            .and_then(Kernel::from_release)
            .unwrap_or(Kernel(0, 0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        Profile::from_json(json.as_bytes())
            .expect_err(json)
            .to_string()
    }

    fn rule(body: &str) -> String {
        format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{body}]}}"#)
    }

    #[test]
    fn parses_dockers_format_with_nulls_legacy_names_and_unknown_fields() {
        let profile = Profile::from_json(
            br#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 38,
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [
                    {"name": "getpid", "action": "SCMP_ACT_ALLOW", "args": null,
                     "includes": null, "excludes": {}, "comment": "legacy name"},
                    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errno": "EINVAL",
                     "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}],
                     "excludes": {"caps": ["CAP_AUDIT_WRITE"], "minKernel": "4.8"}}
                ]
            }"#,
        )
        .unwrap();
        assert_eq!(profile.default_action, Action::Errno);
        assert_eq!(profile.default_verdict("").unwrap(), Verdict::Errno(38));
        assert_eq!(
            profile.filter_flags("").unwrap(),
            libc::SECCOMP_FILTER_FLAG_LOG
        );
        let getpid = profile.syscalls[0].resolve(0, "").unwrap();
        assert_eq!(getpid.names, ["getpid"]);
        assert_eq!(getpid.action, Verdict::Allow);
        let socket = profile.syscalls[1].resolve(1, "").unwrap();
        assert_eq!(socket.action, Verdict::Errno(libc::EINVAL as u16));
        assert_eq!(profile.syscalls[1].args[0].value_two, 0);
        let audit = 1 << 29;
        assert!(socket.applies("amd64", 0, Kernel(4, 7, 0)));
        assert!(!socket.applies("amd64", 0, Kernel(4, 8, 0)));
        assert!(!socket.applies("amd64", audit, Kernel(4, 7, 0)));
    }

    #[test]
    fn the_upstream_profile_parses() {
        let upstream = include_str!("testdata/containers-common-seccomp.json");
        let profile = Profile::from_json(upstream.as_bytes()).unwrap();
        assert_eq!(profile.syscalls.len(), 40);
        assert_eq!(profile.default_verdict("").unwrap(), Verdict::Errno(38));
    }

    #[test]
    fn actions_map_as_in_runc() {
        let action = |a: &str, extra: &str| {
            let json = rule(&format!(
                r#"{{"names": ["getpid"], "action": "{a}"{extra}}}"#
            ));
            let profile = Profile::from_json(json.as_bytes()).unwrap();
            profile.syscalls[0].resolve(0, "").unwrap().action
        };
        assert_eq!(action("SCMP_ACT_ALLOW", ""), Verdict::Allow);
        assert_eq!(action("SCMP_ACT_ERRNO", ""), Verdict::Errno(1));
        assert_eq!(
            action("SCMP_ACT_ERRNO", r#", "errnoRet": 13"#),
            Verdict::Errno(13)
        );
        assert_eq!(
            action("SCMP_ACT_ERRNO", r#", "errno": "ENOSYS""#),
            Verdict::Errno(38)
        );
        assert_eq!(
            action("SCMP_ACT_ERRNO", r#", "errno": "95""#),
            Verdict::Errno(95)
        );
        assert_eq!(action("SCMP_ACT_KILL", ""), Verdict::KillThread);
        assert_eq!(action("SCMP_ACT_KILL_THREAD", ""), Verdict::KillThread);
        assert_eq!(action("SCMP_ACT_KILL_PROCESS", ""), Verdict::KillProcess);
        assert_eq!(action("SCMP_ACT_TRAP", ""), Verdict::Trap);
        assert_eq!(action("SCMP_ACT_LOG", ""), Verdict::Log);
        assert_eq!(
            action("SCMP_ACT_TRACE", r#", "errnoRet": 5"#),
            Verdict::Errno(38)
        );
        // errnoRet means nothing to other actions (runc ignores it too).
        assert_eq!(
            action("SCMP_ACT_ALLOW", r#", "errnoRet": 5"#),
            Verdict::Allow
        );
    }

    #[test]
    fn errors_say_where_and_what_to_do() {
        let cases: &[(String, &[&str])] = &[
            (
                "not json".into(),
                &[
                    "the seccomp profile, line 1 column 1 (the top level): expected an object",
                    "docker's seccomp profile format",
                    "got something that is not JSON",
                ],
            ),
            (
                r#"{"syscalls": []}"#.into(),
                &["(the top level): \"defaultAction\" is missing"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_FOO"}"#.into(),
                &["line 1 column 19 (defaultAction): unknown action \"SCMP_ACT_FOO\"; use one of SCMP_ACT_ALLOW"],
            ),
            (
                "{\n  \"defaultAction\": 5\n}".into(),
                &["line 2 column 20 (defaultAction): expected a string, got a number"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW",}"#.into(),
                &["column 36 (the top level): expected a string, got '}'"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW"} x"#.into(),
                &["unexpected text after the profile"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "comment": "\q"}"#.into(),
                &["(comment): invalid escape in a string"],
            ),
            (
                format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "x": {}{}}}"#, "[".repeat(100), "]".repeat(100)),
                &["nested too deeply"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": []}}"#.into(),
                &["(syscalls): expected a list, got an object"],
            ),
            (
                rule(r#"{"names": ["getpid"]}"#),
                &["(syscalls[0]): \"action\" is missing"],
            ),
            (
                rule(r#"{"names": ["getpid", 7], "action": "SCMP_ACT_ERRNO"}"#),
                &["(syscalls[0].names[1]): expected a string, got a number"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}"#),
                &["(syscalls[0].errnoRet): -1 is not an integer from 0 to 4294967295"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SAME"}]}"#),
                &["(syscalls[0].args[0].op): unknown operator \"SCMP_CMP_SAME\"", "SCMP_CMP_MASKED_EQ"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#),
                &["syscalls[0].args[0].index", "6 is not an argument index (0 to 5)"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 18446744073709551616, "op": "SCMP_CMP_EQ"}]}"#),
                &["(syscalls[0].args[0].value): 18446744073709551616 is not an integer from 0 to 18446744073709551615"],
            ),
            (
                rule(r#"{"name": "getpid", "names": ["getppid"], "action": "SCMP_ACT_ERRNO"}"#),
                &["syscalls[0]", "both \"name\" and \"names\""],
            ),
            (
                rule(r#"{"action": "SCMP_ACT_ERRNO"}"#),
                &["syscalls[0]", "names no syscall"],
            ),
            (
                rule(r#"{"names": ["a", "b", "c", "d"], "action": "SCMP_ACT_NOTIFY"}"#),
                &["syscalls[0] (a, b, c, ... 4 names)", "SCMP_ACT_NOTIFY", "notify agent"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMN"]}}"#),
                &["syscalls[0].includes.caps[0]", "\"CAP_SYS_ADMN\" is not a capability"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "5.x"}}"#),
                &["syscalls[0].excludes.minKernel", "\"5.x\" is not a kernel version"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errno": "EWHATEVER"}"#),
                &["syscalls[0] (getpid)", "\"EWHATEVER\"", "errnoRet"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "errnoRet": 13}"#),
                &["errnoRet 13 and errno \"EPERM\" (1) disagree"],
            ),
            (
                rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}"#),
                &["errno 70000 is out of range"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOSYS", "defaultErrnoRet": 1}"#.into(),
                &["defaultAction", "disagree"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#.into(),
                &["listenerPath", "remove listenerPath"],
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#.into(),
                &["flags[0]", "SECCOMP_FILTER_FLAG_TSYNC"],
            ),
        ];
        for (json, needles) in cases {
            let message = error(json);
            for needle in *needles {
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn accepts_the_json_serde_json_accepts() {
        let valid = [
            "1",
            "0",
            "-0",
            "1.5e3",
            "2E-7",
            "-12.25",
            "18446744073709551616",
            "true",
            "false",
            "null",
            r#""""#,
            r#""a\u00e9\ud83d\ude00\n\/\"\\""#,
            "[]",
            "[1,[2,{}]]",
            r#"{"a":null,"b":[{"c":"d"}]}"#,
            " [ 1 , 2 ] ",
        ];
        let invalid = [
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "tru",
            "nul",
            "[1,]",
            "[1 2]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "{1:2}",
            r#""\x""#,
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\u12g4""#,
            "\"a\tb\"",
            r#""abc"#,
            "[",
            "{",
            "",
        ];
        for (snippet, ok) in valid
            .iter()
            .map(|s| (s, true))
            .chain(invalid.iter().map(|s| (s, false)))
        {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(snippet).is_ok(),
                ok,
                "{snippet}"
            );
            let json = format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "x": {snippet}}}"#);
            let ours = Profile::from_json(json.as_bytes());
            assert_eq!(ours.is_ok(), ok, "{snippet}: {ours:?}");
        }
        // Strings decode as serde_json decodes them.
        let name = r#""a\u00e9\ud83d\ude00\t\\""#;
        let json = rule(&format!(
            r#"{{"names": [{name}], "action": "SCMP_ACT_ALLOW"}}"#
        ));
        let ours = Profile::from_json(json.as_bytes()).unwrap();
        let theirs: String = serde_json::from_str(name).unwrap();
        assert_eq!(ours.syscalls[0].names, [theirs]);
        assert!(Profile::from_json(b"{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\xff").is_err());
    }

    #[test]
    fn from_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let message = Profile::from_file(&path).unwrap_err().to_string();
        assert!(
            message.contains("cannot read the seccomp profile") && message.contains("profile.json"),
            "{message}"
        );
        std::fs::write(
            &path,
            rule(r#"{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}"#),
        )
        .unwrap();
        let message = Profile::from_file(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "the seccomp profile {}: syscalls[0]",
                path.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn capability_and_errno_names_have_the_kernels_numbers() {
        assert_eq!(capability("CAP_CHOWN"), Some(0));
        assert_eq!(capability("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(capability("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(capability("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(capability("SYS_ADMIN"), None);
        assert_eq!(capability("CAP_"), None);
        let errnos = [
            ("EPERM", libc::EPERM),
            ("ENOENT", libc::ENOENT),
            ("EAGAIN", libc::EAGAIN),
            ("EACCES", libc::EACCES),
            ("ENOTBLK", libc::ENOTBLK),
            ("EINVAL", libc::EINVAL),
            ("ENOTTY", libc::ENOTTY),
            ("ERANGE", libc::ERANGE),
            ("EDEADLK", libc::EDEADLK),
            ("ENAMETOOLONG", libc::ENAMETOOLONG),
            ("ENOLCK", libc::ENOLCK),
            ("ENOSYS", libc::ENOSYS),
            ("ENOTEMPTY", libc::ENOTEMPTY),
            ("ELOOP", libc::ELOOP),
            ("EOPNOTSUPP", libc::EOPNOTSUPP),
            ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
        ];
        for (name, value) in errnos {
            assert_eq!(errno_by_name(name), Some(value as u32), "{name}");
        }
        assert_eq!(ERRNO_NAMES.split_ascii_whitespace().count(), 40);
        assert_eq!(errno_by_name("EWHATEVER"), None);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(Kernel::parse("5.8"), Some(Kernel(5, 8, 0)));
        assert_eq!(Kernel::parse("5.10.1"), Some(Kernel(5, 10, 1)));
        assert_eq!(Kernel::parse("5"), Some(Kernel(5, 0, 0)));
        for bad in ["", "5.", "5.x", "5.8.1.2", "-5.8", " 5.8"] {
            assert_eq!(Kernel::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Kernel::from_release("6.18.44-fc-v1045"),
            Some(Kernel(6, 18, 44))
        );
        assert_eq!(Kernel::from_release("6.1.0-rc3"), Some(Kernel(6, 1, 0)));
        assert_eq!(Kernel::from_release("4.19"), Some(Kernel(4, 19, 0)));
        assert!(Kernel::running() > Kernel(3, 0, 0));
        assert!(Kernel(5, 10, 0) > Kernel(5, 8, 9));
    }
}
