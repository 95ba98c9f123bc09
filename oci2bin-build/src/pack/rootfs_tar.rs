//! Writing a root filesystem directory as a reproducible layer tar.
//!
//! The tar must depend only on the tree's content and ownership, never on when or where it was
//! packed: entries come in path order (a depth-first walk with each directory's children sorted
//! by their bytes, parents before children), every mtime is the caller's `SOURCE_DATE_EPOCH`,
//! owners are numeric only (no user or group names, which would come from the packing host's
//! `/etc/passwd`), and no atime/ctime is recorded. Files that share an inode become one regular
//! entry plus hardlink entries pointing at the first path. Device nodes and sockets cannot be
//! created by a rootless runtime and are meaningless in an image, so they are skipped and
//! counted. Symlinks are stored, never followed. File contents stream through; nothing is held
//! in memory but the walk's paths.

use super::error::PackError;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use tar::{Builder, EntryType, Header};

/// What went into a layer tar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TarStats {
    /// Entries written (hardlinks included, GNU long-name records not).
    pub entries: u64,
    /// Character and block devices left out.
    pub skipped_devices: u64,
    /// Unix sockets left out.
    pub skipped_sockets: u64,
}

/// Writes the tree under `rootfs` (not the root directory itself) as a tar into `out`, ends the
/// archive and returns the statistics and `out`.
pub(crate) fn write_rootfs_tar<W: Write>(
    rootfs: &Path,
    out: W,
    mtime: u64,
) -> Result<(TarStats, W), PackError> {
    let mut walker = Walker::new(out, mtime, Ownership::Keep);
    walker.add_children(rootfs, &[])?;
    walker.finish(rootfs)
}

/// Whose ownership and modes the entries get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The files' own numeric owners and permission bits (packing a root filesystem).
    Keep,
    /// Owner 0:0, directories 0755, files 0755 when the owner may execute them and 0644
    /// otherwise: files added from a build machine, whose owners and umask mean nothing in
    /// the image and must not make the layer differ between machines.
    Root,
}

/// Writes tar entries for files of the build machine with reproducible metadata; used whole
/// by [`write_rootfs_tar`] and entry by entry by the layer of added files (`crate::edit`).
pub(crate) struct Walker<W: Write> {
    builder: Builder<W>,
    mtime: u64,
    ownership: Ownership,
    /// (device, inode) of multiply-linked regular files -> the first path written for them.
    first_link: HashMap<(u64, u64), Vec<u8>>,
    stats: TarStats,
}

impl<W: Write> Walker<W> {
    /// A walker writing into `out`, every entry with mtime `mtime`.
    pub(crate) fn new(out: W, mtime: u64, ownership: Ownership) -> Self {
        Walker {
            builder: Builder::new(out),
            mtime,
            ownership,
            first_link: HashMap::new(),
            stats: TarStats::default(),
        }
    }

    /// Ends the archive; `what` names the tree in an error.
    pub(crate) fn finish(self, what: &Path) -> Result<(TarStats, W), PackError> {
        let stats = self.stats;
        let out = self
            .builder
            .into_inner()
            .map_err(|source| PackError::LayerEntry {
                path: what.to_path_buf(),
                source,
            })?;
        Ok((stats, out))
    }

