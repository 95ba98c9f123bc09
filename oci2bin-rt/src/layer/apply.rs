//! Applying one uncompressed layer tar onto a root directory.
//!
//! The `tar` crate only parses (headers, GNU long names, PAX records); every file system
//! change is made here, relative to a directory fd: the entry's parent is opened inside the
//! root ([`super::resolve`]), and the last component is handled by `*at` calls that never
//! follow it (`unlinkat`, `mkdirat`, `symlinkat`, `mkfifoat`, `linkat` without
//! `AT_SYMLINK_FOLLOW`, `openat` with `O_NOFOLLOW | O_CREAT | O_EXCL` after removing what
//! was there). An entry replaces whatever is at its path, except that a directory entry
//! over an existing directory only changes its metadata, as in Docker.

use super::entry_name::EntryName;
use super::error::LayerError;
use super::meta::{DeferredDirs, EntryMeta, Owners};
use super::remove::remove_all_at;
use super::resolve::{is_directory, FileId, ResolveMode, Resolver, WalkEvent};
use super::whiteout::{self, Whiteout};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, utimensat, FchmodatFlags, FileStat, Mode,
    SFlag, UtimensatFlags,
};
use nix::unistd::{fchown, fchownat, linkat, mkfifoat, symlinkat};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Size of the buffer file data is copied through.
const COPY_BUFFER: usize = 128 * 1024;

/// Options for [`apply_layer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Which path resolver to use; the default uses `openat2` where the kernel has it.
    pub resolve: ResolveMode,
}

/// What [`apply_layer`] did that the caller may want to tell the user about. One report can
/// be passed to the calls for all layers of an image; each call adds to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Tar entries applied (PAX global headers not counted).
    pub entries: u64,
    /// Whiteout and opaque-directory entries among them.
    pub whiteouts: u64,
    /// Character and block devices, which cannot be created rootless and are skipped, so
    /// that the caller can print one warning instead of one per device.
    pub skipped_devices: u64,
    /// Entries whose owner could not be set (an unprivileged user cannot give files away):
    /// the path inside the image (`/etc/shadow`), uid and gid. The files belong to the
    /// unpacking user instead.
    pub recorded_owners: Vec<(PathBuf, u32, u32)>,
}

/// Applies one uncompressed layer tar (`layer`) to the directory `root` with Docker's
/// semantics (whiteouts, opaque directories, replacement of existing paths), never touching
/// anything outside `root`, and adds what it did to `report`.
///
/// Layers must be applied in order, lowest first. Device nodes are skipped and counted
/// (whatever a lower layer had at that path stays); owners that cannot be set are recorded.
/// Directory modes and mtimes are set after the last entry, so a layer can fill a directory
/// it makes read-only. PAX `SCHILY.xattr.*` records (extended attributes, file capabilities)
/// are ignored. On error the root is left half-applied and should be discarded.
pub fn apply_layer<R: Read>(
    root: BorrowedFd<'_>,
    layer: R,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> Result<(), LayerError> {
    let owners = Owners::current();
    let loosen = (owners.euid != 0).then_some(owners.euid);
    let mut applier = Applier {
        resolver: Resolver::new(root, opts.resolve, loosen),
        owners,
        created: HashSet::new(),
        deferred: DeferredDirs::default(),
        events: Vec::new(),
        buf: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(layer);
    let entries = archive
        .entries()
        .map_err(|source| LayerError::Tar { near: None, source })?;
    let mut last: Option<PathBuf> = None;
    for entry in entries {
        let mut entry = entry.map_err(|source| LayerError::Tar {
            near: last.clone(),
            source,
        })?;
        if entry.header().entry_type().is_pax_global_extensions() {
            continue;
        }
        let name = EntryName::parse(&entry.path_bytes())?;
        report.entries += 1;
        applier.apply_entry(&mut entry, &name, report)?;
        last = Some(name.display());
    }
    let Applier {
        mut resolver,
        deferred,
        ..
    } = applier;
    deferred.finish(&mut resolver)
}

/// The kinds of entries the applier creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Regular file (also contiguous and GNU sparse files).
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link to an earlier entry.
    Hardlink,
    /// Named pipe.
    Fifo,
}

/// What to do with a tar entry, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Create it.
    Make(Kind),
    /// A character or block device: skip and count.
    SkipDevice,
    /// A type with no meaning in a layer, with its type byte.
    Unsupported(u8),
}

