//! The container's terminal for `-t`: a pty of the container's own devpts, whose master the
//! runtime relays to the caller's terminal ([`crate::process::relay`]).
//!
//! The workload never gets the caller's terminal as its controlling terminal: with it,
//! `ioctl(TIOCSTI)` typed commands into the user's shell. With `-t` it gets a fresh pty
//! instead (created inside, so `tty` and `ttyname` name `/dev/pts/N` of the container), and
//! the init hands the master to the runtime over a socket (`SCM_RIGHTS`), waiting until the
//! runtime has copied the window size so the workload starts with the right one.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// Opens a new pty in the container's `/dev/ptmx` (after entering the root); returns the
/// master and the slave, the slave given to `uid` so the workload can reopen `/dev/tty`.
pub fn open_container_pty(uid: u32) -> nix::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // Best effort: with a single mapped id the owner is already the workload's.
    let _ = nix::unistd::fchown(&slave, Some(nix::unistd::Uid::from_raw(uid)), None);
    // SAFETY: PtyMaster owns the descriptor; it is moved into an OwnedFd exactly once.
    let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
    Ok((master, slave))
}

/// In the init: sends `master` to the runtime over `sock` and waits for its go-ahead.
pub fn hand_over(sock: BorrowedFd<'_>, master: OwnedFd) -> nix::Result<()> {
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"t")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    drop(master);
    let mut ack = [0u8; 1];
    match nix::unistd::read(sock, &mut ack) {
        Ok(1) => Ok(()),
        Ok(_) => Err(Errno::EPIPE),
        Err(e) => Err(e),
    }
}

/// In the runtime: receives the master from the init (`None`: the init ended without one).
pub fn receive_master(sock: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}

/// Tells the init the terminal is ready.
pub fn acknowledge(sock: BorrowedFd<'_>) -> nix::Result<()> {
    nix::unistd::write(sock, b"k").map(drop)
}

/// In the workload, after `setsid`: makes `slave` its controlling terminal and its stdin,
/// stdout and stderr.
pub fn attach_stdio(slave: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal a terminal).
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        Errno::result(unsafe { libc::dup2(slave.as_fd().as_raw_fd(), target) })?;
    }
    Ok(())
}
