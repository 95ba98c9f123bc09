//! Which host ids the container's ids map to, and writing those maps.
//!
//! With `newuidmap`/`newgidmap` and a subordinate range for the caller, the container gets
//! many ids like rootless podman, so an entrypoint may `chown` and drop to another user. The
//! caller is the workload's own id: container root when the image starts as root (ids 1..N
//! are then the range), or the image's user when it does not, as podman's `--userns=keep-id`
//! does (the other ids, root included, are then the range). Either way the unpacked image,
//! which the caller owns, belongs to the workload, so an image whose user writes to its own
//! directories (postgres with `USER postgres`) runs as it does under docker. Without the
//! helpers the caller is mapped to one id only, the workload's, the same way. A caller that
//! is host root gets the identity map of all ids.

use crate::ns::diagnose::diagnose;
use crate::ns::error::ContainerError;
use crate::ns::report::Reporter;
use crate::ns::subid::{read_ranges, SubidRange};
use crate::ns::syscall::Syscall;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// The user running the binary, on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUser {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Login name from the host's `/etc/passwd`, when listed there (subuid entries may use
    /// either the name or the uid).
    pub name: Option<String>,
}

impl HostUser {
    /// The calling user's ids; the name is looked up only when it is needed (see
    /// [`HostUser::named`]).
    pub fn current() -> Self {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        Self {
            uid,
            gid,
            name: None,
        }
    }

    /// The same user, named from the host's `/etc/passwd` (read directly: a static binary
    /// has no NSS, and the subuid files only ever use local names or numbers).
    pub fn named(mut self) -> Self {
        self.name = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| name_of_uid(&passwd, self.uid));
        self
    }
}

/// The login name of `uid` in a passwd file's contents.
fn name_of_uid(passwd: &str, uid: u32) -> Option<String> {
    crate::process::user::parse_passwd(passwd)
        .into_iter()
        .find(|e| e.uid == uid)
        .map(|e| e.name)
}

/// How container ids are mapped to host ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingKind {
    /// The caller becomes the single container id `IdMapPlan::target_*`.
    Single,
    /// The caller is the workload's container id (`IdMapPlan::target_*`); the other
    /// container ids, from 0 up, are the subordinate ranges. Set by the setuid helpers.
    Subordinate {
        /// Subordinate uid ranges, mapped to container uids from 0 up, skipping the workload's.
        uids: Vec<SubidRange>,
        /// Subordinate gid ranges, mapped to container gids from 0 up, skipping the workload's.
        gids: Vec<SubidRange>,
        /// Path of `newuidmap`.
        newuidmap: PathBuf,
        /// Path of `newgidmap`.
        newgidmap: PathBuf,
    },
    /// The caller is host root: container ids are host ids.
    Identity,
}

/// The mapping chosen for a run, with what it is needed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMapPlan {
    /// The caller.
    pub host: HostUser,
    /// The uid the workload runs as inside the container.
    pub target_uid: u32,
    /// The gid the workload runs as inside the container.
    pub target_gid: u32,
    /// The mapping.
    pub kind: MappingKind,
}

/// What the container can rely on once the maps are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedMapping {
    /// One id each: `setgroups` is denied, the process already has the workload's ids.
    Single,
    /// Many ids: the init is container root and may set any mapped ids and groups.
    Full,
}

impl AppliedMapping {
    /// One byte for the pipe from the parent to the container's init.
    pub fn to_byte(self) -> u8 {
        match self {
            AppliedMapping::Single => b'S',
            AppliedMapping::Full => b'F',
        }
    }

    /// The inverse of [`AppliedMapping::to_byte`].
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'S' => Some(AppliedMapping::Single),
            b'F' => Some(AppliedMapping::Full),
            _ => None,
        }
    }
}

/// Number of container ids the ranges provide after id 0.
fn range_total(ranges: &[SubidRange]) -> u64 {
    ranges.iter().map(|r| u64::from(r.count)).sum()
}