    /// Adds a directory entry `rel` that has no file behind it (a parent of an added file),
    /// with the given mode and owner.
    pub(crate) fn add_synthetic_dir(
        &mut self,
        rel: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Result<(), PackError> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(mode & 0o7777);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(self.mtime);
        h.set_size(0);
        let mut name = rel.to_vec();
        name.push(b'/');
        self.builder
            .append_data(&mut h, bytes_path(&name), io::empty())
            .map_err(|source| PackError::LayerEntry {
                path: bytes_path(rel).to_path_buf(),
                source,
            })?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Adds the file, directory (its entry only) or symlink at `abs` as `rel`, with
    /// permission bits `mode` instead of those the ownership rule gives, when set.
    pub(crate) fn add_path(
        &mut self,
        abs: &Path,
        rel: &[u8],
        mode: Option<u32>,
    ) -> Result<(), PackError> {
        let md = fs::symlink_metadata(abs).map_err(PackError::read(abs))?;
        self.add_entry_with_mode(abs, rel, &md, mode)
    }

    /// Adds the children of directory `dir`, whose path in the archive is `rel` (empty for the
    /// root), in sorted order, recursing into subdirectories right after their own entry.
    fn add_children(&mut self, dir: &Path, rel: &[u8]) -> Result<(), PackError> {
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(PackError::read(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let abs = dir.join(&name);
            let mut child_rel = rel.to_vec();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(name.as_bytes());
            let md = fs::symlink_metadata(&abs).map_err(PackError::read(&abs))?;
            self.add_entry(&abs, &child_rel, &md)?;
            if md.file_type().is_dir() {
                self.add_children(&abs, &child_rel)?;
            }
        }
        Ok(())
    }

    fn add_entry(&mut self, abs: &Path, rel: &[u8], md: &Metadata) -> Result<(), PackError> {
        self.add_entry_with_mode(abs, rel, md, None)
    }

    fn add_entry_with_mode(
        &mut self,
        abs: &Path,
        rel: &[u8],
        md: &Metadata,
        mode: Option<u32>,
    ) -> Result<(), PackError> {
        let ft = md.file_type();
        let header = |w: &Self, kind| {
            let mut h = w.header(md, kind);
            if let Some(m) = mode {
                h.set_mode(m & 0o7777);
            }
            h
        };
        let entry_err = |source| PackError::LayerEntry {
            path: abs.to_path_buf(),
            source,
        };
        if ft.is_dir() {
            let mut header = header(self, EntryType::Directory);
            let mut name = rel.to_vec();
            name.push(b'/');
            self.builder
                .append_data(&mut header, bytes_path(&name), io::empty())
                .map_err(entry_err)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(PackError::read(abs))?;
            let mut header = header(self, EntryType::Symlink);
            self.builder
                .append_link(&mut header, bytes_path(rel), &target)
                .map_err(entry_err)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = self.first_link.get(&(md.dev(), md.ino())) {
                    let mut header = header(self, EntryType::Link);
                    let first = first.clone();
                    self.builder
                        .append_link(&mut header, bytes_path(rel), bytes_path(&first))
                        .map_err(entry_err)?;
                    self.stats.entries += 1;
                    return Ok(());
                }
                self.first_link.insert((md.dev(), md.ino()), rel.to_vec());
            }
            let file = File::open(abs).map_err(PackError::read(abs))?;
            let mut header = header(self, EntryType::Regular);
            header.set_size(md.len());
            let content = ExactLen {
                inner: file,
                remaining: md.len(),
            };
            self.builder
                .append_data(&mut header, bytes_path(rel), content)
                .map_err(entry_err)?;
        } else if ft.is_fifo() {
            let mut header = header(self, EntryType::Fifo);
            self.builder
                .append_data(&mut header, bytes_path(rel), io::empty())
                .map_err(entry_err)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            self.stats.skipped_devices += 1;
            return Ok(());
        } else {
            // Sockets (and any future file type): nothing an image can carry.
            self.stats.skipped_sockets += 1;
            return Ok(());
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// A GNU header with the reproducible metadata of `md`: permission bits (including
    /// setuid/setgid/sticky), numeric owner, the fixed mtime, size 0.
    fn header(&self, md: &Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        match self.ownership {
            Ownership::Keep => {
                h.set_mode(md.mode() & 0o7777);
                h.set_uid(u64::from(md.uid()));
                h.set_gid(u64::from(md.gid()));
            }
            Ownership::Root => {
                let exec = md.is_dir() || md.file_type().is_symlink() || md.mode() & 0o100 != 0;
                h.set_mode(if exec { 0o755 } else { 0o644 });
                h.set_uid(0);
                h.set_gid(0);
            }
        }
        h.set_mtime(self.mtime);
        h.set_size(0);
        h
    }
}

fn bytes_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Reads exactly `remaining` bytes, failing if the file shrank after its size was put in the
/// header (a short entry would silently corrupt every following entry of the archive).
struct ExactLen<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactLen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The entry names of a tar, in order (for tests here and in the pack module).
#[cfg(test)]
pub(crate) fn entry_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8(e.path_bytes().into_owned()).unwrap()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::os::unix::net::UnixListener;

    fn tar_of(root: &Path, mtime: u64) -> (TarStats, Vec<u8>) {
        write_rootfs_tar(root, Vec::new(), mtime).unwrap()
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0);
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn entries_are_sorted_parents_first_with_dir_slashes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a.txt"), "x").unwrap();
        fs::write(root.join("a/b/c"), "c").unwrap();
        fs::write(root.join("a/Z"), "z").unwrap();
        fs::write(root.join("B"), "b").unwrap();
        let (stats, tar) = tar_of(root, 0);
        assert_eq!(
            entry_names(&tar),
            ["B", "a/", "a/Z", "a/b/", "a/b/c", "a.txt"]
        );
        assert_eq!(stats.entries, 6);
    }

    #[test]
    fn metadata_is_normalised_but_modes_and_owners_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("suid"), "s").unwrap();
        set_mode(&root.join("suid"), 0o4755);
        fs::write(root.join("none"), "n").unwrap();
        set_mode(&root.join("none"), 0o000);
        fs::create_dir(root.join("tmp")).unwrap();
        set_mode(&root.join("tmp"), 0o1777);
        fs::create_dir(root.join("sgid")).unwrap();
        set_mode(&root.join("sgid"), 0o2750);
        let (_, tar) = tar_of(root, 1_234_567);
        let me = (unsafe { libc::geteuid() }, unsafe { libc::getegid() });
        let mut modes = HashMap::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_234_567);
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));
            assert_eq!(h.uid().unwrap(), u64::from(me.0));
            assert_eq!(h.gid().unwrap(), u64::from(me.1));
            let gnu = h.as_gnu().unwrap();
            assert_eq!(gnu.atime().unwrap_or(0), 0);
            assert_eq!(gnu.ctime().unwrap_or(0), 0);
            modes.insert(
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                h.mode().unwrap(),
            );
        }
        assert_eq!(modes["suid"], 0o4755);
        assert_eq!(modes["none"], 0o000);
        assert_eq!(modes["tmp/"], 0o1777);
        assert_eq!(modes["sgid/"], 0o2750);
    }

    #[test]
    fn symlinks_are_stored_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("real")).unwrap();
        fs::write(root.join("real/f"), "data").unwrap();
        symlink("real", root.join("rel")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../outside", root.join("up")).unwrap();
        symlink("dangling/nowhere", root.join("dangling")).unwrap();
        let long = "t".repeat(150);
        symlink(&long, root.join("long")).unwrap();
        let (stats, tar) = tar_of(root, 0);
        let mut links = HashMap::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let e = e.unwrap();
            if e.header().entry_type() == EntryType::Symlink {
                links.insert(
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        assert_eq!(links["rel"], "real");
        assert_eq!(links["abs"], "/etc");
        assert_eq!(links["up"], "../../../outside");
        assert_eq!(links["dangling"], "dangling/nowhere");
        assert_eq!(links["long"], long);
        // The link to a directory is not descended into: real/f appears once.
        assert_eq!(
            entry_names(&tar)
                .iter()
                .filter(|n| n.ends_with("/f"))
                .count(),
            1
        );
        assert_eq!(stats.entries, 7);
    }

    #[test]
    fn hardlinks_become_link_entries_to_the_first_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/orig"), "shared content").unwrap();
        fs::hard_link(root.join("d/orig"), root.join("a-link")).unwrap();
        fs::hard_link(root.join("d/orig"), root.join("z-link")).unwrap();
        let (_, tar) = tar_of(root, 0);
        let mut seen = Vec::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let kind = e.header().entry_type();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let target = e
                .link_name()
                .unwrap()
                .map(|t| t.to_string_lossy().into_owned());
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push((path, kind, target, body));
        }
        // "a-link" sorts first, so it carries the data and the others point at it.
        assert_eq!(
            seen[0],
            (
                "a-link".into(),
                EntryType::Regular,
                None,
                "shared content".into()
            )
        );
        assert_eq!(seen[1].0, "d/");
        assert_eq!(
            seen[2],
            (
                "d/orig".into(),
                EntryType::Link,
                Some("a-link".into()),
                String::new()
            )
        );
        assert_eq!(
            seen[3],
            (
                "z-link".into(),
                EntryType::Link,
                Some("a-link".into()),
                String::new()
            )
        );
    }

    #[test]
    fn fifos_kept_sockets_skipped_long_names_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        mkfifo(&root.join("fifo"));
        set_mode(&root.join("fifo"), 0o640);
        let _sock = UnixListener::bind(root.join("sock")).unwrap();
        let deep = root.join("x".repeat(90)).join("y".repeat(90));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("file"), "deep").unwrap();
        let (stats, tar) = tar_of(root, 0);
        assert_eq!(stats.skipped_sockets, 1);
        assert_eq!(stats.skipped_devices, 0);
        let names = entry_names(&tar);
        assert!(!names.iter().any(|n| n == "sock"));
        let long = format!("{}/{}/file", "x".repeat(90), "y".repeat(90));
        assert!(names.contains(&long), "{names:?}");
        let mut archive = tar::Archive::new(&tar[..]);
        let fifo = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path_bytes().as_ref() == b"fifo")
            .unwrap();
        assert_eq!(fifo.header().entry_type(), EntryType::Fifo);
        assert_eq!(fifo.header().mode().unwrap(), 0o640);
    }

    #[test]
    fn unreadable_root_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = write_rootfs_tar(&missing, Vec::new(), 0).unwrap_err();
        assert!(matches!(&err, PackError::ReadRootfs { path, .. } if *path == missing));
        assert!(err.to_string().contains("missing"));
    }

    #[test]
    fn exact_len_refuses_a_short_file() {
        let mut r = ExactLen {
            inner: &b"abc"[..],
            remaining: 5,
        };
        let mut buf = Vec::new();
        let err = r.read_to_end(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut r = ExactLen {
            inner: &b"abcdef"[..],
            remaining: 4,
        };
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"abcd");
    }
}
