//! The workload's capabilities: the set rootless podman gives by default, changed with
//! docker's `--cap-add`/`--cap-drop`, and applied to every capability set of the process.
//!
//! Without this the workload, as root of its user namespace, holds all 41 capabilities there:
//! enough to mount file systems, create nested namespaces and remount `/sys` read-write.
//! Podman's 11 (rootless default, `containers.conf`) are taken rather than docker's 14:
//! the three docker adds (`MKNOD`, `NET_RAW`, `AUDIT_WRITE`) do nothing useful in a rootless
//! user namespace (device nodes cannot be created, raw sockets are the host network's), so
//! leaving them out only narrows the attack surface.

use caps::Capability;

/// Rootless podman's default capabilities (`CapBnd` `00000000800405fb`).
pub const DEFAULT: [Capability; 11] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SETUID,
    Capability::CAP_SYS_CHROOT,
];

/// A set of capabilities as a bit mask (bit N is capability N, as in `/proc/PID/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapMask(pub u64);

impl CapMask {
    /// Podman's default set ([`DEFAULT`]).
    pub fn default_set() -> CapMask {
        DEFAULT.iter().fold(CapMask(0), |m, &c| m.with(c))
    }

    /// Every capability this crate knows (what `--privileged` and `--cap-add ALL` give).
    pub fn all() -> CapMask {
        caps::all().into_iter().fold(CapMask(0), |m, c| m.with(c))
    }

    /// This set plus `cap`.
    pub fn with(self, cap: Capability) -> CapMask {
        CapMask(self.0 | cap.bitmask())
    }

    /// This set without `cap`.
    pub fn without(self, cap: Capability) -> CapMask {
        CapMask(self.0 & !cap.bitmask())
    }

    /// Whether `cap` is in the set.
    pub fn has(self, cap: Capability) -> bool {
        self.0 & cap.bitmask() != 0
    }

    /// The names in the set, docker's spelling without the `CAP_` prefix, for `--debug`.
    pub fn names(self) -> Vec<String> {
        // In number order, by slot rather than by sorting (a sort would cost the runtime
        // a few KB for this one debug line).
        let mut slots: [Option<Capability>; 64] = [None; 64];
        for c in caps::all().into_iter().filter(|&c| self.has(c)) {
            slots[usize::from(c.index()) % 64] = Some(c);
        }
        slots
            .iter()
            .flatten()
            .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
            .collect()
    }
}

/// A `--cap-add`/`--cap-drop` value that names no capability.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?} (use names such as NET_ADMIN or CAP_NET_ADMIN, or ALL; see capabilities(7))")]
pub struct UnknownCapability(pub String);

/// One `--cap-add`/`--cap-drop` value: a capability or `ALL`.
fn parse_one(word: &str) -> Result<Option<Capability>, UnknownCapability> {
    let upper = word.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(None);
    }
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    name.parse::<Capability>()
        .map(Some)
        .map_err(|_| UnknownCapability(word.to_string()))
}

/// The workload's set from docker's options, with docker's rules: `--cap-drop ALL` keeps
/// only what `--cap-add` names; `--cap-add ALL` gives everything but what `--cap-drop`
/// names; otherwise the default set minus the drops plus the adds. Values may be
/// comma-separated (`--cap-add NET_ADMIN,SYS_TIME`).
pub fn resolve(add: &[String], drop: &[String]) -> Result<CapMask, UnknownCapability> {
    let parse_all = |list: &[String]| -> Result<(bool, Vec<Capability>), UnknownCapability> {
        let mut all = false;
        let mut caps = Vec::new();
        for word in list
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|w| !w.is_empty())
        {
            match parse_one(word)? {
                None => all = true,
                Some(c) => caps.push(c),
            }
        }
        Ok((all, caps))
    };
    let (add_all, adds) = parse_all(add)?;
    let (drop_all, drops) = parse_all(drop)?;
    let mask = if drop_all && add_all {
        CapMask::all()
    } else if drop_all {
        adds.iter().fold(CapMask(0), |m, &c| m.with(c))
    } else if add_all {
        drops.iter().fold(CapMask::all(), |m, &c| m.without(c))
    } else {
        let kept = drops
            .iter()
            .fold(CapMask::default_set(), |m, &c| m.without(c));
        adds.iter().fold(kept, |m, &c| m.with(c))
    };
    Ok(mask)
}

/// Limits the calling process to `keep`: every other capability leaves the bounding set
/// (so no later `execve` can regain it), and the inheritable and ambient sets are emptied
/// (docker's CVE-2022-24769 fix: a file's inheritable bits then grant nothing). Needs
/// `CAP_SETPCAP`, so it runs before the workload's ids are switched; `execve` then gives
/// a root workload exactly `keep` (effective = permitted = bounding) and any other user none.
pub fn limit_to(keep: CapMask) -> Result<(), caps::errors::CapsError> {
    // One prctl per capability to drop; a capability this kernel does not know (EINVAL)
    // is not in the bounding set to begin with. Cheaper than probing each one first.
    for cap in caps::all() {
        if !keep.has(cap) {
            // SAFETY: PR_CAPBSET_DROP takes the capability number and no memory.
            let res = unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, cap.index() as libc::c_ulong, 0, 0, 0)
            };
            if res != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(format!(
                    "cannot drop {cap} from the bounding set: {}",
                    std::io::Error::last_os_error()
                )
                .into());
            }
        }
    }
    caps::clear(None, caps::CapSet::Ambient)?;
    caps::clear(None, caps::CapSet::Inheritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_is_rootless_podmans_set() {
        assert_eq!(CapMask::default_set().0, 0x0000_0000_8004_05fb);
        assert_eq!(resolve(&[], &[]).unwrap(), CapMask::default_set());
    }

    #[test]
    fn add_and_drop_like_docker() {
        let m = resolve(&s(&["net_admin", "CAP_SYS_TIME"]), &s(&["chown"])).unwrap();
        assert!(m.has(Capability::CAP_NET_ADMIN) && m.has(Capability::CAP_SYS_TIME));
        assert!(!m.has(Capability::CAP_CHOWN));
        assert!(m.has(Capability::CAP_SETUID));
        assert_eq!(resolve(&[], &s(&["ALL"])).unwrap(), CapMask(0));
        let only = resolve(&s(&["NET_RAW"]), &s(&["all"])).unwrap();
        assert_eq!(only, CapMask(0).with(Capability::CAP_NET_RAW));
        let most = resolve(&s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(most, CapMask::all().without(Capability::CAP_SYS_ADMIN));
        let comma = resolve(&s(&["NET_RAW,MKNOD"]), &[]).unwrap();
        assert!(comma.has(Capability::CAP_MKNOD) && comma.has(Capability::CAP_NET_RAW));
    }

    #[test]
    fn unknown_names_are_refused_with_the_name() {
        let err = resolve(&s(&["NET_ADMINN"]), &[]).unwrap_err();
        assert!(err.to_string().contains("\"NET_ADMINN\""), "{err}");
    }

    #[test]
    fn names_are_sorted_without_prefix() {
        let names = CapMask::default_set().names();
        assert_eq!(names.len(), 11);
        assert_eq!(names[0], "CHOWN");
        assert_eq!(names.last().unwrap(), "SETFCAP");
    }
}
