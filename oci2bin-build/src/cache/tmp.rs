//! Each build's temporary files in a directory of its own, removed when the build ends and,
//! if the build was killed, by the next build that opens the cache.
//!
//! Downloads, exports and recompressed layers are written under `tmp/` and renamed into the
//! cache when verified. A build that is killed (Ctrl-C, SIGKILL, a crash) cannot remove what
//! it had half-written, and loose files in a shared `tmp/` cannot be told apart from another
//! running build's. So every build gets `tmp/<name>/`, with `tmp/<name>.lock` held (flock)
//! for as long as the build runs: a lock that can be taken belongs to a build that is gone,
//! and its directory is removed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Per-build directories of this process that are still open, for
/// [`remove_live_temporaries`].
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Loose files and unlocked directories in `tmp/` older than this are left over from
/// versions before per-build directories, or from a build killed between creating its lock
/// and its directory.
const LEGACY_AGE: Duration = Duration::from_secs(3600);

/// One build's temporary directory; removed with its lock when dropped.
#[derive(Debug)]
pub struct TmpSession {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this function borrows.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl TmpSession {
    /// Creates a per-build directory under `tmp`, after removing those of builds that ended
    /// without removing theirs.
    pub fn create(tmp: &Path) -> std::io::Result<TmpSession> {
        sweep(tmp);
        let lock = tempfile::Builder::new()
            .prefix("build-")
            .suffix(".lock")
            .tempfile_in(tmp)?;
        if !try_flock(lock.as_file()) {
            return Err(std::io::Error::other(
                "cannot lock a new temporary lock file",
            ));
        }
        let (file, lock_path) = lock.keep().map_err(|e| e.error)?;
        let dir = lock_path.with_extension("");
        if let Err(e) = std::fs::create_dir(&dir) {
            let _ = std::fs::remove_file(&lock_path);
            return Err(e);
        }
        if let Ok(mut live) = LIVE.lock() {
            live.push(dir.clone());
        }
        Ok(TmpSession {
            dir,
            lock_path,
            _lock: file,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TmpSession {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|d| d != &self.dir);
        }
    }
}

/// Removes the per-build directories this process has open. For a binary's signal handler
/// (a thread that took SIGINT or SIGTERM with `sigwait`), which exits right after: the
/// sessions' destructors will not run.
pub fn remove_live_temporaries() {
    remove_live_under(Path::new("/"));
}

/// [`remove_live_temporaries`] for the sessions under `root` only.
fn remove_live_under(root: &Path) {
    if let Ok(live) = LIVE.lock() {
        for dir in live.iter().filter(|d| d.starts_with(root)) {
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::remove_file(dir.with_extension("lock"));
        }
    }
}

fn older_than(meta: &std::fs::Metadata, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|d| d > age)
}

/// Removes what builds that are gone left in `tmp`.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "lock") && meta.is_file() {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if try_flock(&file) {
                let _ = std::fs::remove_dir_all(path.with_extension(""));
                let _ = std::fs::remove_file(&path);
            }
        } else if older_than(&meta, LEGACY_AGE) && !path.with_extension("lock").exists() {
            if meta.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_removed_when_dropped_and_a_dead_ones_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let s = TmpSession::create(root.path()).unwrap();
        std::fs::write(s.dir().join("half"), b"x").unwrap();
        let dir = s.dir().to_path_buf();
        drop(s);
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

        // A build that was killed: its directory and an unlocked lock file remain.
        std::fs::create_dir(root.path().join("build-dead")).unwrap();
        std::fs::write(root.path().join("build-dead/blob"), b"x").unwrap();
        std::fs::write(root.path().join("build-dead.lock"), b"").unwrap();
        // A live one in another process is simulated by a lock held on another descriptor.
        let live = TmpSession::create(root.path()).unwrap();
        let other = TmpSession::create(root.path()).unwrap();
        assert!(!root.path().join("build-dead").exists());
        assert!(live.dir().exists() && other.dir().exists());
    }

    #[test]
    fn remove_live_temporaries_empties_open_sessions() {
        let root = tempfile::tempdir().unwrap();
        let s = TmpSession::create(root.path()).unwrap();
        std::fs::write(s.dir().join("half"), b"x").unwrap();
        remove_live_under(root.path());
        assert!(!s.dir().exists());
    }
}
