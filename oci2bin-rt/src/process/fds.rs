//! Descriptors the caller passed in are closed before anything else happens.
//!
//! Whatever the caller had open (a directory as fd 3, a socket, a pipe to a password
//! manager) would otherwise be held by the container's init for the container's life, where
//! `/proc/1/fd/3` was a route out of the container (`exec 3</tmp; ./app sh -c 'echo x >
//! /proc/1/fd/3/f'` wrote a host file). docker passes no descriptor but stdio either.

/// Closes every descriptor above stderr (`close_range(2)`, or one by one from
/// `/proc/self/fd` on kernels before 5.9). Call first thing in `main`.
pub fn close_inherited() {
    // SAFETY: closing descriptors this process does not use yet; no Rust object owns them.
    let res = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if res == 0 {
        return;
    }
    for fd in open_above_stderr() {
        // SAFETY: as above; the read_dir descriptor is already closed (EBADF is harmless).
        unsafe {
            libc::close(fd);
        }
    }
}

/// The open descriptors above stderr, from `/proc/self/fd` (the fallback where
/// `close_range(2)` is missing); the listing's own descriptor is closed by then.
pub fn open_above_stderr() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect()
}
