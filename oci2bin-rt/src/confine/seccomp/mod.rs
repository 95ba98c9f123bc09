//! The workload's system call filter: docker's seccomp profile format, compiled to classic
//! BPF (`bpf.rs`, checked against `seccompiler` in its tests) and installed with
//! `seccomp(2)`.
//!
//! [`Profile`] is the JSON of `docker run --security-opt seccomp=FILE` (and of podman's
//! `containers.conf`); [`Profile::default_profile`] is containers-common's `seccomp.json`,
//! the profile rootless podman applies, plus `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` denied
//! (both push input into a terminal the workload shares with the user).
//!
//! # Semantics
//!
//! As in docker (moby's `setupSeccomp` and libseccomp): `defaultAction` applies to a syscall
//! no rule matches. A rule (`syscalls[i]`) names syscalls and an action; its `args`
//! conditions are ANDed, several rules for one syscall are ORed. A rule is left out when its
//! `includes` / `excludes` say so for this architecture (`arches`, Go's names: `amd64`,
//! `arm64`), the workload's capabilities (`caps`: `includes` needs all of them, `excludes`
//! drops the rule if the workload has any) or the running kernel (`minKernel`). A syscall
//! name this architecture does not have is skipped, as libseccomp does.
//!
//! # Design: one filter per action, stacked
//!
//! Each BPF filter has one action for a match and one for a mismatch (which keeps each
//! filter a plain search on the syscall number), so a profile becomes a stack of filters
//! ([`Filters`]):
//!
//! - the *base* filter: every syscall some rule applies to, with that rule's conditions,
//!   → allow; anything else → the default action (left out when the default is to allow);
//! - one filter per other action of the rules (each errno value is its own action): that
//!   action's rules → the action; anything else → allow.
//!
//! The kernel runs every filter of a thread and takes the most restrictive result
//! (kill process > kill thread > trap > errno > trace > log > allow). A call that matches an
//! `ERRNO(EPERM)` rule is allowed by the base filter and gets `EPERM` from its own filter,
//! whatever the default action is (even a default kill, because the base filter lets every
//! rule's calls through); a call no rule matches gets the default from the base filter and
//! allow from all others. A call matching rules of two different actions gets the more
//! restrictive one (libseccomp's result for such overlapping rules is not defined either).
//! For two results of the same kind (two errno values) the kernel takes the filter installed
//! last: filters are installed in the order of the first rule of each action in the profile.
//!
//! # Install order
//!
//! Every `seccomp(2)` call after the first one is itself filtered by the filters already
//! installed, so the filters that could deny `seccomp` (a base filter whose default is not to
//! allow and that does not allow `seccomp` unconditionally, or an action filter with a rule
//! for `seccomp`) are installed after all others. With two of them the second install fails
//! if the first one denies it, and [`Filters::install`] says so. The caller must have set
//! `no_new_privs` (or hold `CAP_SYS_ADMIN` in its user namespace) and must install last
//! thing before `execve` (the workload's first syscalls are `execve`'s own, which the profile
//! must allow, as docker's do).
//!
//! # Cost
//!
//! Measured on x86_64 musl (release, `opt-level = "z"`, LTO), for the default profile:
//! 53 KB of stripped binary (8 KB of it the embedded profile, 5 KB the syscall table),
//! 0.5-0.6 ms to parse and compile (mostly musl's allocator mapping and unmapping memory)
//! and 0.25 ms for the kernel to load the three filters (593 instructions).
//!
//! # Argument widths
//!
//! libseccomp compares all 64 bits of an argument. For the arguments the kernel itself reads
//! as 32-bit (`ioctl`'s request, `personality`'s persona, `clone`'s flags, `socket`'s family,
//! type and protocol, and a few more, see `compile.rs`) only the low 32 bits are compared,
//! where the profile's value is a 32-bit one (or a sign-extended one): the upper half of
//! those registers is whatever the caller left there (musl passes an `int` request
//! sign-extended), so comparing it would let `ioctl(fd, TIOCSTI | 1 << 32)` past a rule that
//! denies `TIOCSTI`, and would deny `personality(0xffffffff)` passed as `-1`.
//!
//! # Not expressible
//!
//! The filters check the architecture first and kill the process for any other one, so
//! 32-bit code (i386 `int 0x80`, arm32 compat) cannot run under a profile, where docker adds
//! the sub-architectures of its `archMap`; x32 syscall numbers get the default action.
//! `SCMP_ACT_NOTIFY` (and `listenerPath`) needs an agent oci2bin does not have;
//! `SCMP_ACT_TRACE` returns `ENOSYS`, which is what the kernel does for it with no tracer.

mod bpf;
mod compile;
mod json;
mod profile;
mod syscalls;

pub use compile::compile;
pub use profile::{Action, Arg, CmpOp, Filter, Profile, SyscallRule};

use std::io;
use std::path::PathBuf;

