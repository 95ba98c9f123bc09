//! A tmpfs mounted for one test (a `noexec` cache, a tiny full disk), owned by a test user
//! and unmounted when dropped. Needs root.

use crate::users::TestUser;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A mounted tmpfs; unmounted (lazily, so a lingering process cannot make it fail) on drop.
///
/// Declare it after the [`crate::TestDir`] it lives in, so that it is dropped first.
pub struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Creates `path` and mounts a tmpfs there with mount `flags` (`libc::MS_NOEXEC`, ...)
    /// and tmpfs `options` (`size=2m`), then gives its root to `owner` with mode 0700.
    pub fn new(path: &Path, flags: libc::c_ulong, options: &str, owner: &TestUser) -> TmpfsMount {
        std::fs::create_dir_all(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let c = |s: &[u8]| CString::new(s).expect("no NUL in mount arguments");
        let (target, fstype, data) = (
            c(path.as_os_str().as_bytes()),
            c(b"tmpfs"),
            c(format!("{options},mode=0700,uid={},gid={}", owner.uid, owner.gid).as_bytes()),
        );
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "cannot mount a tmpfs ({options}) on {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
        TmpfsMount {
            path: path.to_path_buf(),
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated path.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