/// Chooses the mapping from what the host offers; pure, so every case is testable.
///
/// `helpers` are the paths of `newuidmap` and `newgidmap` when both are installed.
pub fn choose_mapping(
    host: HostUser,
    target_uid: u32,
    target_gid: u32,
    uid_ranges: Vec<SubidRange>,
    gid_ranges: Vec<SubidRange>,
    helpers: Option<(PathBuf, PathBuf)>,
) -> IdMapPlan {
    let kind = if host.uid == 0 {
        MappingKind::Identity
    } else {
        match helpers {
            Some((newuidmap, newgidmap))
                if !uid_ranges.is_empty()
                    && !gid_ranges.is_empty()
                    && u64::from(target_uid) <= range_total(&uid_ranges)
                    && u64::from(target_gid) <= range_total(&gid_ranges) =>
            {
                MappingKind::Subordinate {
                    uids: uid_ranges,
                    gids: gid_ranges,
                    newuidmap,
                    newgidmap,
                }
            }
            _ => MappingKind::Single,
        }
    };
    IdMapPlan {
        host,
        target_uid,
        target_gid,
        kind,
    }
}

/// The only directories `newuidmap`/`newgidmap` are taken from. They are setuid programs
/// the runtime runs with the caller's authority, so they are never looked up in `PATH`: an
/// empty or relative entry there (`PATH=:/usr/bin`) would run a `./newuidmap` planted in
/// the current directory.
pub const HELPER_DIRS: [&str; 5] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"];

