//! Entry metadata: modes, mtimes and owners, and the directory metadata that must wait until
//! a layer is complete.
//!
//! Directory mtimes change whenever an entry is created inside, and a restrictive directory
//! mode (0555, 0000) would stop an unprivileged user from creating the rest of the layer in
//! it. So new directories are created `0700`, and their real mode and mtime are recorded here
//! and applied after the last entry, deepest first. The same records restore directories of
//! lower layers that the resolver loosened to `u+rwx` on the way.

use super::error::LayerError;
use super::resolve::{is_directory, FileId, Resolver, WalkEvent};
use super::ApplyReport;
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmodat, fstatat, utimensat, FchmodatFlags, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How many times the deferred pass may run again for directories it had to loosen itself
/// (which only happens when symlinks make the path order differ from the real depth).
const MAX_ROUNDS: u32 = 8;

/// The metadata of one tar entry that the applier sets.
///
/// PAX `SCHILY.xattr.*` records (extended attributes, file capabilities) are ignored: an
/// unprivileged user cannot set most of them, and a container run from a cache needs none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryMeta {
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub(crate) mode: u32,
    /// Numeric owner (PAX `uid` already applied by the tar crate).
    pub(crate) uid: u32,
    /// Numeric group (PAX `gid` already applied by the tar crate).
    pub(crate) gid: u32,
    /// Modification time; PAX `mtime` (with its fraction) wins over the header field.
    pub(crate) mtime: TimeSpec,
}

impl EntryMeta {
    /// Reads the metadata of `entry`, whose image path is `path`.
    pub(crate) fn read<R: std::io::Read>(
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<Self, LayerError> {
        let bad = |what: &str, e: std::io::Error| {
            LayerError::unsafe_entry(path, format!("its {what} field is invalid: {e}"))
        };
        let header = entry.header();
        let mode = header.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let uid = header.uid().map_err(|e| bad("uid", e))?;
        let gid = header.gid().map_err(|e| bad("gid", e))?;
        let secs = header.mtime().map_err(|e| bad("mtime", e))?;
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| {
                LayerError::unsafe_entry(path, format!("its {what} {v} does not fit 32 bits"))
            })
        };
        let (uid, gid) = (id(uid, "uid")?, id(gid, "gid")?);
        let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX) as _, 0);
        let pax = entry.pax_extensions().map_err(|e| bad("PAX header", e))?;
        if let Some(pax) = pax {
            for ext in pax.flatten() {
                if ext.key_bytes() == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                }
            }
        }
        Ok(EntryMeta {
            mode,
            uid,
            gid,
            mtime,
        })
    }
}

/// Parses a PAX time value: decimal seconds with an optional fraction (`1700000000.25`,
/// `-1.5`). `None` if malformed, in which case the header's whole seconds are kept.
pub(crate) fn parse_pax_time(raw: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(raw).ok()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let negative = whole.starts_with('-');
    let secs: i64 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut nanos: i64 = digits.parse().ok()?;
    let mut secs = secs;
    if negative && nanos > 0 {
        secs -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Some(TimeSpec::new(secs as _, nanos as _))
}

/// The process's effective ids, to decide when a chown is needed at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owners {
    /// Effective uid.
    pub(crate) euid: u32,
    /// Effective gid.
    pub(crate) egid: u32,
}

impl Owners {
    /// The ids of the running process.
    pub(crate) fn current() -> Self {
        Owners {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    /// Sets the owner of a fresh entry with `chown`, if it differs from what the entry got by
    /// being created. A rootless user may not give files away (`EPERM`), and a user
    /// namespace may not map the id (`EINVAL`): then the wanted owner goes into the report
    /// instead, for the caller to emulate or ignore.
    pub(crate) fn apply(
        &self,
        meta: &EntryMeta,
        path: &Path,
        report: &mut ApplyReport,
        chown: impl FnOnce(nix::unistd::Uid, nix::unistd::Gid) -> nix::Result<()>,
    ) -> Result<(), LayerError> {
        if meta.uid == self.euid && meta.gid == self.egid {
            return Ok(());
        }
        let uid = nix::unistd::Uid::from_raw(meta.uid);
        let gid = nix::unistd::Gid::from_raw(meta.gid);
        match chown(uid, gid) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM | Errno::EINVAL) => {
                report
                    .recorded_owners
                    .push((path.to_path_buf(), meta.uid, meta.gid));
                Ok(())
            }
            Err(e) => Err(LayerError::io("change owner", path, e)),
        }
    }
}

