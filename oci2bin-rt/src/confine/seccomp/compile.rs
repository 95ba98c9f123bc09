//! A [`Profile`] → stacked BPF filters (the design is in the parent module's documentation).

use super::profile::{Arg, CmpOp, Kernel, Profile};
use super::{syscalls, Filters, SeccompError};
use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Compiles `profile` for this architecture and the running kernel (for `minKernel`).
///
/// `caps` is the bitmask (bit N = capability N) of the capabilities the workload will have
/// (effective = bounding set), for the rules' `includes` / `excludes` `caps`. Fails on an
/// architecture other than x86_64 and aarch64, and when a filter would exceed the kernel's
/// 4096 instructions.
pub fn compile(profile: &Profile, caps: u64) -> Result<Filters, SeccompError> {
    let arch = Arch::HOST.ok_or(SeccompError::UnsupportedArch {
        arch: std::env::consts::ARCH,
    })?;
    compile_for(profile, caps, arch, Kernel::running())
}

/// An architecture filters can be compiled for (tests have both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    #[cfg(any(test, target_arch = "x86_64"))]
    X86_64,
    #[cfg(any(test, target_arch = "aarch64"))]
    Aarch64,
}

impl Arch {
    #[cfg(target_arch = "x86_64")]
    pub const HOST: Option<Arch> = Some(Arch::X86_64);
    #[cfg(target_arch = "aarch64")]
    pub const HOST: Option<Arch> = Some(Arch::Aarch64);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const HOST: Option<Arch> = None;

    /// The sorted names and their numbers (see `syscalls.rs`).
    fn table(self) -> (&'static str, &'static [u16]) {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Arch::X86_64 => (syscalls::X86_64_NAMES, &syscalls::X86_64_NUMBERS),
            #[cfg(any(test, target_arch = "aarch64"))]
            Arch::Aarch64 => (syscalls::AARCH64_NAMES, &syscalls::AARCH64_NUMBERS),
        }
    }

    /// Go's name, which profiles use in `arches`.
    fn docker_name(self) -> &'static str {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Arch::X86_64 => "amd64",
            #[cfg(any(test, target_arch = "aarch64"))]
            Arch::Aarch64 => "arm64",
        }
    }

    fn target(self) -> TargetArch {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Arch::X86_64 => TargetArch::x86_64,
            #[cfg(any(test, target_arch = "aarch64"))]
            Arch::Aarch64 => TargetArch::aarch64,
        }
    }
}

/// An architecture's syscall names, split into lines once for binary searches (a linear
/// scan of the table per name would cost about a millisecond for the default profile's 450
/// names).
pub(crate) struct SyscallTable {
    names: Vec<&'static str>,
    numbers: &'static [u16],
}

impl SyscallTable {
    pub fn new(arch: Arch) -> SyscallTable {
        let (names, numbers) = arch.table();
        SyscallTable {
            names: names.lines().collect(),
            numbers,
        }
    }

    /// The number of syscall `name`, if this architecture has it.
    pub fn number(&self, name: &str) -> Option<i64> {
        let i = self.names.binary_search(&name).ok()?;
        Some(i64::from(self.numbers[i]))
    }

    /// Every `(name, number)`, sorted by name.
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(&'static str, i64)> {
        let numbers = self.numbers.iter().map(|&n| i64::from(n));
        self.names.iter().copied().zip(numbers).collect()
    }
}

