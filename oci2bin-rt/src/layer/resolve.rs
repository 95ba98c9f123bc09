//! Resolving untrusted paths inside a root directory.
//!
//! `openat2(RESOLVE_IN_ROOT)` makes the kernel treat the root fd as `/` for every component,
//! symlinks included, which is exactly the containment a layer needs: a symlinked parent is
//! followed *inside* the root, as Docker's chrooted extraction does, and `..` stops at the
//! root.
//!
//! Kernels older than 5.6 (or seccomp profiles that hide the syscall) lack `openat2`; for
//! them, and for the slow paths below, there is a component-wise walk in user space that
//! gives the same answers: each component is opened with `O_NOFOLLOW` relative to the
//! previous directory fd, symlinks are read with `readlinkat` and spliced into the remaining
//! path (absolute targets restart at the root), `..` at the root stays at the root, and at
//! most 40 symlinks are followed.
//!
//! The walk also does two things `openat2` cannot:
//! - it creates missing parent directories (mode 0755, like Docker), and
//! - as an unprivileged user, it loosens directories of lower layers that the user owns but
//!   cannot enter or write (mode 0555 `/usr/bin` of Fedora images, 0000 directories), so
//!   that a later layer can still add to them; every loosened directory is reported so that
//!   its mode can be restored after the layer.

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmodat, fstat, mkdirat, FchmodatFlags, FileStat, Mode, SFlag};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Most symlinks one resolution may follow (the kernel's `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;

/// How often an `openat2` that failed with `EAGAIN` is retried before walking instead. The
/// kernel returns `EAGAIN` for `RESOLVE_IN_ROOT` lookups through `..` when any rename or
/// mount happened on the system meanwhile, which is routine on a busy machine.
const EAGAIN_RETRIES: u32 = 16;

/// Which resolver applies a layer. Both confine every path to the root; they exist side by
/// side so that the fallback is tested on kernels that have `openat2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResolveMode {
    /// `openat2(RESOLVE_IN_ROOT)` for the common case; switches to [`ResolveMode::Walk`] by
    /// itself when the kernel answers `ENOSYS` (or `EPERM`, as some seccomp filters do).
    #[default]
    Openat2,
    /// The user-space walk only, for kernels older than 5.6.
    Walk,
}

/// True if `st` is a directory.
pub(crate) fn is_directory(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// The identity of an inode, to recognise a directory again after other work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    /// `st_dev`.
    pub(crate) dev: u64,
    /// `st_ino`.
    pub(crate) ino: u64,
}

impl FileId {
    /// The identity in a stat result.
    #[allow(clippy::unnecessary_cast)] // dev_t and ino_t differ in width between targets
    pub(crate) fn of(st: &FileStat) -> Self {
        FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        }
    }
}

/// Side effects of a walk that the layer applier must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WalkEvent {
    /// A missing directory `name` was created (mode 0755) inside the directory `parent`.
    Created {
        /// The directory that now holds the new one.
        parent: FileId,
        /// The new directory's name.
        name: OsString,
    },
    /// The directory at `path` (resolved, relative to the root) had too few permission bits
    /// for its owner and was given `u+rwx`; `mode` is what it had before.
    Loosened {
        /// Symlink-free path below the root; empty for the root itself.
        path: PathBuf,
        /// The directory's identity.
        id: FileId,
        /// Its permission bits before loosening.
        mode: u32,
    },
}

/// Opens `path` (absolute or relative: both mean "inside the root") below `root`, resolving
/// symlinks as if `root` were `/`. `..` cannot climb above the root.
///
/// Uses `openat2(RESOLVE_IN_ROOT)` and falls back to the user-space walk on kernels without
/// it. `O_NOFOLLOW` in `flags` applies to the last component only, as with `open(2)`. A file
/// that `O_CREAT` creates gets mode 0644 (less the umask), as `creat` from a shell would.
pub fn open_in_root<Fd: AsFd>(root: Fd, path: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
    open_in_root_with(root.as_fd(), path, flags, ResolveMode::Openat2)
}

