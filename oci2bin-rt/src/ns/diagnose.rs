//! Why an unprivileged user namespace could not be created, and how to fix it.
//!
//! A bare `EPERM` or `ENOSPC` from `clone(CLONE_NEWUSER)` tells a user nothing. The usual
//! causes are three host settings, each visible under `/proc/sys`; the checks take that
//! directory as a parameter so they can be tested with fake files.

use nix::errno::Errno;
use std::fmt;
use std::path::Path;

/// A host setting that prevents unprivileged user namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// Debian/Ubuntu kernels' `kernel.unprivileged_userns_clone=0`.
    UnprivilegedCloneDisabled,
    /// `user.max_user_namespaces=0` (or the limit is reached).
    MaxUserNamespaces(u64),
    /// Ubuntu's AppArmor `kernel.apparmor_restrict_unprivileged_userns=1`: the namespace is
    /// created but without capabilities, so id maps and mounts fail.
    AppArmorRestricted,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::UnprivilegedCloneDisabled => write!(
                f,
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); \
                 enable them with `sudo sysctl -w kernel.unprivileged_userns_clone=1` \
                 (persist it in /etc/sysctl.d/)"
            ),
            Blocker::MaxUserNamespaces(0) => write!(
                f,
                "user namespaces are disabled (user.max_user_namespaces=0); allow them with \
                 `sudo sysctl -w user.max_user_namespaces=15000` (persist it in /etc/sysctl.d/)"
            ),
            Blocker::MaxUserNamespaces(limit) => write!(
                f,
                "the limit of user namespaces (user.max_user_namespaces={limit}) is reached; \
                 stop other containers or raise it with `sudo sysctl -w user.max_user_namespaces=N`"
            ),
            Blocker::AppArmorRestricted => write!(
                f,
                "AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns=1); either allow them with \
                 `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or give this \
                 binary an AppArmor profile with the `userns,` rule \
                 (see /etc/apparmor.d/bwrap-userns-restrict for an example)"
            ),
        }
    }
}

/// The causes that apply, given the errno that the failing operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// The failing operation's error.
    pub errno: Errno,
    /// Host settings found to block user namespaces (empty if none was recognised).
    pub blockers: Vec<Blocker>,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.blockers.is_empty() {
            if self.errno == Errno::EINVAL {
                // The kernel accepts these clone flags; user-mode emulators do not.
                return write!(
                    f,
                    "no host setting explains it: EINVAL for namespace clone flags usually \
                     means the binary runs under a user-mode emulator such as \
                     qemu-aarch64-static (qemu-user cannot create namespaces; run it on a \
                     native machine or a full system VM)"
                );
            }
            return write!(
                f,
                "no host setting explains it: if this runs inside another container, its \
                 seccomp profile or missing privileges may forbid nested user namespaces \
                 (docker: --security-opt seccomp=unconfined); a chroot also forbids them"
            );
        }
        for (i, blocker) in self.blockers.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{blocker}")?;
        }
        Ok(())
    }
}

/// A sysctl value under `sysctl_root` (normally `/proc/sys`), such as `kernel/foo`, as an
/// integer; `None` if absent or unreadable (the setting does not exist on this kernel).
fn read_sysctl(sysctl_root: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(sysctl_root.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Finds the host settings that explain `errno` from creating or configuring a user
/// namespace, reading the sysctls below `sysctl_root`.
pub fn diagnose(sysctl_root: &Path, errno: Errno) -> Diagnosis {
    let mut blockers = Vec::new();
    if read_sysctl(sysctl_root, "kernel/unprivileged_userns_clone") == Some(0) {
        blockers.push(Blocker::UnprivilegedCloneDisabled);
    }
    match read_sysctl(sysctl_root, "user/max_user_namespaces") {
        Some(0) => blockers.push(Blocker::MaxUserNamespaces(0)),
        Some(limit) if errno == Errno::ENOSPC || errno == Errno::EUSERS => {
            blockers.push(Blocker::MaxUserNamespaces(limit))
        }
        _ => {}
    }
    if read_sysctl(sysctl_root, "kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        blockers.push(Blocker::AppArmorRestricted);
    }
    Diagnosis { errno, blockers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn einval_points_at_emulators() {
        let root = sysctls(&[("user/max_user_namespaces", "63000")]);
        let d = diagnose(root.path(), Errno::EINVAL);
        assert!(d.blockers.is_empty());
        assert!(d.to_string().contains("qemu"), "{d}");
        assert!(!diagnose(root.path(), Errno::EPERM)
            .to_string()
            .contains("qemu"));
    }

    fn sysctls(values: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in values {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, format!("{value}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn debian_switch_off() {
        let root = sysctls(&[
            ("kernel/unprivileged_userns_clone", "0"),
            ("user/max_user_namespaces", "63000"),
        ]);
        let d = diagnose(root.path(), Errno::EPERM);
        assert_eq!(d.blockers, vec![Blocker::UnprivilegedCloneDisabled]);
        assert!(d
            .to_string()
            .contains("sysctl -w kernel.unprivileged_userns_clone=1"));
    }

    #[test]
    fn max_user_namespaces_zero_or_exhausted() {
        let root = sysctls(&[("user/max_user_namespaces", "0")]);
        let d = diagnose(root.path(), Errno::ENOSPC);
        assert_eq!(d.blockers, vec![Blocker::MaxUserNamespaces(0)]);
        assert!(d.to_string().contains("user.max_user_namespaces=0"));

        let root = sysctls(&[("user/max_user_namespaces", "10")]);
        let d = diagnose(root.path(), Errno::ENOSPC);
        assert_eq!(d.blockers, vec![Blocker::MaxUserNamespaces(10)]);
        // A non-zero limit does not explain EPERM.
        assert!(diagnose(root.path(), Errno::EPERM).blockers.is_empty());
    }

    #[test]
    fn apparmor_restriction() {
        let root = sysctls(&[
            ("kernel/apparmor_restrict_unprivileged_userns", "1"),
            ("kernel/unprivileged_userns_clone", "1"),
        ]);
        let d = diagnose(root.path(), Errno::EPERM);
        assert_eq!(d.blockers, vec![Blocker::AppArmorRestricted]);
        assert!(d
            .to_string()
            .contains("apparmor_restrict_unprivileged_userns=0"));
    }

    #[test]
    fn nothing_recognised_gives_generic_advice() {
        let root = sysctls(&[("kernel/apparmor_restrict_unprivileged_userns", "0")]);
        let d = diagnose(root.path(), Errno::EPERM);
        assert!(d.blockers.is_empty());
        assert!(d.to_string().contains("seccomp"));
    }
}
