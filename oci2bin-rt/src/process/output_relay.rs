//! stdout and stderr the workload could not reopen, passed through pipes as docker does.
//!
//! Images log to `/dev/stdout` (nginx's `access.log -> /dev/stdout`), which opens
//! `/proc/self/fd/1` again. That fails when the caller's stdout is a socket (systemd's
//! journal: `ENXIO`) or a file the workload's user may not open (`EACCES`). For those, and
//! only those, the runtime puts a pipe in between: a small relay process copies from the
//! pipe to the caller's descriptor until every writer is gone. Terminals, pipes, character
//! devices and regular files of the caller's are passed on as they are, at no cost.

use nix::errno::Errno;
use nix::sys::stat::{fstat, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{dup2_raw, fork, ForkResult, Pid};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};

/// Whether the workload could not reopen `fd` through `/proc/self/fd`: a socket, or a
/// regular file (or anything else) that is not a terminal, pipe or device and is not the
/// caller's.
fn needs_relay(fd: BorrowedFd<'_>) -> bool {
    let Ok(st) = fstat(fd) else { return false };
    match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
        SFlag::S_IFIFO | SFlag::S_IFCHR => false,
        SFlag::S_IFREG => st.st_uid != nix::unistd::geteuid().as_raw(),
        _ => true,
    }
}

/// Reads `from` until end of file, handing each chunk to `sink`, which says whether to go
/// on (the copy loop of this relay and of the detached containers' log).
pub(crate) fn read_until_eof(from: &OwnedFd, mut sink: impl FnMut(&[u8]) -> bool) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match nix::unistd::read(from, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if !sink(&buf[..n]) {
                    return;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The relays in place: for each relayed descriptor, the caller's original and the relay.
#[derive(Debug, Default)]
pub struct OutputRelays {
    relays: Vec<(i32, OwnedFd, Pid)>,
}

impl OutputRelays {
    /// Puts a relay in front of stdout and stderr where the workload could not reopen them
    /// (see the module). Must be called while the process is single-threaded. Best effort:
    /// a descriptor whose relay cannot be set up is left as it is.
    pub fn start() -> OutputRelays {
        let mut out = OutputRelays::default();
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            // SAFETY: stdout and stderr stay open for the process's life.
            let target = unsafe { BorrowedFd::borrow_raw(fd) };
            if !needs_relay(target) {
                continue;
            }
            // Close-on-exec: the workload must not inherit the caller's descriptor.
            let original = nix::fcntl::fcntl(target, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
                // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
                .map(|raw| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
            let (Ok(original), Ok((read, write))) =
                (original, nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))
            else {
                continue;
            };
            // SAFETY: single-threaded (documented requirement).
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // Only the pipe's end and the original: no other writer kept alive here,
                    // and no signal of the caller's terminal stops the copy before the end.
                    let _ = nix::sys::signal::sigprocmask(
                        nix::sys::signal::SigmaskHow::SIG_BLOCK,
                        Some(&nix::sys::signal::SigSet::all()),
                        None,
                    );
                    drop(write);
                    for stdio in 0..3 {
                        let _ = nix::unistd::close(stdio);
                    }
                    read_until_eof(&read, |chunk| {
                        crate::process::relay::write_all(original.as_fd(), chunk).is_ok()
                    });
                    std::process::exit(0)
                }
                Ok(ForkResult::Parent { child }) => {
                    // SAFETY: `fd` is stdout or stderr, replaced by the pipe's write end and
                    // kept open (not owned by the returned handle).
                    if unsafe { dup2_raw(&write, fd) }
                        .map(IntoRawFd::into_raw_fd)
                        .is_ok()
                    {
                        out.relays.push((fd, original, child));
                    }
                }
                Err(_) => {}
            }
        }
        out
    }

    /// How many descriptors are relayed, for `--debug`.
    pub fn count(&self) -> usize {
        self.relays.len()
    }
}

impl Drop for OutputRelays {
    /// Gives stdout and stderr back (closing the pipes' last writers once the container is
    /// gone) and waits for each relay to have copied everything.
    fn drop(&mut self) {
        for (fd, original, _) in &self.relays {
            // SAFETY: `fd` is stdout or stderr, kept open; `original` is the caller's.
            let _ = unsafe { dup2_raw(original, *fd) }.map(IntoRawFd::into_raw_fd);
        }
        for (_, original, child) in self.relays.drain(..) {
            drop(original);
            while waitpid(child, None) == Err(Errno::EINTR) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_and_files_of_others_are_relayed_pipes_and_own_files_not() {
        let (a, _b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::empty(),
        )
        .unwrap();
        assert!(needs_relay(a.as_fd()));
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(!needs_relay(r.as_fd()));
        let f = tempfile::tempfile().unwrap();
        assert!(!needs_relay(f.as_fd()));
        let null = std::fs::File::open("/dev/null").unwrap();
        assert!(!needs_relay(null.as_fd()));
    }
}
