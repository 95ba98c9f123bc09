//! Per-run directories: the container's writable layer on disk, not in RAM.
//!
//! Each run gets `<cache>/runs/<random>/{upper,work,root}`: the overlay's upper and work
//! directories and its mount point. Data a workload writes into its root (a database, a
//! few GB of `dd`) then lands on the cache's file system instead of growing the host's
//! shared memory. `runs/<random>.lock` is held (`flock`) for the run's whole life, by the
//! runtime and the container's init, so a run that was killed is recognisable: its lock is
//! free. The container's init empties its own directories when the workload has ended, and
//! those of killed runs it was handed, because only inside the user namespace can files owned
//! by subordinate ids be removed; the runtime then removes the emptied directories and locks.
//!
//! A named container that is kept (`--name NAME` without `--rm`, like a container that
//! `docker start` runs again) has the same layout at `<cache>/containers/NAME`, locked by
//! `containers/NAME.lock` while it runs, and is never emptied: its `upper` is the writable
//! layer of the next run with that name. `containers/NAME/image` records the image it was
//! made from, because an upper layer only makes sense over the same lower one.

use crate::cache::trust::{caller_uid, open_dir_at, open_lock_at, open_root};
use crate::cache::CacheError;
use crate::layer::remove::{list_dir, remove_all_at};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// What the container's init needs to clean up, as plain data that survives `clone`: the
/// descriptors stay open in the runtime (which owns them through [`RunDir`]) and are shared
/// with the init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCleanup {
    /// `runs/<name>`.
    pub dir_fd: RawFd,
    /// `runs/`.
    pub runs_fd: RawFd,
    /// Directories in `runs/` of killed runs, whose locks the runtime holds.
    pub stale: Vec<String>,
    /// A kept container: its upper and work directories stay.
    pub keep: bool,
}

impl RunCleanup {
    /// Empties this run's upper and work directories and removes the stale runs; called by
    /// the container's init, as root of the user namespace, once the workload has ended.
    /// Returns what could not be removed, for `--debug`.
    pub fn clean_inside(&self) -> Vec<String> {
        let mut failed = Vec::new();
        // SAFETY: the runtime keeps both descriptors open until the container has exited.
        let (dir, runs) = unsafe {
            (
                BorrowedFd::borrow_raw(self.dir_fd),
                BorrowedFd::borrow_raw(self.runs_fd),
            )
        };
        for name in ["upper", "work"].iter().filter(|_| !self.keep) {
            if let Err(e) = remove_all_at(dir, name.as_ref()) {
                failed.push(format!("{name}: {e}"));
            }
        }
        for name in &self.stale {
            if let Err(e) = remove_all_at(runs, name.as_ref()) {
                failed.push(format!("stale run {name}: {e}"));
            }
        }
        failed
    }
}

/// A run's directory, owned by the runtime for the run's life.
#[derive(Debug)]
pub struct RunDir {
    /// `runs/<name>` on the host.
    pub path: PathBuf,
    name: String,
    runs: OwnedFd,
    dir: OwnedFd,
    _lock: Flock<File>,
    stale: Vec<(String, Flock<File>)>,
    keep: bool,
}