/// Mode and mtime to set on one directory after the layer.
#[derive(Debug, Clone)]
struct DirRecord {
    /// Path below the root that leads to the directory (may contain symlinks; the identity
    /// check catches a path that meanwhile leads elsewhere).
    path: PathBuf,
    /// The directory's identity when recorded.
    id: FileId,
    /// Permission bits to set.
    mode: Option<u32>,
    /// Modification time to set.
    mtime: Option<TimeSpec>,
    /// Recorded for a directory entry of the layer (wins over a loosening record).
    from_entry: bool,
}

/// The directory metadata of one layer that waits for its end.
#[derive(Debug, Default)]
pub(crate) struct DeferredDirs {
    /// Records in arrival order.
    records: Vec<DirRecord>,
    /// Index into `records` by identity, so each directory is set once.
    by_id: HashMap<FileId, usize>,
}

impl DeferredDirs {
    /// Records the final mode and mtime of a directory entry. A later entry for the same
    /// directory replaces an earlier one, as Docker applies entries in order.
    pub(crate) fn entry(&mut self, path: PathBuf, id: FileId, mode: u32, mtime: TimeSpec) {
        self.put(DirRecord {
            path,
            id,
            mode: Some(mode),
            mtime: Some(mtime),
            from_entry: true,
        });
    }

    /// Records resolver side effects: a loosened directory gets its old mode back, unless
    /// an entry of this layer says otherwise.
    pub(crate) fn absorb(&mut self, event: &WalkEvent) {
        if let WalkEvent::Loosened { path, id, mode } = event {
            self.put(DirRecord {
                path: path.clone(),
                id: *id,
                mode: Some(*mode),
                mtime: None,
                from_entry: false,
            });
        }
    }

    /// Adds or merges one record.
    fn put(&mut self, rec: DirRecord) {
        match self.by_id.get(&rec.id) {
            Some(&i) => {
                if rec.from_entry || !self.records[i].from_entry {
                    self.records[i] = rec;
                }
            }
            None => {
                self.by_id.insert(rec.id, self.records.len());
                self.records.push(rec);
            }
        }
    }

    /// Applies every record, deepest path first, so that a restrictive mode on a parent
    /// never blocks its children. Directories that were removed or replaced since they were
    /// recorded are skipped.
    pub(crate) fn finish(self, resolver: &mut Resolver<'_>) -> Result<(), LayerError> {
        let mut pending = self.records;
        let mut round = 0;
        while !pending.is_empty() {
            round += 1;
            if round > MAX_ROUNDS {
                let path = Path::new("/").join(&pending[0].path);
                return Err(LayerError::io(
                    "restore directory modes",
                    &path,
                    std::io::Error::other("directory modes keep blocking each other"),
                ));
            }
            pending.sort_by_key(|r| std::cmp::Reverse(r.path.components().count()));
            let mut events = Vec::new();
            for rec in &pending {
                apply_record(resolver, rec, &mut events)?;
            }
            let mut again = DeferredDirs::default();
            for event in &events {
                again.absorb(event);
            }
            pending = again.records;
        }
        Ok(())
    }
}

