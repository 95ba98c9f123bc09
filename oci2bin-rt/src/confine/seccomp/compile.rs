//! A [`Profile`] → stacked BPF filters (the design is in the parent module's documentation).

use super::bpf::{self, Chains, Cond, Op, Verdict};
use super::profile::{Arg, CmpOp, Kernel, Profile};
use super::{syscalls, Filters, SeccompError};

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

    /// The syscall table (see `syscalls.rs`).
    fn table(self) -> SyscallTable {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Arch::X86_64 => SyscallTable {
                names: syscalls::X86_64_NAMES,
                offsets: &syscalls::X86_64_OFFSETS,
                numbers: &syscalls::X86_64_NUMBERS,
            },
            #[cfg(any(test, target_arch = "aarch64"))]
            Arch::Aarch64 => SyscallTable {
                names: syscalls::AARCH64_NAMES,
                offsets: &syscalls::AARCH64_OFFSETS,
                numbers: &syscalls::AARCH64_NUMBERS,
            },
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

    /// `AUDIT_ARCH_*`: the ELF machine, 64-bit, little-endian (what `seccomp_data.arch` says).
    pub(crate) fn audit(self) -> u32 {
        match self {
            #[cfg(any(test, target_arch = "x86_64"))]
            Arch::X86_64 => 0xc000_003e,
            #[cfg(any(test, target_arch = "aarch64"))]
            Arch::Aarch64 => 0xc000_00b7,
        }
    }
}

/// An architecture's syscall names (sorted) and numbers, searched in place.
#[derive(Clone, Copy)]
pub(crate) struct SyscallTable {
    names: &'static str,
    offsets: &'static [u16],
    numbers: &'static [u16],
}

impl SyscallTable {
    pub fn new(arch: Arch) -> SyscallTable {
        arch.table()
    }

    /// This machine's table, if it has one.
    pub fn host() -> Option<SyscallTable> {
        Arch::HOST.map(SyscallTable::new)
    }

    /// The `i`-th name.
    fn name(&self, i: usize) -> &'static str {
        let (start, next) = (self.offsets[i], self.offsets[i + 1]);
        &self.names[usize::from(start)..usize::from(next) - 1]
    }

    fn find(&self, name: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.numbers.len());
        while low < high {
            let mid = (low + high) / 2;
            match self.name(mid).cmp(name) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The number of syscall `name`, if this architecture has it.
    pub fn number(&self, name: &str) -> Option<usize> {
        self.find(name).map(|i| usize::from(self.numbers[i]))
    }

    /// The table's own copy of `name`, if it has the syscall (profiles keep that instead of
    /// allocating the name).
    pub fn interned(&self, name: &str) -> Option<&'static str> {
        self.find(name).map(|i| self.name(i))
    }

    /// The largest syscall number.
    pub fn largest(&self) -> usize {
        self.numbers.iter().copied().max().map_or(0, usize::from)
    }

    /// Every `(name, number)`, sorted by name.
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(&'static str, usize)> {
        (0..self.numbers.len())
            .map(|i| (self.name(i), usize::from(self.numbers[i])))
            .collect()
    }
}

/// The filters of a profile before they become BPF.
pub(crate) struct Plan {
    /// `defaultAction`.
    pub default: Verdict,
    /// Every call some rule applies to (the base filter allows them).
    pub base: Chains,
    /// One per action other than allow, in order of their first rule.
    pub groups: Vec<(Verdict, Chains)>,
    flags: libc::c_ulong,
    seccomp: Option<usize>,
}

/// Decides which rules apply for `arch`, `caps` and `kernel`, and groups them by action.
pub(crate) fn plan(
    profile: &Profile,
    caps: u64,
    arch: Arch,
    kernel: Kernel,
) -> Result<Plan, SeccompError> {
    let origin = "the seccomp profile";
    let table = SyscallTable::new(arch);
    let mut plan = Plan {
        default: profile.default_verdict(origin)?,
        base: Chains::for_table(table.largest()),
        groups: Vec::new(),
        flags: profile.filter_flags(origin)?,
        seccomp: table.number("seccomp"),
    };
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
            let Some(conditions) = conditions(name, rule.args) else {
                continue;
            };
            if rule.action != Verdict::Allow {
                let groups = &mut plan.groups;
                let g = match groups.iter().position(|(a, _)| *a == rule.action) {
                    Some(g) => g,
                    None => {
                        groups.push((rule.action, Chains::for_table(table.largest())));
                        groups.len() - 1
                    }
                };
                groups[g].1.add(nr, conditions.clone());
            }
            plan.base.add(nr, conditions);
        }
    }
    Ok(plan)
}

