//! The container's init: pid 1 of the new pid namespace.
//!
//! Pid 1 has duties no ordinary program fulfils: the kernel does not apply default signal
//! actions to it (so a workload run as pid 1 ignores `SIGTERM` unless it handles it), and
//! every orphan in the namespace becomes its child to reap. So our own code stays pid 1: it
//! forks the workload, forwards signals to it, reaps zombies, and exits with the workload's
//! code. When pid 1 exits the kernel kills everything else in the namespace, which is what
//! docker does when the main process ends.

use crate::confine::policy::Confinement;
use crate::confine::seccomp::Filters;
use crate::ns::error::ContainerError;
use crate::ns::report::Reporter;
use crate::ns::syscall::Syscall;
use crate::ns::userns::AppliedMapping;
use crate::process::exec::exec_or_exit;
use crate::process::exit::exit_code;
use crate::process::signals::{supervise, Reaping};
use crate::process::spec::ProcessSpec;
use nix::unistd::ForkResult;
use std::os::fd::{AsFd, OwnedFd};

/// Forks the workload (on the container's terminal `tty` with `-t`) and supervises it; returns the exit code for the container (the
/// workload's code, or 128 + N if signal N killed it).
///
/// Must run in the pid namespace's init, after the root is entered, with the supervised
/// signals blocked.
pub fn run_init(
    sys: &dyn Syscall,
    spec: &ProcessSpec,
    mapping: AppliedMapping,
    (confinement, seccomp): (&Confinement, Option<&Filters>),
    tty: Option<OwnedFd>,
    stop_signal: nix::sys::signal::Signal,
    reporter: &Reporter,
) -> Result<i32, ContainerError> {
    // SAFETY: the init is single-threaded: it was cloned from the single-threaded runtime.
    let fork = unsafe { nix::unistd::fork() };
    match fork.map_err(|errno| ContainerError::Process {
        step: "fork the workload process",
        errno,
    })? {
        ForkResult::Child => exec_or_exit(
            sys,
            spec,
            mapping,
            confinement,
            seccomp,
            tty.as_ref().map(|t| t.as_fd()),
            reporter,
        ),
        ForkResult::Parent { child } => {
            // Only the workload may hold the terminal: the runtime sees it close (EIO) when
            // the workload and everything it started are gone.
            drop(tty);
            let status = supervise(child, Reaping::All, stop_signal, None).map_err(|errno| {
                ContainerError::Process {
                    step: "wait for the workload process",
                    errno,
                }
            })?;
            Ok(exit_code(status).unwrap_or(crate::process::exit::RUNTIME_ERROR))
        }
    }
}