/// Compiles for `arch` and `kernel` (tests pass both).
pub(crate) fn compile_for(
    profile: &Profile,
    caps: u64,
    arch: Arch,
    kernel: Kernel,
) -> Result<Filters, SeccompError> {
    let origin = "the seccomp profile";
    let default = profile.default_verdict(origin)?;
    let flags = profile.filter_flags(origin)?;
    let table = SyscallTable::new(arch);
    // Every call some rule applies to → allow, whatever the rule's action: the action filters
    // decide what such a call gets.
    let mut base = Chains::default();
    // One per action other than allow, in order of their first rule.
    let mut groups: Vec<(SeccompAction, Chains)> = Vec::new();
    for (i, rule) in profile.syscalls.iter().enumerate() {
        let rule = rule.resolve(i, origin)?;
        if !rule.applies(arch.docker_name(), caps, kernel) {
            continue;
        }
        for name in rule.names {
            // libseccomp skips the names an architecture lacks, and so do we.
            let Some(nr) = table.number(name) else {
                continue;
            };
            let built = |e| build_error(&format!("syscalls[{i}] ({name})"), e);
            let Some(conditions) = conditions(name, rule.args).map_err(built)? else {
                continue;
            };
            if rule.action != SeccompAction::Allow {
                let g = match groups.iter().position(|(a, _)| *a == rule.action) {
                    Some(g) => g,
                    None => {
                        groups.push((rule.action.clone(), Chains::default()));
                        groups.len() - 1
                    }
                };
                groups[g].1.add(nr, conditions.clone()).map_err(built)?;
            }
            base.add(nr, conditions).map_err(built)?;
        }
    }

    // Those that can deny seccomp(2) go last, see "Install order" (a partition, not a sort:
    // the sort's code would cost 5 KB of the runtime).
    let seccomp = table.number("seccomp");
    let denies =
        |action: &SeccompAction| !matches!(action, SeccompAction::Allow | SeccompAction::Log);
    let (mut programs, mut last) = (Vec::new(), Vec::new());
    if default != SeccompAction::Allow {
        let blocks = denies(&default) && !base.allows_unconditionally(seccomp);
        let program = base
            .build(default, SeccompAction::Allow, arch)
            .map_err(|e| build_error("the syscalls the profile has rules for", e))?;
        if blocks { &mut last } else { &mut programs }.push(program);
    }
    for (action, chains) in groups {
        let blocks = denies(&action) && chains.has(seccomp);
        let program = chains
            .build(SeccompAction::Allow, action.clone(), arch)
            .map_err(|e| build_error(&format!("the syscalls the profile gives {action:?}"), e))?;
        if blocks { &mut last } else { &mut programs }.push(program);
    }
    programs.append(&mut last);
    Ok(Filters { programs, flags })
}

fn build_error(filter: &str, source: BackendError) -> SeccompError {
    SeccompError::Build {
        filter: filter.to_owned(),
        source,
    }
}

/// The rules of one filter by syscall number, as seccompiler takes them: an empty list
/// matches the syscall whatever its arguments (a rule without `args` absorbs the others),
/// otherwise any of the rules (ORed) does.
#[derive(Default)]
struct Chains(BTreeMap<i64, Vec<SeccompRule>>);

impl Chains {
    fn add(&mut self, nr: i64, conditions: Vec<SeccompCondition>) -> Result<(), BackendError> {
        use std::collections::btree_map::Entry;
        match self.0.entry(nr) {
            Entry::Vacant(slot) if conditions.is_empty() => {
                slot.insert(Vec::new());
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![SeccompRule::new(conditions)?]);
            }
            // Already unconditional.
            Entry::Occupied(slot) if slot.get().is_empty() => {}
            Entry::Occupied(mut slot) if conditions.is_empty() => slot.get_mut().clear(),
            Entry::Occupied(mut slot) => slot.get_mut().push(SeccompRule::new(conditions)?),
        }
        Ok(())
    }

    fn has(&self, nr: Option<i64>) -> bool {
        nr.is_some_and(|nr| self.0.contains_key(&nr))
    }

    fn allows_unconditionally(&self, nr: Option<i64>) -> bool {
        nr.is_some_and(|nr| self.0.get(&nr).is_some_and(Vec::is_empty))
    }

    fn build(
        self,
        mismatch: SeccompAction,
        matched: SeccompAction,
        arch: Arch,
    ) -> Result<BpfProgram, BackendError> {
        BpfProgram::try_from(SeccompFilter::new(
            self.0,
            mismatch,
            matched,
            arch.target(),
        )?)
    }
}

/// Arguments the kernel reads as 32-bit, by syscall (bit N = argument N): its
/// `SYSCALL_DEFINE`s declare them `int` or `unsigned int` (clone's flags are `unsigned long`
/// but cut with `lower_32_bits`), so the upper half of the register is never looked at and a
/// rule must not look at it either.
const NARROW_ARGS: &[(&str, u8)] = &[
    ("clone", 0b1),
    ("fcntl", 0b11),
    ("getsockopt", 0b111),
    ("ioctl", 0b11),
    ("kill", 0b11),
    ("personality", 0b1),
    ("prctl", 0b1),
    ("setns", 0b11),
    ("setsockopt", 0b111),
    ("socket", 0b111),
    ("socketpair", 0b111),
    ("tgkill", 0b111),
    ("tkill", 0b11),
];

