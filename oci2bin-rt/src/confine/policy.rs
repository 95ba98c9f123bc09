//! What confinement a run gets, from docker's options: `--cap-add`, `--cap-drop`,
//! `--security-opt`, `--privileged`, `--read-only`.
//!
//! Resolved on the host before the container is created, so a wrong option or an unreadable
//! seccomp profile is reported (exit 125) before anything starts.

use crate::confine::caps::{self, CapMask, UnknownCapability};
use crate::confine::seccomp::{
    compile, Action, Arg, CmpOp, Filter, Filters, Profile, SeccompError, SyscallRule,
};
use std::path::PathBuf;

/// Which seccomp filter the workload gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeccompChoice {
    /// containers-common's profile (rootless podman's default) plus terminal-injection ioctls.
    Default,
    /// None (`--security-opt seccomp=unconfined`, `--privileged`).
    Unconfined,
    /// A profile in docker's JSON format (`--security-opt seccomp=FILE`).
    Profile(PathBuf),
}

/// The security options as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// `--cap-add` values.
    pub cap_add: Vec<String>,
    /// `--cap-drop` values.
    pub cap_drop: Vec<String>,
    /// `--security-opt` values.
    pub security_opt: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
}

/// The confinement in effect for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// The workload's bounding set (and effective set when it runs as root).
    pub caps: CapMask,
    /// Its seccomp filter.
    pub seccomp: SeccompChoice,
    /// `PR_SET_NO_NEW_PRIVS`: setuid programs and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// Whether docker's masked and read-only kernel paths apply (not with `--privileged`).
    pub protect_kernel_paths: bool,
    /// Whether the root file system is read-only, with tmpfs on `/tmp`, `/run`, `/var/tmp`.
    pub read_only_root: bool,
}

impl Default for Confinement {
    fn default() -> Self {
        Confinement {
            caps: CapMask::default_set(),
            seccomp: SeccompChoice::Default,
            no_new_privs: false,
            protect_kernel_paths: true,
            read_only_root: false,
        }
    }
}

/// A security option that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The seccomp profile cannot be read, parsed or compiled.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// `--cap-add`/`--cap-drop` names no capability.
    #[error(transparent)]
    Capability(#[from] UnknownCapability),
    /// `--security-opt` has an unknown or unsupported value.
    #[error("--security-opt {0:?} is not supported: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false] (label=disable and apparmor=unconfined are accepted and change nothing: no SELinux or AppArmor profile is applied)")]
    SecurityOpt(String),
}

/// `true`/`false` of `no-new-privileges=...`.
fn parse_bool(value: &str, whole: &str) -> Result<bool, PolicyError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(PolicyError::SecurityOpt(whole.to_string())),
    }
}

impl Confinement {
    /// Resolves the options with docker's meaning; `--privileged` gives every capability,
    /// no seccomp filter and no masked paths, as rootless podman's `--privileged` does
    /// (it still cannot gain more than the user has: the user namespace stays).
    pub fn resolve(opts: &SecurityOptions) -> Result<Confinement, PolicyError> {
        let mut c = Confinement {
            caps: caps::resolve(&opts.cap_add, &opts.cap_drop)?,
            read_only_root: opts.read_only,
            ..Confinement::default()
        };
        if opts.privileged {
            c.caps = CapMask::all();
            c.seccomp = SeccompChoice::Unconfined;
            c.protect_kernel_paths = false;
        }
        for opt in &opts.security_opt {
            // docker accepts both `key=value` and the older `key:value`.
            let (key, value) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .unwrap_or((opt.as_str(), ""));
            match (key, value) {
                ("seccomp", "unconfined") => c.seccomp = SeccompChoice::Unconfined,
                ("seccomp", "") => return Err(PolicyError::SecurityOpt(opt.clone())),
                ("seccomp", path) => c.seccomp = SeccompChoice::Profile(PathBuf::from(path)),
                ("no-new-privileges", "") => c.no_new_privs = true,
                ("no-new-privileges", v) => c.no_new_privs = parse_bool(v, opt)?,
                ("label", "disable") | ("apparmor", "unconfined") => {}
                _ => return Err(PolicyError::SecurityOpt(opt.clone())),
            }
        }
        Ok(c)
    }

    /// The seccomp filters to install (`None`: unconfined), compiled for the workload's
    /// capabilities. The default profile gets docker's namespace rules on top of
    /// containers-common's (see [`namespace_rules`]).
    pub fn seccomp_filters(&self) -> Result<Option<Filters>, PolicyError> {
        let profile = match &self.seccomp {
            SeccompChoice::Unconfined => return Ok(None),
            SeccompChoice::Default => {
                let mut profile = Profile::default_profile();
                profile.syscalls.extend(namespace_rules());
                profile
            }
            SeccompChoice::Profile(path) => Profile::from_file(path)?,
        };
        Ok(Some(compile(&profile, self.caps.0)?))
    }

    /// One line for `--debug`.
    pub fn describe(&self) -> String {
        let seccomp = match &self.seccomp {
            SeccompChoice::Default => "default profile (containers-common, ENOSYS for unknown syscalls, TIOCSTI/TIOCLINUX denied)".to_string(),
            SeccompChoice::Unconfined => "unconfined".to_string(),
            SeccompChoice::Profile(p) => format!("profile {}", p.display()),
        };
        let caps = self.caps.names();
        let paths = if self.protect_kernel_paths {
            crate::confine::paths::describe()
        } else {
            "no masked or read-only kernel paths (--privileged)".to_string()
        };
        format!(
            "confinement: capabilities {:016x} [{}]; seccomp {seccomp}; no_new_privs {}; {paths}; root {}",
            self.caps.0,
            caps.join(" "),
            self.no_new_privs,
            if self.read_only_root {
                "read-only (tmpfs on /tmp /run /var/tmp)"
            } else {
                "writable (an overlay upper directory on disk, removed at exit)"
            }
        )
    }
}