/// The BPF programs to install, in order: one or more stacked filters (see the module
/// documentation), each within the kernel's limit of 4096 instructions.
pub struct Filters {
    programs: Vec<bpf::Program>,
    /// `SECCOMP_FILTER_FLAG_*` from the profile's `flags`, passed with every filter.
    flags: libc::c_ulong,
}

impl Filters {
    /// Installs every filter on the calling thread (its children inherit them), in order.
    ///
    /// Needs either `no_new_privs` or `CAP_SYS_ADMIN` in the current user namespace (the
    /// caller ensures that). Does not allocate, so it can run in a child forked from a
    /// multi-threaded process. A profile that allows everything has no filter, and then this
    /// does nothing.
    pub fn install(&self) -> Result<(), SeccompError> {
        for (i, program) in self.programs.iter().enumerate() {
            let prog = libc::sock_fprog {
                // Cannot truncate: compile() refuses programs longer than 4096.
                len: program.len() as libc::c_ushort,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: `prog` points at `program`, which lives until the call returns; the
            // kernel copies the instructions.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            if rc != 0 {
                let source = if rc < 0 {
                    io::Error::last_os_error()
                } else {
                    // With SECCOMP_FILTER_FLAG_TSYNC: the id of a thread that could not be
                    // synchronised.
                    io::Error::from_raw_os_error(libc::EAGAIN)
                };
                return Err(SeccompError::Install {
                    index: i + 1,
                    count: self.programs.len(),
                    hint: install_hint(i, rc, source.raw_os_error()),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Number of stacked filters.
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    /// True when the profile allows everything and nothing needs to be installed.
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// Total number of BPF instructions over all filters, for `--debug` (the kernel allows
    /// 32768, counting 4 more per filter).
    pub fn instructions(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// The programs, in install order (tests compare them).
    #[cfg(test)]
    pub(crate) fn programs(&self) -> &[bpf::Program] {
        &self.programs
    }
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filters")
            .field("filters", &self.len())
            .field("instructions", &self.instructions())
            .field("flags", &self.flags)
            .finish()
    }
}

/// What to do about a failed `seccomp(2)` call, by errno and position.
fn install_hint(index: usize, rc: libc::c_long, errno: Option<i32>) -> &'static str {
    if rc > 0 {
        return "another thread of the process could not take the filter \
                (SECCOMP_FILTER_FLAG_TSYNC); remove that flag from the profile";
    }
    match errno {
        Some(libc::EACCES) => {
            "the process has neither no_new_privs nor CAP_SYS_ADMIN (a bug in oci2bin's start-up \
             order; please report it)"
        }
        Some(libc::EINVAL) => {
            "this kernel rejects the filter or one of the profile's flags; check the profile's \
             \"flags\", or run the container unconfined"
        }
        Some(libc::ENOMEM) => {
            "the filters are too large for the kernel together (32768 instructions); use a \
             profile with fewer rules"
        }
        Some(libc::EFAULT) | Some(libc::ENOSYS) if index == 0 => {
            "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER); run the container \
             unconfined"
        }
        _ if index > 0 => {
            "the filters already installed deny seccomp(2) itself: the profile has more than \
             one filter that can deny seccomp; allow \"seccomp\" in the profile"
        }
        _ => "run the container unconfined, or report this with the profile",
    }
}

/// A profile that cannot be read, parsed, compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile file cannot be read.
    #[error("cannot read the seccomp profile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The profile is not JSON, or a field of it has the wrong type or an unknown name.
    #[error("{origin}, line {line} column {column} ({field}): {problem}")]
    Parse {
        /// "the seccomp profile FILE".
        origin: String,
        /// Where, 1-based.
        line: usize,
        /// Where, 1-based, in characters.
        column: usize,
        /// The path of the value: `syscalls[3].args[0].op`, or "the top level".
        field: String,
        /// What is wrong and, where it helps, what is expected.
        problem: String,
    },
    /// A field has a value docker would reject too, or one oci2bin cannot apply.
    #[error("{origin}: {field}: {problem}")]
    Invalid {
        /// "the seccomp profile FILE".
        origin: String,
        /// Where: `defaultAction`, `syscalls[3].args[0].op`, ...
        field: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// The profile's rules do not fit a BPF filter.
    #[error(
        "cannot build the seccomp filter for {filter}: {problem}; use a profile with fewer \
         rules for that action"
    )]
    Build {
        /// Which of the stacked filters ("the syscalls the profile gives Errno(1)").
        filter: String,
        /// "more than 4096 instructions", "a rule with too many conditions".
        problem: &'static str,
    },
    /// Seccomp profiles are only compiled for x86_64 and aarch64.
    #[error(
        "seccomp profiles are supported on x86_64 and aarch64, and this is {arch}; run the \
         container unconfined (docker's --security-opt seccomp=unconfined)"
    )]
    UnsupportedArch {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// `seccomp(2)` refused a filter.
    #[error("cannot install seccomp filter {index} of {count}: {source}; {hint}")]
    Install {
        /// 1-based position in install order.
        index: usize,
        /// How many filters the profile has.
        count: usize,
        /// The kernel's answer.
        #[source]
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
}

#[cfg(test)]
mod tests;
