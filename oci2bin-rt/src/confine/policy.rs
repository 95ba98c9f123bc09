//! What confinement a run gets, from docker's options: `--cap-add`, `--cap-drop`,
//! `--security-opt`, `--privileged`, `--read-only`.
//!
//! Resolved on the host before the container is created, so a wrong option or an unreadable
//! seccomp profile is reported (exit 125) before anything starts.

use crate::confine::caps::{self, CapMask, UnknownCapability};
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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
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
}