/// The namespace flags of `clone(2)` and `unshare(2)` (`CLONE_NEWNS`, `NEWCGROUP`, `NEWUTS`,
/// `NEWIPC`, `NEWUSER`, `NEWPID`, `NEWNET`; docker's mask 0x7e020000).
const NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// `CLONE_NEWTIME`, which only `unshare` takes (in `clone` it is part of the exit signal).
const CLONE_NEWTIME: u64 = 0x80;

/// docker's rules that containers-common's profile leaves out: without `CAP_SYS_ADMIN` a
/// workload may not create namespaces (`clone`/`unshare` with a namespace flag get `EPERM`;
/// `clone3`, whose flags sit in memory a filter cannot read, gets `ENOSYS` so C libraries
/// fall back to `clone`). Rootless podman lets a container create user namespaces; a
/// nested user namespace is where most kernel privilege escalations start, so docker's
/// stricter default is taken. One rule per flag: a filter can test `flags & bit == bit`,
/// not `flags & mask != 0`.
pub fn namespace_rules() -> Vec<SyscallRule> {
    let rule = |names: &[&str], errno: u32, args: Vec<Arg>| SyscallRule {
        names: names
            .iter()
            .map(|n| std::borrow::Cow::Owned(n.to_string()))
            .collect(),
        name: None,
        action: Action::Errno,
        errno_ret: Some(errno),
        errno: None,
        args,
        includes: Filter::default(),
        excludes: Filter {
            caps: vec!["CAP_SYS_ADMIN".to_string()],
            ..Filter::default()
        },
    };
    let has = |bit: u64| Arg {
        index: 0,
        value: bit,
        value_two: bit,
        op: CmpOp::MaskedEq,
    };
    let mut rules: Vec<SyscallRule> = NAMESPACE_FLAGS
        .iter()
        .map(|&bit| rule(&["clone", "unshare"], libc::EPERM as u32, vec![has(bit)]))
        .collect();
    rules.push(rule(
        &["unshare"],
        libc::EPERM as u32,
        vec![has(CLONE_NEWTIME)],
    ));
    rules.push(rule(&["clone3"], libc::ENOSYS as u32, vec![]));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(security_opt: &[&str]) -> SecurityOptions {
        SecurityOptions {
            security_opt: security_opt.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_podmans() {
        let c = Confinement::resolve(&SecurityOptions::default()).unwrap();
        assert_eq!(c, Confinement::default());
        assert_eq!(c.caps.0, 0x8004_05fb);
        assert!(c.protect_kernel_paths && !c.no_new_privs);
    }

    #[test]
    fn security_opts_in_both_spellings() {
        let c = Confinement::resolve(&opts(&["seccomp=unconfined", "no-new-privileges"])).unwrap();
        assert_eq!(c.seccomp, SeccompChoice::Unconfined);
        assert!(c.no_new_privs);
        let c =
            Confinement::resolve(&opts(&["seccomp:/p.json", "no-new-privileges:true"])).unwrap();
        assert_eq!(c.seccomp, SeccompChoice::Profile("/p.json".into()));
        assert!(c.no_new_privs);
        let c = Confinement::resolve(&opts(&["no-new-privileges=false", "label=disable"])).unwrap();
        assert!(!c.no_new_privs);
    }

    #[test]
    fn unknown_security_opts_are_refused_by_name() {
        for bad in [
            "apparmor=myprofile",
            "seccomp=",
            "no-new-privileges=maybe",
            "mask=/x",
        ] {
            let err = Confinement::resolve(&opts(&[bad])).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn privileged_is_all_caps_no_filter_no_masks() {
        let c = Confinement::resolve(&SecurityOptions {
            privileged: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.caps, CapMask::all());
        assert_eq!(c.seccomp, SeccompChoice::Unconfined);
        assert!(!c.protect_kernel_paths);
    }

    #[test]
    fn namespace_rules_are_dockers_and_lifted_by_cap_sys_admin() {
        let rules = namespace_rules();
        assert!(rules.iter().all(|r| r.excludes.caps == ["CAP_SYS_ADMIN"]));
        let clone3 = rules.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(clone3.errno_ret, Some(libc::ENOSYS as u32));
        let mask: u64 = rules
            .iter()
            .filter(|r| r.names.iter().any(|n| n == "clone"))
            .map(|r| r.args[0].value)
            .fold(0, |a, b| a | b);
        assert_eq!(mask, 0x7e02_0000, "docker's namespace mask");
        // Compiles for the default set and for one with CAP_SYS_ADMIN (rules then left out).
        let c = Confinement::default();
        let with = Confinement {
            caps: c.caps.with(::caps::Capability::CAP_SYS_ADMIN),
            ..Confinement::default()
        };
        let (a, b) = (
            c.seccomp_filters().unwrap().unwrap(),
            with.seccomp_filters().unwrap().unwrap(),
        );
        assert!(a.instructions() > b.instructions(), "{a:?} vs {b:?}");
        let none = Confinement {
            seccomp: SeccompChoice::Unconfined,
            ..Confinement::default()
        };
        assert!(none.seccomp_filters().unwrap().is_none());
    }
}