impl RunDir {
    /// Creates a fresh run directory under the cache root `root` (checked as the image
    /// cache is) and finds the directories of killed runs.
    pub fn create(root: &Path) -> Result<RunDir, CacheError> {
        let uid = caller_uid();
        let (_, runs_path, runs) = open_runs(root, uid)?;
        // The lock first, then the directory: a directory with a free lock is a dead run's.
        let (name, lock_fd) = loop {
            let name = crate::ns::ident::random_id();
            match open_lock_at(
                runs.as_fd(),
                &runs_path,
                format!("{name}.lock").as_ref(),
                uid,
                true,
            ) {
                Ok(fd) => break (name, fd),
                Err(crate::cache::trust::TrustError::Open {
                    errno: nix::errno::Errno::EEXIST,
                    ..
                }) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let lock = Flock::lock(File::from(lock_fd), FlockArg::LockExclusive)
            .map_err(|(_, e)| io("locking", &runs_path.join(format!("{name}.lock")))(e))?;
        let path = runs_path.join(&name);
        mkdirat(runs.as_fd(), name.as_str(), Mode::from_bits_truncate(0o700))
            .map_err(io("creating", &path))?;
        let dir = open_dir_at(runs.as_fd(), &runs_path, name.as_ref(), false, uid)?
            .ok_or_else(|| io("opening", &path)(nix::errno::Errno::ENOENT))?;
        for sub in ["upper", "work", "root"] {
            mkdirat(dir.as_fd(), sub, Mode::from_bits_truncate(0o755))
                .map_err(io("creating", &path.join(sub)))?;
        }
        let stale = find_stale(runs.as_fd(), &runs_path, &name, uid);
        Ok(RunDir {
            path,
            name,
            runs,
            dir,
            _lock: lock,
            stale,
            keep: false,
        })
    }

    /// Opens (creating it on first use) the kept container `name` under the cache root
    /// `root`, made from the image `image` (its config digest), and locks it; fails if
    /// another run holds it or it was made from another image. Killed runs in `runs/` are
    /// found as by [`RunDir::create`].
    pub fn open_named(root: &Path, name: &str, image: &str) -> Result<RunDir, CacheError> {
        let uid = caller_uid();
        let (root_fd, runs_path, runs) = open_runs(root, uid)?;
        let containers_path = root.join("containers");
        let containers = open_dir_at(root_fd.as_fd(), root, "containers".as_ref(), true, uid)?
            .expect("created when missing");
        let path = containers_path.join(name);
        let lock_name = format!("{name}.lock");
        let lock_fd = open_lock_at(
            containers.as_fd(),
            &containers_path,
            lock_name.as_ref(),
            uid,
            false,
        )?;
        let lock = match Flock::lock(File::from(lock_fd), FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(CacheError::ContainerInUse(name.to_string()))
            }
            Err((_, e)) => return Err(io("locking", &containers_path.join(&lock_name))(e)),
        };
        let dir = open_dir_at(
            containers.as_fd(),
            &containers_path,
            name.as_ref(),
            true,
            uid,
        )?
        .expect("created when missing");
        for sub in ["upper", "work", "root"] {
            match mkdirat(dir.as_fd(), sub, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(io("creating", &path.join(sub))(e)),
            }
        }
        check_image(dir.as_fd(), &path, name, image)?;
        let stale = find_stale(runs.as_fd(), &runs_path, "", uid);
        Ok(RunDir {
            path,
            name: name.to_string(),
            runs,
            dir,
            _lock: lock,
            stale,
            keep: true,
        })
    }

    /// What the container's init cleans up.
    pub fn cleanup(&self) -> RunCleanup {
        RunCleanup {
            dir_fd: self.dir.as_raw_fd(),
            runs_fd: self.runs.as_raw_fd(),
            stale: self.stale.iter().map(|(n, _)| n.clone()).collect(),
            keep: self.keep,
        }
    }

    /// How many killed runs this run will clean up.
    pub fn stale_count(&self) -> usize {
        self.stale.len()
    }

    /// Removes what is left after the container has exited (its mount point, and anything
    /// its init could not remove) and the locks of this run and of the stale runs whose
    /// directories are gone. Best effort: returns what could not be removed.
    pub fn finish(self) -> Vec<String> {
        let mut failed = Vec::new();
        let runs = self.runs.as_fd();
        // A kept container's directory and lock stay; only killed runs are removed.
        let own = match self.keep {
            true => Ok(None),
            false => remove_all_at(runs, self.name.as_ref()).map(Some),
        };
        match own {
            Ok(None) => {}
            Ok(Some(())) => {
                let _ = unlinkat(
                    runs,
                    format!("{}.lock", self.name).as_str(),
                    UnlinkatFlags::NoRemoveDir,
                );
            }
            Err(e) => failed.push(format!("{}: {e}", self.path.display())),
        }
        for (name, _lock) in &self.stale {
            if remove_all_at(runs, name.as_ref()).is_ok() {
                let _ = unlinkat(
                    runs,
                    format!("{name}.lock").as_str(),
                    UnlinkatFlags::NoRemoveDir,
                );
            } else {
                failed.push(format!("stale run {name}"));
            }
        }
        failed
    }
}

/// The error for a failed `action` on `path`, for `map_err`.
fn io(action: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> CacheError {
    let path = path.to_path_buf();
    move |e| CacheError::Io {
        action,
        path,
        source: e.into(),
    }
}

/// Opens the checked cache root and its `runs/` (created when missing); returns the root,
/// the path of `runs/` and `runs/` itself.
fn open_runs(root: &Path, uid: u32) -> Result<(OwnedFd, PathBuf, OwnedFd), CacheError> {
    let root_fd = open_root(root, uid)?;
    let runs = open_dir_at(root_fd.as_fd(), root, "runs".as_ref(), true, uid)?
        .expect("created when missing");
    Ok((root_fd, root.join("runs"), runs))
}

/// Checks that the kept container in `dir` (at `path`) was made from `image`, recording it
/// on first use.
fn check_image(
    dir: BorrowedFd<'_>,
    path: &Path,
    name: &str,
    image: &str,
) -> Result<(), CacheError> {
    use nix::fcntl::OFlag;
    use std::io::{Read, Write};
    let file = path.join("image");
    let io = |action: &'static str| {
        let file = file.clone();
        move |e: nix::errno::Errno| CacheError::Io {
            action,
            path: file,
            source: e.into(),
        }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(dir, "image", flags, Mode::empty()) {
        Ok(fd) => {
            let mut had = String::new();
            File::from(fd)
                .take(256)
                .read_to_string(&mut had)
                .map_err(|e| io("reading")(crate::ns::syscall::io_errno(e)))?;
            if had.trim() != image {
                return Err(CacheError::ContainerImage {
                    name: name.to_string(),
                    had: had.trim().to_string(),
                    want: image.to_string(),
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(nix::errno::Errno::ENOENT) => {
            let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | flags;
            let fd = nix::fcntl::openat(dir, "image", create, Mode::from_bits_truncate(0o600))
                .map_err(io("creating"))?;
            File::from(fd)
                .write_all(format!("{image}\n").as_bytes())
                .map_err(|e| io("writing")(crate::ns::syscall::io_errno(e)))
        }
        Err(e) => Err(io("opening")(e)),
    }
}

/// The run directories in `runs` (other than `own`) whose lock nobody holds, with their
/// locks now held by the caller so that no other run cleans them at the same time.
fn find_stale(
    runs: BorrowedFd<'_>,
    runs_path: &Path,
    own: &str,
    uid: u32,
) -> Vec<(String, Flock<File>)> {
    let Ok(names) = list_dir(runs) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if name == own || name.ends_with(".lock") || name.starts_with('.') {
            continue;
        }
        let Ok(fd) = open_lock_at(runs, runs_path, format!("{name}.lock").as_ref(), uid, false)
        else {
            continue;
        };
        if let Ok(lock) = Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
            stale.push((name.to_string(), lock));
        }
    }
    stale
}

/// A fresh name in `dir` for tests that need to plant a killed run.
#[cfg(test)]
fn plant_dead_run(runs: &Path) -> String {
    use crate::cache::trust::make_random_dir;
    let fd = nix::fcntl::open(runs, nix::fcntl::OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    let name = make_random_dir(fd.as_fd(), "dead").unwrap();
    std::fs::create_dir_all(runs.join(&name).join("upper/var/lib/db")).unwrap();
    std::fs::write(runs.join(&name).join("upper/var/lib/db/data"), "x").unwrap();
    std::fs::write(runs.join(format!("{name}.lock")), "").unwrap();
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_creates_locked_dirs_and_removes_them_at_the_end() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path()).unwrap();
        for sub in ["upper", "work", "root"] {
            assert!(run.path.join(sub).is_dir());
        }
        std::fs::write(run.path.join("upper/file"), "data").unwrap();
        // A second run sees this one alive: not stale.
        let other = RunDir::create(t.path()).unwrap();
        assert_eq!(other.stale_count(), 0);
        assert!(run.cleanup().clean_inside().is_empty());
        let path = run.path.clone();
        assert!(run.finish().is_empty());
        assert!(!path.exists());
        assert!(!t
            .path()
            .join("runs")
            .join(format!(
                "{}.lock",
                path.file_name().unwrap().to_str().unwrap()
            ))
            .exists());
        drop(other);
    }

    #[test]
    fn killed_runs_are_found_and_removed_by_the_next_run() {
        let t = tempfile::tempdir().unwrap();
        let first = RunDir::create(t.path()).unwrap();
        let dead = plant_dead_run(&t.path().join("runs"));
        let run = RunDir::create(t.path()).unwrap();
        assert_eq!(run.cleanup().stale, vec![dead.clone()]);
        assert!(run.cleanup().clean_inside().is_empty());
        assert!(run.finish().is_empty());
        assert!(!t.path().join("runs").join(&dead).exists());
        assert!(!t.path().join("runs").join(format!("{dead}.lock")).exists());
        // The live first run was left alone.
        assert!(first.path.join("upper").is_dir());
    }

    #[test]
    fn a_kept_container_keeps_its_layer_is_exclusive_and_tied_to_its_image() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::open_named(t.path(), "db", "sha256:aa").unwrap();
        assert_eq!(run.path, t.path().join("containers/db"));
        std::fs::write(run.path.join("upper/table"), "rows").unwrap();
        let err = RunDir::open_named(t.path(), "db", "sha256:aa").unwrap_err();
        assert!(matches!(err, CacheError::ContainerInUse(_)), "{err}");
        assert!(run.cleanup().clean_inside().is_empty());
        assert!(run.finish().is_empty());
        let again = RunDir::open_named(t.path(), "db", "sha256:aa").unwrap();
        assert_eq!(
            std::fs::read(again.path.join("upper/table")).unwrap(),
            b"rows"
        );
        drop(again);
        let err = RunDir::open_named(t.path(), "db", "sha256:bb").unwrap_err();
        assert!(
            err.to_string().contains("made from the image sha256:aa"),
            "{err}"
        );
        assert!(t.path().join("containers/db/upper/table").exists());
    }

    #[test]
    fn a_shared_cache_root_is_refused() {
        let t = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = RunDir::create(t.path()).unwrap_err().to_string();
        assert!(err.contains("lets others write"), "{err}");
    }
}