/// [`open_in_root`] with an explicit resolver, so both can be tested.
pub(crate) fn open_in_root_with(
    root: BorrowedFd<'_>,
    path: &Path,
    flags: OFlag,
    mode: ResolveMode,
) -> std::io::Result<OwnedFd> {
    if mode == ResolveMode::Openat2 {
        match openat2_in_root(root, path, flags) {
            Err(e) if openat2_unavailable(e) || e == Errno::EAGAIN => {}
            other => return other.map_err(std::io::Error::from),
        }
    }
    let policy = WalkPolicy {
        create_missing: false,
        loosen_owner: None,
    };
    walk(root, path, Last::Open(flags), &policy, &mut Vec::new()).map_err(std::io::Error::from)
}

/// Reads a whole (small) file of the image, such as `/etc/passwd`, confined to `root`.
pub fn read_in_root(root: &Path, path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let dir = std::fs::File::open(root)?;
    let fd = open_in_root(&dir, path, OFlag::O_RDONLY)?;
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

/// `path` relative to the root, `.` for the root itself.
fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// The mode for a file that `flags` may create: 0644 with `O_CREAT` (a zero mode would make
/// it unreadable to every user but root), else none.
fn create_mode(flags: OFlag) -> Mode {
    if flags.contains(OFlag::O_CREAT) {
        Mode::from_bits_truncate(0o644)
    } else {
        Mode::empty()
    }
}

/// One `openat2(RESOLVE_IN_ROOT)`, retried while the kernel reports a concurrent rename.
fn openat2_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let mut tries = 0;
    loop {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(create_mode(flags))
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match nix::fcntl::openat2(root, rel, how) {
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// True if the error means "this kernel (or sandbox) has no `openat2`".
fn openat2_unavailable(e: Errno) -> bool {
    matches!(e, Errno::ENOSYS | Errno::EPERM)
}

/// Opens directories inside one root for the layer applier, remembering whether `openat2`
/// works so that a kernel without it is probed only once.
pub(crate) struct Resolver<'fd> {
    /// The root every path is confined to.
    root: BorrowedFd<'fd>,
    /// Use `openat2` for the fast path.
    openat2: bool,
    /// Loosen directories owned by this uid that lack needed bits (unprivileged users only).
    loosen_owner: Option<u32>,
}

impl<'fd> Resolver<'fd> {
    /// A resolver for `root`. `loosen_owner` is the caller's euid when it is not root; with
    /// `None` no permission bits are ever changed.
    pub(crate) fn new(root: BorrowedFd<'fd>, mode: ResolveMode, loosen_owner: Option<u32>) -> Self {
        Resolver {
            root,
            openat2: mode == ResolveMode::Openat2,
            loosen_owner,
        }
    }

    /// The root directory fd.
    pub(crate) fn root(&self) -> BorrowedFd<'fd> {
        self.root
    }

    /// Opens the directory at `path` (relative to the root, symlinks followed inside the
    /// root) as an `O_PATH` fd.
    ///
    /// `need` is the permission bits (of 0o700) the caller needs on that directory, e.g.
    /// 0o300 to create entries in it; an unprivileged owner gets them by loosening, which is
    /// reported in `events`. With `create_missing`, missing directories are created (also
    /// reported).
    pub(crate) fn open_dir(
        &mut self,
        path: &Path,
        need: u32,
        create_missing: bool,
        events: &mut Vec<WalkEvent>,
    ) -> nix::Result<OwnedFd> {
        if self.openat2 {
            match openat2_in_root(self.root, path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => match self.loosen_owner {
                    None => return Ok(fd),
                    Some(uid) => {
                        if !lacks(&fstat(&fd)?, uid, need) {
                            return Ok(fd);
                        }
                    }
                },
                Err(e) if openat2_unavailable(e) => self.openat2 = false,
                Err(Errno::ENOENT) if create_missing => {}
                Err(Errno::EACCES) if self.loosen_owner.is_some() => {}
                Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
        let policy = WalkPolicy {
            create_missing,
            loosen_owner: self.loosen_owner,
        };
        walk(self.root, path, Last::Dir { need }, &policy, events)
    }
}

/// True if `st` belongs to `uid` and lacks some of the `need` bits.
fn lacks(st: &FileStat, uid: u32, need: u32) -> bool {
    st.st_uid == uid && st.st_mode & need != need
}

/// What the walk does with the last component.
#[derive(Debug, Clone, Copy)]
enum Last {
    /// Open it like `open(2)` with these flags.
    Open(OFlag),
    /// It must be a directory; return an `O_PATH` fd with `need` owner bits.
    Dir {
        /// Owner permission bits the caller needs.
        need: u32,
    },
}

/// What the walk may change on the way.
struct WalkPolicy {
    /// Create missing directories (never the last component of [`Last::Open`]).
    create_missing: bool,
    /// Loosen directories of this owner that lack search (or the final `need`) permission.
    loosen_owner: Option<u32>,
}

/// Pushes `path`'s components in front of `queue`, keeping their order. Returns true if
/// `path` is absolute.
fn prepend(queue: &mut VecDeque<OsString>, path: &Path) -> bool {
    let mut absolute = false;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::Normal(n) => parts.push(n.to_os_string()),
        }
    }
    for p in parts.into_iter().rev() {
        queue.push_front(p);
    }
    absolute
}

/// Resolves `path` inside `root` one component at a time (see the module docs).
///
/// Only one directory fd is held at a time: `..` re-opens the real parent of the current
/// directory, which is correct because the walk only ever descends through real
/// directories, and `names` (the symlink-free path) says when the root is reached.
fn walk(
    root: BorrowedFd<'_>,
    path: &Path,
    last: Last,
    policy: &WalkPolicy,
    events: &mut Vec<WalkEvent>,
) -> nix::Result<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut queue = VecDeque::new();
    prepend(&mut queue, path);
    let mut cur: Option<OwnedFd> = None;
    let mut names: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        let at = cur.as_ref().map_or(root, |fd| fd.as_fd());
        if name == ".." {
            if names.pop().is_some() {
                cur = if names.is_empty() {
                    None
                } else {
                    Some(openat(at, "..", dir_flags, Mode::empty())?)
                };
            }
            continue;
        }
        let is_last = queue.is_empty();
        let open_last = match last {
            Last::Open(flags) if is_last => Some(flags),
            _ => None,
        };
        match readlinkat(at, name.as_os_str()) {
            Ok(target) => {
                if let Some(flags) = open_last.filter(|f| f.contains(OFlag::O_NOFOLLOW)) {
                    // Like open(2): O_NOFOLLOW on a symlink gives ELOOP, or the link itself
                    // with O_PATH.
                    return openat(
                        at,
                        name.as_os_str(),
                        flags | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    );
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                if prepend(&mut queue, Path::new(&target)) {
                    cur = None;
                    names.clear();
                }
                continue;
            }
            Err(Errno::EINVAL) => {} // exists and is not a symlink
            Err(Errno::ENOENT) if open_last.is_none() && policy.create_missing => {
                let parent = FileId::of(&fstat(at)?);
                let mode = Mode::from_bits_truncate(0o755);
                mkdirat(at, name.as_os_str(), mode)?;
                // mkdirat obeys the umask; Docker's directories are 0755 whatever it is.
                fchmodat(at, name.as_os_str(), mode, FchmodatFlags::FollowSymlink)?;
                events.push(WalkEvent::Created {
                    parent,
                    name: name.clone(),
                });
            }
            Err(Errno::ENOENT) if open_last.is_some() => {} // O_CREAT may create it
            Err(e) => return Err(e),
        }
        if let Some(flags) = open_last {
            return openat(
                at,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                create_mode(flags),
            );
        }
        let next = openat(at, name.as_os_str(), dir_flags, Mode::empty())?;
        names.push(name);
        if let Some(uid) = policy.loosen_owner {
            let st = fstat(&next)?;
            if lacks(&st, uid, 0o100) {
                let leaf = names.last().map_or(OsStr::new("."), |n| n.as_os_str());
                loosen(at, leaf, &st, &names, events)?;
            }
        }
        cur = Some(next);
    }
    let at = cur.as_ref().map_or(root, |fd| fd.as_fd());
    match last {
        Last::Open(flags) => openat(at, ".", flags | OFlag::O_CLOEXEC, Mode::empty()),
        Last::Dir { need } => {
            let fd = match cur {
                Some(fd) => fd,
                None => openat(root, ".", dir_flags, Mode::empty())?,
            };
            if let Some(uid) = policy.loosen_owner {
                let st = fstat(&fd)?;
                if lacks(&st, uid, need) {
                    // Every directory the walk entered already has search permission, so
                    // "." can be looked up in it.
                    loosen(fd.as_fd(), OsStr::new("."), &st, &names, events)?;
                }
            }
            Ok(fd)
        }
    }
}