/// Sets one directory's recorded mtime and mode, if it is still the recorded directory.
fn apply_record(
    resolver: &mut Resolver<'_>,
    rec: &DirRecord,
    events: &mut Vec<WalkEvent>,
) -> Result<(), LayerError> {
    let shown = Path::new("/").join(&rec.path);
    let opened: OwnedFd;
    let (dir, name): (BorrowedFd<'_>, &OsStr) = match (rec.path.parent(), rec.path.file_name()) {
        (Some(parent), Some(name)) => {
            opened = match resolver.open_dir(parent, 0o100, false, events) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
                Err(e) => return Err(LayerError::io("reopen directory", &shown, e)),
            };
            (opened.as_fd(), name)
        }
        _ => (resolver.root(), OsStr::new(".")),
    };
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(LayerError::io("stat directory", &shown, e)),
    };
    let is_dir = is_directory(&st);
    if !is_dir || FileId::of(&st) != rec.id {
        return Ok(());
    }
    if let Some(t) = rec.mtime {
        utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| LayerError::io("set directory mtime", &shown, e))?;
    }
    if let Some(mode) = rec.mode {
        // `name` is the directory just checked, not a symlink.
        fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| LayerError::io("set directory mode", &shown, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::resolve::ResolveMode;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = parse_pax_time(b"1700000000.25").expect("valid");
        assert_eq!((t.tv_sec(), t.tv_nsec()), (1_700_000_000, 250_000_000));
        let t = parse_pax_time(b"42").expect("valid");
        assert_eq!((t.tv_sec(), t.tv_nsec()), (42, 0));
        let t = parse_pax_time(b"-1.5").expect("valid");
        assert_eq!((t.tv_sec(), t.tv_nsec()), (-2, 500_000_000));
        let t = parse_pax_time(b"1.1234567891").expect("extra digits are cut");
        assert_eq!(t.tv_nsec(), 123_456_789);
        assert!(parse_pax_time(b"12x").is_none());
        assert!(parse_pax_time(b"1.2e3").is_none());
    }

    fn id_of(p: &Path) -> FileId {
        let m = fs::symlink_metadata(p).expect("stat");
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    #[test]
    fn deferred_modes_apply_deepest_first_and_skip_replaced_directories() {
        let base = tempfile::tempdir().expect("tempdir");
        let r = base.path();
        fs::create_dir_all(r.join("a/b/c")).expect("mkdir");
        fs::create_dir(r.join("gone")).expect("mkdir");
        let mut deferred = DeferredDirs::default();
        let t = TimeSpec::new(1_000_000, 0);
        // Recorded parent first, as a tar lists them; 0000 on `a` must come last.
        deferred.entry("a".into(), id_of(&r.join("a")), 0o000, t);
        deferred.entry("a/b".into(), id_of(&r.join("a/b")), 0o555, t);
        deferred.entry("a/b/c".into(), id_of(&r.join("a/b/c")), 0o700, t);
        deferred.entry("gone".into(), id_of(&r.join("gone")), 0o000, t);
        // `gone` is replaced by a file with another identity.
        fs::remove_dir(r.join("gone")).expect("rmdir");
        fs::write(r.join("gone"), b"").expect("write");
        fs::set_permissions(r.join("gone"), fs::Permissions::from_mode(0o644)).expect("chmod");

        let root = fs::File::open(r).expect("open");
        let uid = nix::unistd::geteuid().as_raw();
        let mut resolver = Resolver::new(root.as_fd(), ResolveMode::Openat2, Some(uid));
        deferred.finish(&mut resolver).expect("finish");

        let mode = |p: &str| fs::symlink_metadata(r.join(p)).expect("stat").mode() & 0o7777;
        assert_eq!(mode("a"), 0o000);
        assert_eq!(mode("gone"), 0o644);
        fs::set_permissions(r.join("a"), fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(mode("a/b"), 0o555);
        assert_eq!(mode("a/b/c"), 0o700);
        for d in ["a/b", "a/b/c"] {
            assert_eq!(
                fs::symlink_metadata(r.join(d)).expect("stat").mtime(),
                1_000_000
            );
        }
        crate::layer::remove_tree(r).expect("clean up");
    }

    #[test]
    fn an_entry_record_wins_over_a_loosening_record() {
        let base = tempfile::tempdir().expect("tempdir");
        let r = base.path();
        fs::create_dir(r.join("d")).expect("mkdir");
        let id = id_of(&r.join("d"));
        let mut deferred = DeferredDirs::default();
        let loosened = WalkEvent::Loosened {
            path: "d".into(),
            id,
            mode: 0o555,
        };
        deferred.absorb(&loosened);
        deferred.entry("d".into(), id, 0o751, TimeSpec::new(5, 0));
        deferred.absorb(&loosened);
        let root = fs::File::open(r).expect("open");
        let mut resolver = Resolver::new(root.as_fd(), ResolveMode::Walk, None);
        deferred.finish(&mut resolver).expect("finish");
        let m = fs::symlink_metadata(r.join("d")).expect("stat");
        assert_eq!(m.mode() & 0o7777, 0o751);
        assert_eq!(m.mtime(), 5);
    }
}