fn narrow(syscall: &str, index: u8) -> bool {
    NARROW_ARGS
        .iter()
        .any(|(name, args)| *name == syscall && args & (1 << index) != 0)
}

/// A 32-bit value, or one sign-extended from 32 bits (an `int` request with bit 31 set).
fn fits_32(value: u64) -> bool {
    value <= u64::from(u32::MAX) || value >> 31 == u64::MAX >> 31
}

/// A rule's `args` as seccompiler conditions, or `None` when they can never all hold (a
/// `SCMP_CMP_MASKED_EQ` whose value has bits outside its mask, which seccompiler would
/// mask away).
fn conditions(syscall: &str, args: &[Arg]) -> Result<Option<Vec<SeccompCondition>>, BackendError> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        // Checked by Profile::check: 0 to 5.
        let index = arg.index as u8;
        let narrow = narrow(syscall, index);
        let (op, value, dword) = match arg.op {
            CmpOp::Eq => (SeccompCmpOp::Eq, arg.value, narrow && fits_32(arg.value)),
            CmpOp::Ne => (SeccompCmpOp::Ne, arg.value, narrow && fits_32(arg.value)),
            // Order comparisons are unsigned: only a value that fits compares the same on
            // the low half.
            CmpOp::Lt | CmpOp::Le | CmpOp::Ge | CmpOp::Gt => {
                let op = match arg.op {
                    CmpOp::Lt => SeccompCmpOp::Lt,
                    CmpOp::Le => SeccompCmpOp::Le,
                    CmpOp::Ge => SeccompCmpOp::Ge,
                    _ => SeccompCmpOp::Gt,
                };
                (op, arg.value, narrow && arg.value <= u64::from(u32::MAX))
            }
            CmpOp::MaskedEq => {
                if arg.value_two & !arg.value != 0 {
                    return Ok(None);
                }
                let dword = narrow && fits_32(arg.value) && fits_32(arg.value_two);
                (SeccompCmpOp::MaskedEq(arg.value), arg.value_two, dword)
            }
        };
        let (len, value) = if dword {
            (SeccompCmpArgLen::Dword, value & u64::from(u32::MAX))
        } else {
            (SeccompCmpArgLen::Qword, value)
        };
        out.push(SeccompCondition::new(index, len, op, value)?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::seccomp::profile::{capability, Action, SyscallRule};

    const UPSTREAM: &str = include_str!("testdata/containers-common-seccomp.json");
    const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];
    const KERNEL: Kernel = Kernel(6, 1, 0);

    /// Our additions to containers-common's profile, as they are written in default.json.
    // musl's request type is c_int, glibc's c_ulong.
    #[allow(clippy::unnecessary_cast)]
    fn additions() -> Vec<SyscallRule> {
        // The request numbers of both architectures (asm-generic's, and x86's are the same).
        assert_eq!(libc::TIOCSTI as u64, 0x5412);
        assert_eq!(libc::TIOCLINUX as u64, 0x541c);
        let json = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names":["ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
             "args":[{"index":1,"value":21522,"op":"SCMP_CMP_EQ"}]},
            {"names":["ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
             "args":[{"index":1,"value":21532,"op":"SCMP_CMP_EQ"}]}]}"#;
        Profile::from_json(json).unwrap().syscalls
    }

    /// `profile` as minified JSON (keys sorted), leaving out empty and default fields.
    fn to_json(profile: &Profile) -> String {
        use serde_json::{json, Map, Value};
        fn name<T: PartialEq + Copy>(names: &[(&'static str, T)], v: T) -> Value {
            json!(names.iter().find(|(_, x)| *x == v).unwrap().0)
        }
        fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
            let empty = match &value {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if !empty {
                map.insert(key.to_owned(), value);
            }
        }
        fn filter(f: &super::super::profile::Filter) -> Value {
            let mut m = Map::new();
            put(&mut m, "caps", json!(f.caps));
            put(&mut m, "arches", json!(f.arches));
            put(&mut m, "minKernel", json!(f.min_kernel));
            Value::Object(m)
        }
        let rules: Vec<Value> = profile
            .syscalls
            .iter()
            .map(|r| {
                let mut m = Map::new();
                put(&mut m, "names", json!(r.names));
                put(&mut m, "name", json!(r.name));
                put(&mut m, "action", name(&Action::NAMES, r.action));
                put(&mut m, "errnoRet", json!(r.errno_ret));
                put(&mut m, "errno", json!(r.errno));
                let args: Vec<Value> = r
                    .args
                    .iter()
                    .map(|a| {
                        let mut m = Map::new();
                        m.insert("index".into(), json!(a.index));
                        m.insert("value".into(), json!(a.value));
                        if a.value_two != 0 {
                            m.insert("valueTwo".into(), json!(a.value_two));
                        }
                        m.insert("op".into(), name(&CmpOp::NAMES, a.op));
                        Value::Object(m)
                    })
                    .collect();
                put(&mut m, "args", Value::Array(args));
                put(&mut m, "includes", filter(&r.includes));
                put(&mut m, "excludes", filter(&r.excludes));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        put(
            &mut m,
            "defaultAction",
            name(&Action::NAMES, profile.default_action),
        );
        put(&mut m, "defaultErrnoRet", json!(profile.default_errno_ret));
        put(&mut m, "defaultErrno", json!(profile.default_errno));
        put(&mut m, "flags", json!(profile.flags));
        put(&mut m, "listenerPath", json!(profile.listener_path));
        m.insert("syscalls".into(), Value::Array(rules));
        Value::Object(m).to_string()
    }

    fn upstream_plus_additions() -> Profile {
        let mut profile = Profile::from_json(UPSTREAM.as_bytes()).unwrap();
        profile.syscalls.extend(additions());
        profile
    }

    /// What default.json is made from upstream: only what can apply on x86_64 or aarch64,
    /// and no field that repeats another.
    fn minified(upstream: &Profile) -> Profile {
        let tables = ARCHES.map(SyscallTable::new);
        let ours = ARCHES.map(Arch::docker_name);
        let mut profile = upstream.clone();
        // check() proved that they agree with the numbers.
        assert!(profile.default_errno_ret.is_some());
        profile.default_errno = None;
        profile.syscalls.retain_mut(|rule| {
            let applies = ours.iter().any(|arch| {
                let listed = |arches: &[String]| arches.iter().any(|a| a == arch);
                (rule.includes.arches.is_empty() || listed(&rule.includes.arches))
                    && !listed(&rule.excludes.arches)
            });
            rule.includes.arches.retain(|a| ours.contains(&a.as_str()));
            rule.excludes.arches.retain(|a| ours.contains(&a.as_str()));
            rule.names
                .retain(|n| tables.iter().any(|t| t.number(n).is_some()));
            if rule.errno.is_some() {
                assert!(rule.errno_ret.is_some());
                rule.errno = None;
            }
            applies && !rule.names.is_empty()
        });
        profile
    }

    fn programs(filters: &Filters) -> Vec<Vec<(u16, u8, u8, u32)>> {
        filters
            .programs()
            .iter()
            .map(|p| p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect())
            .collect()
    }

    /// Capability sets that switch every caps condition of the profile both ways.
    fn cap_sets(profile: &Profile) -> Vec<u64> {
        let mut sets = vec![0, (1 << 41) - 1];
        for rule in &profile.syscalls {
            for cap in rule.includes.caps.iter().chain(&rule.excludes.caps) {
                let bit = 1u64 << capability(cap).unwrap();
                sets.push(bit);
                sets.push(((1 << 41) - 1) & !bit);
            }
        }
        sets.sort_unstable();
        sets.dedup();
        sets
    }

    #[test]
    fn default_json_is_upstream_minified_plus_additions() {
        let mut expected = minified(&Profile::from_json(UPSTREAM.as_bytes()).unwrap());
        expected.syscalls.extend(additions());
        let json = to_json(&expected);
        if std::env::var_os("OCI2BIN_WRITE_DEFAULT_SECCOMP").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/confine/seccomp/default.json"
            );
            std::fs::write(path, format!("{json}\n")).unwrap();
            return;
        }
        assert_eq!(
            json,
            super::super::profile::DEFAULT_JSON.trim_end(),
            "default.json is stale: run this test with OCI2BIN_WRITE_DEFAULT_SECCOMP=1"
        );
        assert_eq!(Profile::default_profile(), expected);
    }

    #[test]
    fn default_profile_compiles_like_upstream_plus_additions_on_both_arches() {
        let upstream = upstream_plus_additions();
        let ours = Profile::default_profile();
        let sets = cap_sets(&upstream);
        assert!(sets.len() > 20, "{sets:?}");
        for arch in ARCHES {
            for &caps in &sets {
                let a = compile_for(&upstream, caps, arch, KERNEL).unwrap();
                let b = compile_for(&ours, caps, arch, KERNEL).unwrap();
                assert_eq!(programs(&a), programs(&b), "{arch:?}, caps {caps:#x}");
            }
        }
    }

    #[test]
    fn default_profile_compiles_for_the_host() {
        for caps in [0, (1 << 41) - 1] {
            let filters = compile(&Profile::default_profile(), caps).unwrap();
            assert!(filters.len() >= 2, "{filters:?}");
            assert!(
                filters.programs().iter().all(|p| p.len() < 4096),
                "{filters:?}"
            );
            // Every filter of the default may not deny seccomp(2): the base one allows it.
        }
    }

    #[test]
    fn the_base_filter_allows_every_rule_and_action_filters_allow_the_rest() {
        // Also: the first filter is the base one, and the errno filters follow in the order
        // of their first rule.
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["seccomp"], "action": "SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let filters = compile_for(&profile, 0, Arch::X86_64, KERNEL).unwrap();
        let ret = |program: &BpfProgram| {
            program
                .iter()
                .filter(|i| i.code == 0x06)
                .map(|i| i.k)
                .collect::<Vec<_>>()
        };
        let p = filters.programs();
        assert_eq!(p.len(), 3);
        let errno = |e: u32| libc::SECCOMP_RET_ERRNO | e;
        // Base: kill for another arch, then per syscall allow / default, default at the end.
        assert!(ret(&p[0]).contains(&libc::SECCOMP_RET_ALLOW));
        assert_eq!(ret(&p[0]).last(), Some(&errno(38)));
        assert!(ret(&p[1]).contains(&errno(13)));
        assert_eq!(ret(&p[1]).last(), Some(&libc::SECCOMP_RET_ALLOW));
        assert!(ret(&p[2]).contains(&errno(1)));
        // getpid, getppid, getuid, getgid and seccomp are in the base filter: five jumps on
        // the syscall number.
        let jeq_nr = p[0]
            .iter()
            .filter(|i| i.code == 0x15 && i.jt == 0 && i.jf == 1)
            .count();
        assert_eq!(jeq_nr, 5);
    }

    #[test]
    fn filters_that_can_deny_seccomp_are_installed_last() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_KILL", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        )
        .unwrap();
        let filters = compile_for(&profile, 0, Arch::X86_64, KERNEL).unwrap();
        let p = filters.programs();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].last().unwrap().k,
            libc::SECCOMP_RET_ALLOW,
            "the errno filter first"
        );
        assert_eq!(
            p[1].last().unwrap().k,
            libc::SECCOMP_RET_KILL_THREAD,
            "the base filter last"
        );
    }

    #[test]
    fn an_allow_everything_profile_has_no_filter() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let filters = compile(&profile, 0).unwrap();
        assert!(filters.is_empty());
        filters.install().unwrap();
    }

    #[test]
    fn rules_apply_by_arch_and_kernel() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["arm64"]}},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd64"]}},
                {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "6.2"}},
                {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "6.2"}}]}"#,
        )
        .unwrap();
        let syscalls = |arch, kernel| {
            let filters = compile_for(&profile, 0, arch, kernel).unwrap();
            let table = SyscallTable::new(arch);
            let mut names: Vec<&str> = ["getpid", "getppid", "getuid", "getgid"]
                .into_iter()
                .filter(|n| {
                    let nr = table.number(n).unwrap() as u32;
                    filters
                        .programs()
                        .iter()
                        .flatten()
                        .any(|i| i.code == 0x15 && i.k == nr)
                })
                .collect();
            names.sort_unstable();
            names
        };
        assert_eq!(syscalls(Arch::X86_64, Kernel(6, 1, 0)), ["getgid"]);
        assert_eq!(syscalls(Arch::X86_64, Kernel(6, 2, 0)), ["getuid"]);
        assert_eq!(
            syscalls(Arch::Aarch64, Kernel(6, 1, 5)),
            ["getgid", "getpid", "getppid"]
        );
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["no_such_syscall", "getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["_llseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        )
        .unwrap();
        // _llseek is 32-bit only: its filter is never built.
        let filters = compile_for(&profile, 0, Arch::X86_64, KERNEL).unwrap();
        assert_eq!(filters.len(), 1);
    }

    #[test]
    fn syscall_tables_match_libc_on_the_host() {
        let table = SyscallTable::new(Arch::HOST.unwrap());
        let known = [
            ("read", libc::SYS_read),
            ("write", libc::SYS_write),
            ("ioctl", libc::SYS_ioctl),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("seccomp", libc::SYS_seccomp),
            ("personality", libc::SYS_personality),
            ("mount", libc::SYS_mount),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("mseal", libc::SYS_mseal),
        ];
        for (name, nr) in known {
            assert_eq!(table.number(name), Some(nr), "{name}");
        }
        // Newer than libc 0.2.191: from linux-raw-sys, the same number on both.
        for arch in ARCHES {
            let t = SyscallTable::new(arch);
            assert_eq!(t.number("fchmodat2"), Some(452), "{arch:?}");
            assert_eq!(t.number("futex_wait"), Some(455), "{arch:?}");
            assert_eq!(t.number(""), None);
            assert_eq!(t.number("@0"), None);
        }
        assert_eq!(
            SyscallTable::new(Arch::X86_64).number("arch_prctl"),
            Some(158)
        );
        assert_eq!(SyscallTable::new(Arch::Aarch64).number("open"), None);
        // No number twice.
        for arch in ARCHES {
            let t = SyscallTable::new(arch);
            let mut numbers: Vec<i64> = t.entries().iter().map(|e| e.1).collect();
            let count = numbers.len();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(numbers.len(), count, "{arch:?}");
            assert!(count > 300, "{arch:?}: {count}");
        }
    }

    fn arg(index: u32, value: u64, value_two: u64, op: CmpOp) -> Arg {
        Arg {
            index,
            value,
            value_two,
            op,
        }
    }

    fn cond(index: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> SeccompCondition {
        SeccompCondition::new(index, len, op, value).unwrap()
    }

    #[test]
    fn arguments_the_kernel_reads_as_32_bit_compare_on_the_low_half() {
        use SeccompCmpArgLen::{Dword, Qword};
        let one =
            |syscall: &str, a: Arg| conditions(syscall, &[a]).unwrap().map(|mut c| c.remove(0));
        // ioctl's request, also sign-extended (musl passes an int).
        assert_eq!(
            one("ioctl", arg(1, 0x5412, 0, CmpOp::Eq)),
            Some(cond(1, Dword, SeccompCmpOp::Eq, 0x5412))
        );
        assert_eq!(
            one("ioctl", arg(1, 0xffff_ffff_8004_5430, 0, CmpOp::Eq)),
            Some(cond(1, Dword, SeccompCmpOp::Eq, 0x8004_5430))
        );
        // A value no 32-bit argument can have keeps libseccomp's 64-bit meaning.
        assert_eq!(
            one("ioctl", arg(1, 1 << 32, 0, CmpOp::Eq)),
            Some(cond(1, Qword, SeccompCmpOp::Eq, 1 << 32))
        );
        assert_eq!(
            one("personality", arg(0, 0xffff_ffff, 0, CmpOp::Eq)),
            Some(cond(0, Dword, SeccompCmpOp::Eq, 0xffff_ffff))
        );
        // docker's clone rule: no namespace flag.
        assert_eq!(
            one("clone", arg(0, 0x7e02_0000, 0, CmpOp::MaskedEq)),
            Some(cond(0, Dword, SeccompCmpOp::MaskedEq(0x7e02_0000), 0))
        );
        // Order comparisons only narrow for a value that fits unsigned.
        assert_eq!(
            one("socket", arg(0, 0xffff_ffff_ffff_fff0, 0, CmpOp::Lt)),
            Some(cond(0, Qword, SeccompCmpOp::Lt, 0xffff_ffff_ffff_fff0))
        );
        assert_eq!(
            one("socket", arg(0, 16, 0, CmpOp::Ge)),
            Some(cond(0, Dword, SeccompCmpOp::Ge, 16))
        );
        // 64-bit arguments: unshare's flags, ioctl's third argument.
        assert_eq!(
            one("unshare", arg(0, 0x1000_0000, 0, CmpOp::MaskedEq)),
            Some(cond(0, Qword, SeccompCmpOp::MaskedEq(0x1000_0000), 0))
        );
        assert_eq!(
            one("ioctl", arg(2, 7, 0, CmpOp::Eq)),
            Some(cond(2, Qword, SeccompCmpOp::Eq, 7))
        );
        // (arg & 0xff) == 0x100 never holds: the rule is dropped, not masked into a match.
        assert_eq!(one("unshare", arg(0, 0xff, 0x100, CmpOp::MaskedEq)), None);
    }
}