/// Finds the executable `name` in [`HELPER_DIRS`] (`dirs` in tests).
fn find_helper_in(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|dir| Path::new(dir).join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Finds the host helper `name` (see [`HELPER_DIRS`]).
fn find_helper(name: &str) -> Option<PathBuf> {
    find_helper_in(name, &HELPER_DIRS)
}

/// Chooses the mapping for the calling user on this host: reads `/etc/subuid`,
/// `/etc/subgid` and looks for the helpers in [`HELPER_DIRS`].
pub fn detect_mapping(target_uid: u32, target_gid: u32) -> IdMapPlan {
    let mut host = HostUser::current();
    if host.uid == 0 {
        return choose_mapping(host, target_uid, target_gid, vec![], vec![], None);
    }
    let helpers = find_helper("newuidmap").zip(find_helper("newgidmap"));
    let (uids, gids) = if helpers.is_some() {
        // subuid lines name the user or its uid: only now is the name worth reading.
        host = host.named();
        let name = host.name.as_deref();
        (
            read_ranges(Path::new("/etc/subuid"), name, host.uid),
            read_ranges(Path::new("/etc/subgid"), name, host.gid),
        )
    } else {
        (vec![], vec![])
    };
    choose_mapping(host, target_uid, target_gid, uids, gids, helpers)
}

impl IdMapPlan {
    /// A one-line description for `--debug`.
    pub fn describe(&self) -> String {
        match &self.kind {
            MappingKind::Single => format!(
                "user mapping: single id (host {}:{} is container {}:{}, setgroups denied); \
                 no usable subordinate ids in /etc/subuid and /etc/subgid with newuidmap/newgidmap",
                self.host.uid, self.host.gid, self.target_uid, self.target_gid
            ),
            MappingKind::Subordinate { uids, gids, .. } => format!(
                "user mapping: subordinate ids (container {}:{}, the workload's, is host {}:{}; \
                 the other container ids from 0 up are host uids {} and gids {})",
                self.target_uid,
                self.target_gid,
                self.host.uid,
                self.host.gid,
                describe_ranges(uids),
                describe_ranges(gids),
            ),
            MappingKind::Identity => format!(
                "user mapping: identity (caller is host root); workload runs as {}:{}",
                self.target_uid, self.target_gid
            ),
        }
    }
}

/// `100000-165535,200000-200009`.
fn describe_ranges(ranges: &[SubidRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            format!(
                "{}-{}",
                r.start,
                u64::from(r.start) + u64::from(r.count) - 1
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The `newuidmap`/`newgidmap` arguments: `PID OWNER HOST 1`, then the ranges laid over the
/// container ids from 0 up, skipping `owner` (a range that straddles it is split).
fn helper_args(pid: Pid, owner: u32, host_id: u32, ranges: &[SubidRange]) -> Vec<String> {
    let mut args = vec![
        pid.to_string(),
        owner.to_string(),
        host_id.to_string(),
        "1".into(),
    ];
    let owner = u64::from(owner);
    let mut next: u64 = 0;
    for r in ranges {
        let (mut host, mut left) = (u64::from(r.start), u64::from(r.count));
        while left > 0 {
            if next == owner {
                next += 1;
                continue;
            }
            let n = if next < owner {
                left.min(owner - next)
            } else {
                left
            };
            args.extend([next.to_string(), host.to_string(), n.to_string()]);
            next += n;
            host += n;
            left -= n;
        }
    }
    args
}

/// Writes `contents` to `/proc/PID/NAME`, explaining a refusal.
fn write_proc(
    sys: &dyn Syscall,
    pid: Pid,
    name: &str,
    contents: &str,
    sysctl_root: &Path,
) -> Result<(), ContainerError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    sys.write_file(&path, contents.as_bytes())
        .map_err(|errno| ContainerError::IdMap {
            path,
            errno,
            diagnosis: diagnose(sysctl_root, errno),
        })
}

/// Writes the single-id maps from the parent namespace (allowed for one's own ids, after
/// `setgroups` is denied).
fn write_single(
    sys: &dyn Syscall,
    pid: Pid,
    plan: &IdMapPlan,
    sysctl_root: &Path,
) -> Result<(), ContainerError> {
    write_proc(sys, pid, "setgroups", "deny", sysctl_root)?;
    let uid_map = format!("{} {} 1\n", plan.target_uid, plan.host.uid);
    write_proc(sys, pid, "uid_map", &uid_map, sysctl_root)?;
    let gid_map = format!("{} {} 1\n", plan.target_gid, plan.host.gid);
    write_proc(sys, pid, "gid_map", &gid_map, sysctl_root)
}

/// A helper's result as `Err(description)` unless it exited successfully.
fn helper_outcome(result: std::io::Result<std::process::ExitStatus>) -> Result<(), String> {
    match result {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(status.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the id maps of the process `pid` (just created in a new user namespace) according
/// to `plan`, from the parent namespace.
///
/// `newuidmap` and `newgidmap` run concurrently (each is a setuid exec costing about a
/// millisecond or two). If both fail (not setuid, ranges refused) the single-id mapping is
/// written instead, with a warning: the container still runs, only without the extra ids.
/// If only `newuidmap` fails, the caller's uid alone is mapped (to the workload's uid) while
/// the gids stay many, which still lets the init set the workload's groups. If only
/// `newgidmap` fails there is no consistent fallback and it is an error.
pub fn write_maps(
    sys: &dyn Syscall,
    pid: Pid,
    plan: &IdMapPlan,
    sysctl_root: &Path,
    reporter: &Reporter,
) -> Result<AppliedMapping, ContainerError> {
    match &plan.kind {
        MappingKind::Single => {
            write_single(sys, pid, plan, sysctl_root)?;
            Ok(AppliedMapping::Single)
        }
        MappingKind::Identity => {
            let all = "0 0 4294967295\n";
            write_proc(sys, pid, "uid_map", all, sysctl_root)?;
            write_proc(sys, pid, "gid_map", all, sysctl_root)?;
            Ok(AppliedMapping::Full)
        }
        MappingKind::Subordinate {
            uids,
            gids,
            newuidmap,
            newgidmap,
        } => {
            let uid_args = helper_args(pid, plan.target_uid, plan.host.uid, uids);
            let gid_args = helper_args(pid, plan.target_gid, plan.host.gid, gids);
            let mut results = sys
                .run_helpers(&[(newuidmap, &uid_args), (newgidmap, &gid_args)])
                .into_iter()
                .map(helper_outcome);
            let uid_result = results.next().unwrap_or(Err("not run".into()));
            let gid_result = results.next().unwrap_or(Err("not run".into()));
            match (uid_result, gid_result) {
                (Ok(()), Ok(())) => Ok(AppliedMapping::Full),
                (Err(detail), Err(_)) => {
                    reporter.warn(format_args!(
                        "{} and {} failed ({detail}); mapping only your own ids to {}:{} instead",
                        newuidmap.display(),
                        newgidmap.display(),
                        plan.target_uid,
                        plan.target_gid
                    ));
                    write_single(sys, pid, plan, sysctl_root)?;
                    Ok(AppliedMapping::Single)
                }
                (Err(detail), Ok(())) => {
                    reporter.warn(format_args!(
                        "{} failed ({detail}); mapping only your own uid, to {}",
                        newuidmap.display(),
                        plan.target_uid
                    ));
                    let uid_map = format!("{} {} 1\n", plan.target_uid, plan.host.uid);
                    write_proc(sys, pid, "uid_map", &uid_map, sysctl_root)?;
                    Ok(AppliedMapping::Full)
                }
                (Ok(()), Err(detail)) => Err(ContainerError::IdMapHelper {
                    program: newgidmap.clone(),
                    detail,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};
    use nix::errno::Errno;

    fn user() -> HostUser {
        HostUser {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
        }
    }

    fn range(start: u32, count: u32) -> SubidRange {
        SubidRange { start, count }
    }

    fn helpers() -> Option<(PathBuf, PathBuf)> {
        Some(("/usr/bin/newuidmap".into(), "/usr/bin/newgidmap".into()))
    }

    fn quiet() -> Reporter {
        Reporter::new("test", false)
    }

    #[test]
    fn chooses_subordinate_only_with_helpers_and_covering_ranges() {
        let r = vec![range(100000, 65536)];
        let plan = choose_mapping(user(), 999, 999, r.clone(), r.clone(), helpers());
        assert!(matches!(plan.kind, MappingKind::Subordinate { .. }));
        // No helpers.
        let plan = choose_mapping(user(), 999, 999, r.clone(), r.clone(), None);
        assert_eq!(plan.kind, MappingKind::Single);
        // No gid range.
        let plan = choose_mapping(user(), 0, 0, r.clone(), vec![], helpers());
        assert_eq!(plan.kind, MappingKind::Single);
        // The image's user is outside the range.
        let small = vec![range(100000, 100)];
        let plan = choose_mapping(user(), 1000, 1000, small.clone(), small, helpers());
        assert_eq!(plan.kind, MappingKind::Single);
        // Host root.
        let plan = choose_mapping(
            HostUser {
                uid: 0,
                gid: 0,
                name: None,
            },
            5,
            5,
            vec![],
            vec![],
            None,
        );
        assert_eq!(plan.kind, MappingKind::Identity);
    }

    #[test]
    fn single_mapping_denies_setgroups_before_gid_map() {
        let sys = RecordingSyscall::new();
        let plan = choose_mapping(user(), 999, 998, vec![], vec![], None);
        let applied = write_maps(
            &sys,
            Pid::from_raw(77),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        assert_eq!(applied, AppliedMapping::Single);
        assert_eq!(
            sys.calls(),
            vec![
                Call::WriteFile("/proc/77/setgroups".into(), "deny".into()),
                Call::WriteFile("/proc/77/uid_map".into(), "999 1000 1\n".into()),
                Call::WriteFile("/proc/77/gid_map".into(), "998 1000 1\n".into()),
            ]
        );
    }

    #[test]
    fn subordinate_mapping_runs_helpers_with_all_ranges() {
        let sys = RecordingSyscall::new();
        let uids = vec![range(100000, 65536), range(300000, 10)];
        let gids = vec![range(200000, 65536)];
        let plan = choose_mapping(user(), 0, 0, uids, gids, helpers());
        let applied = write_maps(
            &sys,
            Pid::from_raw(77),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        assert_eq!(applied, AppliedMapping::Full);
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            sys.calls(),
            vec![
                Call::RunHelper(
                    "/usr/bin/newuidmap".into(),
                    args("77 0 1000 1 1 100000 65536 65537 300000 10")
                ),
                Call::RunHelper(
                    "/usr/bin/newgidmap".into(),
                    args("77 0 1000 1 1 200000 65536")
                ),
            ]
        );
    }

    #[test]
    fn a_non_root_workload_is_the_caller_and_the_ranges_go_around_it() {
        let sys = RecordingSyscall::new();
        let uids = vec![range(100000, 50), range(300000, 65536)];
        let gids = vec![range(200000, 65536)];
        let plan = choose_mapping(user(), 70, 5, uids, gids, helpers());
        write_maps(
            &sys,
            Pid::from_raw(77),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        // uids: 70 is the caller; 0..50 the first range; 50..70 and 71.. the second one.
        assert_eq!(
            sys.calls(),
            vec![
                Call::RunHelper(
                    "/usr/bin/newuidmap".into(),
                    args("77 70 1000 1 0 100000 50 50 300000 20 71 300020 65516")
                ),
                Call::RunHelper(
                    "/usr/bin/newgidmap".into(),
                    args("77 5 1000 1 0 200000 5 6 200005 65531")
                ),
            ]
        );
        assert!(
            plan.describe()
                .contains("container 70:5, the workload's, is host 1000:1000"),
            "{}",
            plan.describe()
        );
    }

    #[test]
    fn failing_helpers_fall_back_to_single() {
        let sys = RecordingSyscall::new();
        sys.helper_exit_code("/usr/bin/newuidmap", 1);
        sys.helper_exit_code("/usr/bin/newgidmap", 1);
        let r = vec![range(100000, 65536)];
        let plan = choose_mapping(user(), 999, 999, r.clone(), r, helpers());
        let applied = write_maps(
            &sys,
            Pid::from_raw(5),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        assert_eq!(applied, AppliedMapping::Single);
        let calls = sys.calls();
        assert!(matches!(calls[0], Call::RunHelper(..)));
        assert!(matches!(calls[1], Call::RunHelper(..)));
        assert_eq!(
            calls[2..],
            [
                Call::WriteFile("/proc/5/setgroups".into(), "deny".into()),
                Call::WriteFile("/proc/5/uid_map".into(), "999 1000 1\n".into()),
                Call::WriteFile("/proc/5/gid_map".into(), "999 1000 1\n".into()),
            ]
        );
    }

    #[test]
    fn failing_newuidmap_alone_maps_the_uid_singly_and_keeps_many_gids() {
        let sys = RecordingSyscall::new();
        sys.helper_exit_code("/usr/bin/newuidmap", 1);
        let r = vec![range(100000, 65536)];
        let plan = choose_mapping(user(), 999, 999, r.clone(), r, helpers());
        let applied = write_maps(
            &sys,
            Pid::from_raw(5),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        assert_eq!(applied, AppliedMapping::Full);
        assert_eq!(
            sys.calls().pop().unwrap(),
            Call::WriteFile("/proc/5/uid_map".into(), "999 1000 1\n".into())
        );
    }

    #[test]
    fn failing_newgidmap_alone_is_an_error() {
        let sys = RecordingSyscall::new();
        sys.helper_exit_code("/usr/bin/newgidmap", 1);
        let r = vec![range(100000, 65536)];
        let plan = choose_mapping(user(), 0, 0, r.clone(), r, helpers());
        let err = write_maps(
            &sys,
            Pid::from_raw(5),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/usr/bin/newgidmap failed"),
            "{err}"
        );
    }

    #[test]
    fn identity_mapping_for_host_root() {
        let sys = RecordingSyscall::new();
        let root = HostUser {
            uid: 0,
            gid: 0,
            name: None,
        };
        let plan = choose_mapping(root, 0, 0, vec![], vec![], None);
        write_maps(
            &sys,
            Pid::from_raw(9),
            &plan,
            Path::new("/proc/sys"),
            &quiet(),
        )
        .unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::WriteFile("/proc/9/uid_map".into(), "0 0 4294967295\n".into()),
                Call::WriteFile("/proc/9/gid_map".into(), "0 0 4294967295\n".into()),
            ]
        );
    }

    #[test]
    fn refused_map_write_carries_a_diagnosis() {
        let sys = RecordingSyscall::new();
        sys.fail_when(
            |c| matches!(c, Call::WriteFile(p, _) if p.ends_with("uid_map")),
            Errno::EPERM,
        );
        let plan = choose_mapping(user(), 0, 0, vec![], vec![], None);
        let err = write_maps(
            &sys,
            Pid::from_raw(9),
            &plan,
            Path::new("/nonexistent"),
            &quiet(),
        )
        .unwrap_err();
        match err {
            ContainerError::IdMap { path, errno, .. } => {
                assert_eq!(path, Path::new("/proc/9/uid_map"));
                assert_eq!(errno, Errno::EPERM);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn names_the_host_user_from_passwd() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(name_of_uid(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_of_uid(passwd, 1001), None);
    }

    #[test]
    fn describes_the_mode() {
        let plan = choose_mapping(user(), 999, 999, vec![], vec![], None);
        assert!(plan.describe().starts_with("user mapping: single id"));
        let r = vec![range(100000, 65536)];
        let plan = choose_mapping(user(), 0, 0, r.clone(), r, helpers());
        assert!(plan.describe().contains("100000-165535"));
    }

    #[test]
    fn helpers_come_from_fixed_absolute_dirs_only() {
        assert!(HELPER_DIRS.iter().all(|d| d.starts_with('/')));
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("newuidmap");
        std::fs::write(&planted, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(find_helper_in("newuidmap", &[d]), Some(planted));
        // The search never consults PATH or the current directory.
        assert_eq!(find_helper_in("newuidmap", &["/nonexistent-dir"]), None);
    }
}