/// Compiles for `arch` and `kernel` (tests pass both).
pub(crate) fn compile_for(
    profile: &Profile,
    caps: u64,
    arch: Arch,
    kernel: Kernel,
) -> Result<Filters, SeccompError> {
    let plan = plan(profile, caps, arch, kernel)?;
    // Those that can deny seccomp(2) go last, see "Install order".
    let seccomp = plan.seccomp;
    let denies = |v: Verdict| !matches!(v, Verdict::Allow | Verdict::Log);
    let (mut programs, mut last) = (Vec::new(), Vec::new());
    if plan.default != Verdict::Allow {
        let blocks = denies(plan.default) && !seccomp.is_some_and(|nr| plan.base.always(nr));
        let program = bpf::program(&plan.base, Verdict::Allow, plan.default, arch.audit())
            .map_err(|e| build_error("the syscalls the profile has rules for", e))?;
        if blocks { &mut last } else { &mut programs }.push(program);
    }
    for (action, chains) in &plan.groups {
        let blocks = denies(*action) && seccomp.is_some_and(|nr| chains.has(nr));
        let program = bpf::program(chains, *action, Verdict::Allow, arch.audit())
            .map_err(|e| build_error(&format!("the syscalls the profile gives {action:?}"), e))?;
        if blocks { &mut last } else { &mut programs }.push(program);
    }
    programs.append(&mut last);
    Ok(Filters {
        programs,
        flags: plan.flags,
    })
}

