//! The container: namespaces, id maps, the root file system and entering it.
//!
//! [`container::run_container`] is the entry point; the steps it performs are in the other
//! modules, each going through the [`syscall::Syscall`] seam so their order and arguments are
//! unit-tested without privileges.

pub mod binds;
pub mod container;
pub mod copy;
pub mod diagnose;
pub mod error;
pub mod etc;
pub mod ident;
pub mod mounts;
pub mod pivot;
#[cfg(test)]
pub mod recording;
pub mod report;
pub mod rootfs;
pub mod subid;
pub mod syscall;
pub mod userns;

pub use container::{run_container, ContainerSpec};
pub use error::ContainerError;
pub use syscall::{LinuxSyscall, Syscall};