impl Action {
    /// The action for a tar entry.
    fn of(header: &tar::Header, raw_name: &[u8]) -> Action {
        use tar::EntryType as T;
        let flag = header.as_bytes()[156];
        Action::Make(match header.entry_type() {
            // Pre-POSIX tars mark directories as type NUL plus a trailing slash.
            T::Regular if flag == 0 && raw_name.ends_with(b"/") => Kind::Dir,
            T::Regular | T::Continuous | T::GNUSparse => Kind::File,
            T::Directory => Kind::Dir,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::Hardlink,
            T::Fifo => Kind::Fifo,
            T::Char | T::Block => return Action::SkipDevice,
            _ => return Action::Unsupported(flag),
        })
    }
}

/// The state of applying one layer.
struct Applier<'fd> {
    /// Resolves parents inside the root.
    resolver: Resolver<'fd>,
    /// The process's ids.
    owners: Owners,
    /// (directory, name) of everything this layer created so far, for opaque directories.
    created: HashSet<(FileId, OsString)>,
    /// Directory metadata applied after the last entry.
    deferred: DeferredDirs,
    /// Resolver side effects not yet absorbed.
    events: Vec<WalkEvent>,
    /// Copy buffer for file data.
    buf: Vec<u8>,
}

/// `stat` of `name` in `dir` without following it; `None` if nothing is there.
fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Applier<'_> {
    /// Moves resolver side effects into the layer state.
    fn absorb(&mut self) {
        for event in self.events.drain(..) {
            match &event {
                WalkEvent::Created { parent, name } => {
                    self.created.insert((*parent, name.clone()));
                }
                WalkEvent::Loosened { .. } => self.deferred.absorb(&event),
            }
        }
    }

    /// Applies one entry.
    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &EntryName,
        report: &mut ApplyReport,
    ) -> Result<(), LayerError> {
        let path = name.display();
        let action = Action::of(entry.header(), &entry.path_bytes());
        let (Some(parent), Some(file_name)) = (name.parent(), name.file_name()) else {
            return self.apply_root(entry, &path, action, report);
        };
        match whiteout::classify(file_name) {
            Err(reason) => return Err(LayerError::unsafe_entry(&path, reason)),
            Ok(Whiteout::No) => {}
            Ok(Whiteout::Ignored) => return Ok(()),
            Ok(Whiteout::Remove(target)) => {
                report.whiteouts += 1;
                let result = whiteout::remove(&mut self.resolver, parent, target, &mut self.events);
                self.absorb();
                return result.map_err(|e| LayerError::io("apply whiteout", &path, e));
            }
            Ok(Whiteout::Opaque) => {
                report.whiteouts += 1;
                let result = whiteout::clear_opaque(
                    &mut self.resolver,
                    parent,
                    &self.created,
                    &mut self.events,
                );
                self.absorb();
                return result.map_err(|e| LayerError::io("apply opaque directory", &path, e));
            }
        }
        let kind = match action {
            Action::Make(kind) => kind,
            Action::SkipDevice => {
                report.skipped_devices += 1;
                return Ok(());
            }
            Action::Unsupported(flag) => {
                return Err(LayerError::Unsupported {
                    path,
                    kind: char::from(flag),
                })
            }
        };
        let meta = EntryMeta::read(entry, &path)?;
        let link = entry.link_name_bytes().map(|b| b.into_owned());
        let result = self
            .resolver
            .open_dir(parent, 0o300, true, &mut self.events);
        self.absorb();
        let dir = result.map_err(|e| LayerError::io("open parent directory", &path, e))?;
        let dir_id = FileId::of(&fstat(&dir).map_err(|e| LayerError::io("stat parent", &path, e))?);
        let existing = lstat_at(dir.as_fd(), file_name)
            .map_err(|e| LayerError::io("stat existing entry", &path, e))?;
        let at = Target {
            dir: dir.as_fd(),
            name: file_name,
            path: &path,
        };
        match kind {
            Kind::File => self.make_file(entry, &at, existing, &meta, report)?,
            Kind::Dir => self.make_dir(&at, name.rel(), existing, &meta, report)?,
            Kind::Symlink => {
                let target = link.ok_or_else(|| {
                    LayerError::unsafe_entry(&path, "the symlink entry has no target")
                })?;
                at.replace(existing)?;
                symlinkat(OsStr::from_bytes(&target), at.dir, at.name)
                    .map_err(|e| LayerError::io("create symlink", &path, e))?;
                self.owners
                    .apply(&meta, &path, report, |u, g| at.chown_nofollow(u, g))?;
                at.set_mtime(&meta)?;
            }
            Kind::Hardlink => {
                let target = link.ok_or_else(|| {
                    LayerError::unsafe_entry(&path, "the hardlink entry has no target")
                })?;
                self.make_hardlink(&at, &target, existing, &meta, report)?;
            }
            Kind::Fifo => {
                at.replace(existing)?;
                mkfifoat(at.dir, at.name, Mode::from_bits_truncate(0o600))
                    .map_err(|e| LayerError::io("create fifo", &path, e))?;
                self.owners
                    .apply(&meta, &path, report, |u, g| at.chown_nofollow(u, g))?;
                at.chmod(meta.mode)?;
                at.set_mtime(&meta)?;
            }
        }
        self.created.insert((dir_id, file_name.to_os_string()));
        Ok(())
    }

    /// An entry naming the root itself: a directory entry sets the root's metadata; anything
    /// else would replace the root and is refused.
    fn apply_root<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        action: Action,
        report: &mut ApplyReport,
    ) -> Result<(), LayerError> {
        if action != Action::Make(Kind::Dir) {
            return Err(LayerError::unsafe_entry(
                path,
                "a non-directory entry for the root would replace the root directory",
            ));
        }
        let meta = EntryMeta::read(entry, path)?;
        let root = self.resolver.root();
        self.owners.apply(&meta, path, report, |u, g| {
            fchownat(root, ".", Some(u), Some(g), AtFlags::AT_SYMLINK_NOFOLLOW)
        })?;
        let st = fstat(root).map_err(|e| LayerError::io("stat root", path, e))?;
        self.deferred
            .entry(PathBuf::new(), FileId::of(&st), meta.mode, meta.mtime);
        Ok(())
    }

    /// Creates a regular file with the entry's data and metadata.
    fn make_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        at: &Target<'_>,
        existing: Option<FileStat>,
        meta: &EntryMeta,
        report: &mut ApplyReport,
    ) -> Result<(), LayerError> {
        at.replace(existing)?;
        let fd = openat(
            at.dir,
            at.name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| LayerError::io("create file", at.path, e))?;
        let mut file = std::fs::File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LayerError::Tar {
                        near: Some(at.path.to_path_buf()),
                        source,
                    })
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| LayerError::io("write file data", at.path, e))?;
        }
        // chown before chmod: a chown clears setuid and setgid bits.
        self.owners.apply(meta, at.path, report, |u, g| {
            fchown(&file, Some(u), Some(g))
        })?;
        fchmod(&file, Mode::from_bits_truncate(meta.mode))
            .map_err(|e| LayerError::io("set file mode", at.path, e))?;
        futimens(&file, &meta.mtime, &meta.mtime)
            .map_err(|e| LayerError::io("set file mtime", at.path, e))?;
        Ok(())
    }

    /// Creates a directory (or keeps an existing one) and records its mode and mtime for the
    /// end of the layer.
    fn make_dir(
        &mut self,
        at: &Target<'_>,
        rel: &Path,
        existing: Option<FileStat>,
        meta: &EntryMeta,
        report: &mut ApplyReport,
    ) -> Result<(), LayerError> {
        if !existing.as_ref().is_some_and(is_directory) {
            at.replace(existing)?;
            // 0700 until the end of the layer, so the layer can fill it whatever its mode.
            mkdirat(at.dir, at.name, Mode::from_bits_truncate(0o700))
                .map_err(|e| LayerError::io("create directory", at.path, e))?;
        }
        self.owners
            .apply(meta, at.path, report, |u, g| at.chown_nofollow(u, g))?;
        let st = fstatat(at.dir, at.name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| LayerError::io("stat directory", at.path, e))?;
        self.deferred
            .entry(rel.to_path_buf(), FileId::of(&st), meta.mode, meta.mtime);
        Ok(())
    }

    /// Links `at` to `target`, a path inside the root whose last component is not followed.
    ///
    /// Like Docker, the entry's owner, mode and mtime are applied to the (shared) inode
    /// unless the target is a symlink.
    fn make_hardlink(
        &mut self,
        at: &Target<'_>,
        raw_target: &[u8],
        existing: Option<FileStat>,
        meta: &EntryMeta,
        report: &mut ApplyReport,
    ) -> Result<(), LayerError> {
        let shown_target = Path::new(OsStr::from_bytes(raw_target));
        let target = EntryName::parse(raw_target).map_err(|_| {
            LayerError::unsafe_entry(
                at.path,
                format!(
                    "its hardlink target {} has a `..` component or a NUL byte",
                    shown_target.display()
                ),
            )
        })?;
        let link_err = |source: Errno| LayerError::Link {
            path: at.path.to_path_buf(),
            target: target.display(),
            source: source.into(),
        };
        let (Some(tparent), Some(tname)) = (target.parent(), target.file_name()) else {
            return Err(LayerError::unsafe_entry(
                at.path,
                "a hardlink to the root directory",
            ));
        };
        let result = self
            .resolver
            .open_dir(tparent, 0o100, false, &mut self.events);
        self.absorb();
        let tdir = result.map_err(link_err)?;
        let tst = fstatat(&tdir, tname, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(link_err)?;
        if is_directory(&tst) {
            return Err(link_err(Errno::EISDIR));
        }
        let same = existing
            .as_ref()
            .is_some_and(|e| FileId::of(e) == FileId::of(&tst));
        if !same {
            at.replace(existing)?;
            linkat(&tdir, tname, at.dir, at.name, AtFlags::empty()).map_err(link_err)?;
        }
        let is_symlink =
            SFlag::from_bits_truncate(tst.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK;
        self.owners
            .apply(meta, at.path, report, |u, g| at.chown_nofollow(u, g))?;
        if !is_symlink {
            at.chmod(meta.mode)?;
            at.set_mtime(meta)?;
        }
        Ok(())
    }
}

/// The final component of an entry: a name in an open directory.
struct Target<'a> {
    /// The entry's parent directory.
    dir: BorrowedFd<'a>,
    /// The entry's file name.
    name: &'a OsStr,
    /// The entry's image path, for errors.
    path: &'a Path,
}

impl Target<'_> {
    /// Removes whatever is at the name (recursively for a directory), without following it.
    fn replace(&self, existing: Option<FileStat>) -> Result<(), LayerError> {
        if existing.is_none() {
            return Ok(());
        }
        remove_all_at(self.dir, self.name)
            .map_err(|e| LayerError::io("remove the existing entry", self.path, e))
    }

    /// `fchownat` without following the name.
    fn chown_nofollow(&self, u: nix::unistd::Uid, g: nix::unistd::Gid) -> nix::Result<()> {
        fchownat(
            self.dir,
            self.name,
            Some(u),
            Some(g),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    /// Sets the mode of the name, which the caller knows is not a symlink.
    fn chmod(&self, mode: u32) -> Result<(), LayerError> {
        fchmodat(
            self.dir,
            self.name,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| LayerError::io("set mode", self.path, e))
    }

    /// Sets atime and mtime to the entry's mtime, without following the name.
    fn set_mtime(&self, meta: &EntryMeta) -> Result<(), LayerError> {
        utimensat(
            self.dir,
            self.name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| LayerError::io("set mtime", self.path, e))
    }
}