fn build_error(filter: &str, e: bpf::TooLarge) -> SeccompError {
    SeccompError::Build {
        filter: filter.to_owned(),
        problem: e.0,
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

/// A rule's `args` as conditions, or `None` when they can never all hold (a
/// `SCMP_CMP_MASKED_EQ` whose value has bits outside its mask).
fn conditions(syscall: &str, args: &[Arg]) -> Option<Vec<Cond>> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        // Checked by Profile::check: 0 to 5.
        let index = arg.index as u8;
        let narrow = narrow(syscall, index);
        let (op, value, dword) = match arg.op {
            CmpOp::Eq => (Op::Eq, arg.value, narrow && fits_32(arg.value)),
            CmpOp::Ne => (Op::Ne, arg.value, narrow && fits_32(arg.value)),
            // Order comparisons are unsigned: only a value that fits compares the same on
            // the low half.
            CmpOp::Lt | CmpOp::Le | CmpOp::Ge | CmpOp::Gt => {
                let op = match arg.op {
                    CmpOp::Lt => Op::Lt,
                    CmpOp::Le => Op::Le,
                    CmpOp::Ge => Op::Ge,
                    _ => Op::Gt,
                };
                (op, arg.value, narrow && arg.value <= u64::from(u32::MAX))
            }
            CmpOp::MaskedEq => {
                if arg.value_two & !arg.value != 0 {
                    return None;
                }
                let dword = narrow && fits_32(arg.value) && fits_32(arg.value_two);
                (Op::MaskedEq(arg.value), arg.value_two, dword)
            }
        };
        out.push(Cond {
            index,
            wide: !dword,
            // The upper half is not compared, so it is left out of the value too.
            op: match op {
                Op::MaskedEq(mask) if dword => Op::MaskedEq(mask & u64::from(u32::MAX)),
                op => op,
            },
            value: if dword {
                value & u64::from(u32::MAX)
            } else {
                value
            },
        });
    }
    Some(out)
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

    /// What the installed stack returns for a call (see `bpf::tests::stack`).
    fn verdict(filters: &Filters, arch: Arch, name: &str, args: [u64; 6]) -> u32 {
        let nr = SyscallTable::new(arch).number(name).unwrap() as u32;
        bpf::tests::stack(filters.programs(), arch.audit(), nr, args)
    }

    const ERRNO: u32 = libc::SECCOMP_RET_ERRNO;

    #[test]
    fn the_base_filter_allows_every_rule_and_action_filters_allow_the_rest() {
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getegid"], "action": "SCMP_ACT_LOG"},
                {"names": ["geteuid"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        )
        .unwrap();
        for arch in ARCHES {
            let filters = compile_for(&profile, 0, arch, KERNEL).unwrap();
            // Base, EACCES, EPERM, log, kill.
            assert_eq!(filters.len(), 5);
            let v = |name| verdict(&filters, arch, name, [0; 6]);
            assert_eq!(v("getpid"), libc::SECCOMP_RET_ALLOW);
            assert_eq!(v("getppid"), ERRNO | 13);
            assert_eq!(v("getuid"), ERRNO | 1);
            assert_eq!(v("getgid"), ERRNO | 13);
            assert_eq!(v("getegid"), libc::SECCOMP_RET_LOG);
            assert_eq!(v("geteuid"), libc::SECCOMP_RET_KILL_PROCESS);
            assert_eq!(v("gettid"), ERRNO | 38);
            let unknown = bpf::tests::stack(filters.programs(), arch.audit(), 1000, [0; 6]);
            assert_eq!(unknown, ERRNO | 38);
            // Another architecture (i386 on x86_64) is killed.
            let i386 = bpf::tests::stack(filters.programs(), 0x4000_0003, 20, [0; 6]);
            assert_eq!(i386, libc::SECCOMP_RET_KILL_PROCESS);
        }
    }

    #[test]
    fn the_most_restrictive_rule_wins_and_equal_kinds_go_to_the_later_action() {
        // socket(AF_NETLINK, ..., NETLINK_AUDIT) matches both errno rules: the action whose
        // first rule comes later was installed later and wins among errnos; a kill beats
        // both.
        let profile = Profile::from_json(
            br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS",
                 "args": [{"index": 1, "value": 99, "op": "SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let filters = compile_for(&profile, 0, Arch::X86_64, KERNEL).unwrap();
        let v = |args| verdict(&filters, Arch::X86_64, "socket", args);
        assert_eq!(v([16, 3, 0, 0, 0, 0]), ERRNO | 13);
        assert_eq!(v([2, 3, 9, 0, 0, 0]), ERRNO | 22);
        assert_eq!(v([16, 3, 9, 0, 0, 0]), ERRNO | 22);
        assert_eq!(v([16, 99, 9, 0, 0, 0]), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(v([2, 1, 0, 0, 0, 0]), libc::SECCOMP_RET_ALLOW);
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
        let seccomp = libc::SYS_seccomp as u32;
        let audit = Arch::X86_64.audit();
        // The errno filter first: it allows seccomp(2); the base one, which kills it, last.
        assert_eq!(
            bpf::tests::run(&p[0], audit, seccomp, [0; 6]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            bpf::tests::run(&p[1], audit, seccomp, [0; 6]),
            libc::SECCOMP_RET_KILL_THREAD
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
            assert_eq!(table.number(name), Some(nr as usize), "{name}");
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
            let mut numbers: Vec<usize> = t.entries().iter().map(|e| e.1).collect();
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

    fn cond(index: u8, wide: bool, op: Op, value: u64) -> Cond {
        Cond {
            index,
            wide,
            op,
            value,
        }
    }

    #[test]
    fn arguments_the_kernel_reads_as_32_bit_compare_on_the_low_half() {
        let (dword, qword) = (false, true);
        let one = |syscall: &str, a: Arg| conditions(syscall, &[a]).map(|mut c| c.remove(0));
        // ioctl's request, also sign-extended (musl passes an int).
        assert_eq!(
            one("ioctl", arg(1, 0x5412, 0, CmpOp::Eq)),
            Some(cond(1, dword, Op::Eq, 0x5412))
        );
        assert_eq!(
            one("ioctl", arg(1, 0xffff_ffff_8004_5430, 0, CmpOp::Eq)),
            Some(cond(1, dword, Op::Eq, 0x8004_5430))
        );
        // A value no 32-bit argument can have keeps libseccomp's 64-bit meaning.
        assert_eq!(
            one("ioctl", arg(1, 1 << 32, 0, CmpOp::Eq)),
            Some(cond(1, qword, Op::Eq, 1 << 32))
        );
        assert_eq!(
            one("personality", arg(0, 0xffff_ffff, 0, CmpOp::Eq)),
            Some(cond(0, dword, Op::Eq, 0xffff_ffff))
        );
        // docker's clone rule: no namespace flag.
        assert_eq!(
            one("clone", arg(0, 0x7e02_0000, 0, CmpOp::MaskedEq)),
            Some(cond(0, dword, Op::MaskedEq(0x7e02_0000), 0))
        );
        // Order comparisons only narrow for a value that fits unsigned.
        assert_eq!(
            one("socket", arg(0, 0xffff_ffff_ffff_fff0, 0, CmpOp::Lt)),
            Some(cond(0, qword, Op::Lt, 0xffff_ffff_ffff_fff0))
        );
        assert_eq!(
            one("socket", arg(0, 16, 0, CmpOp::Ge)),
            Some(cond(0, dword, Op::Ge, 16))
        );
        // 64-bit arguments: unshare's flags, ioctl's third argument.
        assert_eq!(
            one("unshare", arg(0, 0x1000_0000, 0, CmpOp::MaskedEq)),
            Some(cond(0, qword, Op::MaskedEq(0x1000_0000), 0))
        );
        assert_eq!(
            one("ioctl", arg(2, 7, 0, CmpOp::Eq)),
            Some(cond(2, qword, Op::Eq, 7))
        );
        // (arg & 0xff) == 0x100 never holds: the rule is dropped, not masked into a match.
        assert_eq!(one("unshare", arg(0, 0xff, 0x100, CmpOp::MaskedEq)), None);
    }
}
