//! The runtime's side of `-t`: the caller's terminal in raw mode, bytes copied both ways
//! between it and the container's pty master, the window size kept in step (`SIGWINCH`),
//! and the terminal's mode restored when the container ends.

use crate::process::signals::{reap, supervised_set, Reaping};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The caller's terminal in raw mode; its previous mode is restored on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal into raw mode (keys reach the container's line discipline,
    /// which handles Ctrl-C, echo and editing).
    pub fn enable() -> nix::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Copies the caller's window size (stdin's or stdout's terminal) to `master`.
pub fn copy_window_size(master: BorrowedFd<'_>) {
    // SAFETY: winsize is plain data filled by TIOCGWINSZ and read by TIOCSWINSZ.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0
            || libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0
        {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Writes all of `buf` to `fd`, waiting while it would block.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> nix::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::NONE)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies what `master` has now to stdout; `false` once it is closed (every slave is gone).
fn pump_output(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    loop {
        match nix::unistd::read(master, buf) {
            Ok(0) | Err(Errno::EIO) => return false,
            Ok(n) => {
                if write_all(std::io::stdout().as_fd(), &buf[..n]).is_err() {
                    return false;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return true,
        }
    }
}

/// Relays between the caller's terminal and `master` while forwarding signals to `child`
/// (the init), until it ends; returns how it ended. The supervised signals must be blocked.
///
/// `SIGTERM` becomes the container's stop signal `stop_signal`, as without a terminal.
pub fn relay_until_exit(
    child: Pid,
    master: OwnedFd,
    stop_signal: Signal,
) -> nix::Result<WaitStatus> {
    let signals = SignalFd::with_flags(
        &supervised_set(stop_signal),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?;
    nix::fcntl::fcntl(
        &master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    let stdin = std::io::stdin();
    let mut buf = vec![0u8; 16 << 10];
    let (mut input_open, mut output_open) = (true, true);
    loop {
        if let Some(status) = reap(child, Reaping::ChildOnly)? {
            if output_open {
                pump_output(master.as_fd(), &mut buf);
            }
            return Ok(status);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if output_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other?,
        };
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        let mut at = 1;
        if output_open {
            if !ready[at].is_empty() {
                output_open = pump_output(master.as_fd(), &mut buf);
            }
            at += 1;
        }
        if input_open && !ready[at].is_empty() {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => input_open = false,
                Ok(n) => {
                    if write_all(master.as_fd(), &buf[..n]).is_err() {
                        input_open = false;
                    }
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => input_open = false,
            }
        }
        if !ready[0].is_empty() {
            while let Some(info) = signals.read_signal()? {
                match info.ssi_signo as i32 {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => copy_window_size(master.as_fd()),
                    libc::SIGTERM => {
                        let _ = kill(child, stop_signal);
                    }
                    signo => {
                        if let Ok(signal) = Signal::try_from(signo) {
                            let _ = kill(child, signal);
                        }
                    }
                }
            }
        }
    }
}