/// Gives the directory `name` in `at` (whose stat is `st`) `u+rwx` and reports it.
///
/// `name` is known to be a directory (opened with `O_NOFOLLOW | O_DIRECTORY`) and nothing
/// else changes the tree meanwhile, so following it cannot reach a symlink.
fn loosen(
    at: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    names: &[OsString],
    events: &mut Vec<WalkEvent>,
) -> nix::Result<()> {
    let mode = st.st_mode & 0o7777;
    fchmodat(
        at,
        name,
        Mode::from_bits_truncate(mode | 0o700),
        FchmodatFlags::FollowSymlink,
    )?;
    events.push(WalkEvent::Loosened {
        path: names.iter().collect(),
        id: FileId::of(st),
        mode,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    const MODES: [ResolveMode; 2] = [ResolveMode::Openat2, ResolveMode::Walk];

    /// `base/root` with `base/outside/secret` next to it.
    fn fixture() -> (tempfile::TempDir, fs::File) {
        let base = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(base.path().join("root/real/sub")).expect("mkdir");
        fs::write(base.path().join("root/real/sub/f"), b"inside").expect("write");
        fs::create_dir(base.path().join("outside")).expect("mkdir");
        fs::write(base.path().join("outside/secret"), b"outside").expect("write");
        let root = fs::File::open(base.path().join("root")).expect("open root");
        (base, root)
    }

    fn read_via(root: &fs::File, path: &str, mode: ResolveMode) -> std::io::Result<String> {
        let fd = open_in_root_with(root.as_fd(), Path::new(path), OFlag::O_RDONLY, mode)?;
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn dotdot_and_symlinks_stay_inside_the_root() {
        let (base, root) = fixture();
        let r = base.path().join("root");
        symlink("/", r.join("abs")).expect("symlink");
        symlink("../../..", r.join("real/up")).expect("symlink");
        symlink("../outside", r.join("rel")).expect("symlink");
        symlink(base.path().join("outside"), r.join("hostabs")).expect("symlink");
        fs::create_dir(r.join("outside")).expect("mkdir");
        fs::write(r.join("outside/secret"), b"decoy").expect("write");
        for mode in MODES {
            assert_eq!(read_via(&root, "../../real/sub/f", mode).unwrap(), "inside");
            assert_eq!(
                read_via(&root, "/abs/abs/real/sub/f", mode).unwrap(),
                "inside"
            );
            assert_eq!(
                read_via(&root, "real/up/real/sub/f", mode).unwrap(),
                "inside"
            );
            assert_eq!(read_via(&root, "rel/secret", mode).unwrap(), "decoy");
            let err = read_via(&root, "hostabs/secret", mode).expect_err("host path");
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{mode:?}");
        }
    }

    #[test]
    fn symlink_loops_end_with_eloop() {
        let (base, root) = fixture();
        let r = base.path().join("root");
        symlink("b", r.join("a")).expect("symlink");
        symlink("a", r.join("b")).expect("symlink");
        for mode in MODES {
            let err = read_via(&root, "a/x", mode).expect_err("loop");
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{mode:?}");
        }
    }

    #[test]
    fn forty_links_resolve_and_forty_one_do_not() {
        let (base, root) = fixture();
        let r = base.path().join("root");
        // l0 -> l1 -> ... -> l40 -> real: 41 links from l0, 40 from l1.
        symlink("real", r.join("l40")).expect("symlink");
        for i in 0..40 {
            symlink(format!("l{}", i + 1), r.join(format!("l{i}"))).expect("symlink");
        }
        for mode in MODES {
            assert_eq!(
                read_via(&root, "l1/sub/f", mode).unwrap(),
                "inside",
                "{mode:?}"
            );
            let err = read_via(&root, "l0/sub/f", mode).expect_err("41 links");
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{mode:?}");
        }
    }

    #[test]
    fn nofollow_applies_to_the_last_component_only() {
        let (base, root) = fixture();
        let r = base.path().join("root");
        symlink("real/sub/f", r.join("lnk")).expect("symlink");
        symlink("real", r.join("dirlnk")).expect("symlink");
        for mode in MODES {
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW;
            let err = open_in_root_with(root.as_fd(), Path::new("lnk"), flags, mode)
                .expect_err("final symlink");
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{mode:?}");
            open_in_root_with(root.as_fd(), Path::new("dirlnk/sub/f"), flags, mode)
                .expect("intermediate symlinks are followed");
        }
    }

    #[test]
    fn open_dir_creates_missing_directories_through_dangling_links() {
        for mode in MODES {
            let (base, root) = fixture();
            let r = base.path().join("root");
            symlink("/made/here", r.join("dangling")).expect("symlink");
            let mut resolver = Resolver::new(root.as_fd(), mode, None);
            let mut events = Vec::new();
            resolver
                .open_dir(Path::new("dangling/deeper"), 0o300, true, &mut events)
                .expect("created");
            assert!(r.join("made/here/deeper").is_dir(), "{mode:?}");
            let created: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    WalkEvent::Created { name, .. } => Some(name.to_string_lossy().into_owned()),
                    WalkEvent::Loosened { .. } => None,
                })
                .collect();
            assert_eq!(created, ["made", "here", "deeper"], "{mode:?}");
            let m = fs::metadata(r.join("made/here"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(m & 0o7777, 0o755);
            let err = resolver
                .open_dir(Path::new("missing/x"), 0o300, false, &mut events)
                .expect_err("no create");
            assert_eq!(err, Errno::ENOENT);
        }
    }

    #[test]
    fn open_dir_loosens_owned_directories_and_reports_them() {
        for mode in MODES {
            let (base, root) = fixture();
            let r = base.path().join("root");
            fs::set_permissions(r.join("real/sub"), fs::Permissions::from_mode(0o555))
                .expect("chmod");
            fs::set_permissions(r.join("real"), fs::Permissions::from_mode(0o000)).expect("chmod");
            let me = nix::unistd::geteuid().as_raw();
            let mut resolver = Resolver::new(root.as_fd(), mode, Some(me));
            let mut events = Vec::new();
            resolver
                .open_dir(Path::new("real/sub"), 0o300, false, &mut events)
                .expect("open");
            let loosened: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    WalkEvent::Loosened { path, mode, .. } => Some((path.clone(), *mode)),
                    WalkEvent::Created { .. } => None,
                })
                .collect();
            assert_eq!(
                loosened,
                [
                    (PathBuf::from("real"), 0o000),
                    (PathBuf::from("real/sub"), 0o555)
                ],
                "{mode:?}"
            );
            for d in ["real", "real/sub"] {
                let m = fs::metadata(r.join(d)).expect("stat").permissions().mode();
                assert_eq!(m & 0o700, 0o700, "{d} {mode:?}");
            }
            crate::layer::remove_tree(base.path()).expect("clean up");
        }
    }

    #[test]
    fn open_dir_without_an_owner_changes_no_modes() {
        let (base, root) = fixture();
        let r = base.path().join("root");
        fs::set_permissions(r.join("real"), fs::Permissions::from_mode(0o555)).expect("chmod");
        let mut resolver = Resolver::new(root.as_fd(), ResolveMode::Walk, None);
        let mut events = Vec::new();
        resolver
            .open_dir(Path::new("real"), 0o300, false, &mut events)
            .expect("open");
        assert!(events.is_empty());
        let m = fs::metadata(r.join("real"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(m & 0o7777, 0o555);
        crate::layer::remove_tree(base.path()).expect("clean up");
    }

    #[test]
    fn read_in_root_confines_absolute_symlinks() {
        let (base, _root) = fixture();
        let r = base.path().join("root");
        fs::create_dir(r.join("etc")).expect("mkdir");
        fs::write(r.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").expect("write");
        symlink("/etc/passwd", r.join("real/pw")).expect("symlink");
        let got = read_in_root(&r, Path::new("/real/pw")).expect("read");
        assert_eq!(got, b"root:x:0:0::/root:/bin/sh\n");
    }
}
