//! The content-addressed cache of unpacked images.
//!
//! An image is unpacked once, into `<cache>/images/<config digest>/rootfs`, and every later
//! run reuses it after a single `stat`. The key is the config digest because the config pins
//! every layer's diff_id: two binaries with the same image share an entry, and a rebuilt image
//! can never be served a stale one (a known bug class of caches keyed by name).
//!
//! Unpacking goes to a temporary directory beside the final one, renamed into place only when
//! complete and verified; a lock file makes concurrent first runs unpack once; a temporary
//! directory left by a killed run is removed by the next run of any image. Every directory
//! in the cache must be the caller's and writable by nobody else ([`trust`]).

use crate::decompress::decoder;
use crate::layer::remove::{list_dir, remove_all_at};
use crate::layer::{apply_layer, ApplyOptions, ApplyReport, LayerError};
use crate::oci::{Digest, Sha256Reader};
use crate::payload::{Payload, PayloadLayer};
use nix::fcntl::OFlag;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use trust::{caller_uid, make_random_dir, open_dir_at, open_lock_at, open_root, TrustError};

pub mod housekeeping;
pub mod runs;
pub mod trust;
use std::path::{Path, PathBuf};

/// Settings for [`ensure_rootfs`].
#[derive(Clone, Debug, Default)]
pub struct CacheOptions {
    /// Print what is done on stderr.
    pub debug: bool,
    /// Use this cache directory instead of the default.
    pub dir: Option<PathBuf>,
    /// The payload is the executable's own file-backed, read-only mapping: its pages may be
    /// handed back to the kernel once unpacked, which keeps a cold start's memory flat. Never
    /// set this for a payload on the heap (MADV_DONTNEED would zero it).
    pub payload_is_mapped_file: bool,
}

/// Why the image could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No cache location can be determined.
    #[error("no cache directory: set OCI2BIN_CACHE_DIR (or XDG_CACHE_HOME or HOME)")]
    NoLocation,
    /// `--prune` while containers run from the cache.
    #[error("{0} container(s) are running from this cache; stop them before --prune")]
    Busy(usize),
    /// `--name NAME` of a kept container that another run is using.
    #[error("the container {0} is running (another run holds it); stop that one first, or choose another --name")]
    ContainerInUse(String),
    /// `--name NAME` of a kept container made from another image.
    #[error("the container {name} was made from the image {had}, not this binary's {want}; choose another --name (its data is in {})", path.display())]
    ContainerImage {
        /// The container's name.
        name: String,
        /// The image (config digest) it was made from.
        had: String,
        /// This binary's image.
        want: String,
        /// Its directory, where the kept data is.
        path: std::path::PathBuf,
    },
    /// A file system operation failed.
    #[error("{action} {}: {source}{}", path.display(), hint(source))]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A cache directory is not trusted (see [`trust`]).
    #[error(transparent)]
    Untrusted(#[from] TrustError),
    /// The cache is on a file system mounted `noexec`.
    #[error("the cache directory {} is on a file system mounted noexec, so the image's programs could not run; set OCI2BIN_CACHE_DIR to a directory on an executable file system", .0.display())]
    NoExec(PathBuf),
    /// A layer could not be applied.
    #[error("unpacking layer {index} ({digest}): {source}")]
    Layer {
        /// Layer number, from 1.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// What went wrong.
        #[source]
        source: LayerError,
    },
    /// A layer's compressed stream cannot be read.
    #[error("decompressing layer {index} ({digest}): {source}")]
    Decode {
        /// Layer number, from 1.
        index: usize,
        /// Layer digest.
        digest: Digest,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// A layer's bytes do not match its digest.
    #[error("embedded layer {index} is corrupt: expected {expected}, got {actual}; nothing was run. Rebuild the binary or fetch an intact copy")]
    Corrupt {
        /// Layer number, from 1.
        index: usize,
        /// The digest in the manifest.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            " (no space left: free some, or set OCI2BIN_CACHE_DIR to a file system with room)"
        }
        Some(libc::EROFS) => {
            " (read-only file system: set OCI2BIN_CACHE_DIR to a writable directory)"
        }
        Some(libc::EACCES) => " (permission denied: set OCI2BIN_CACHE_DIR to a directory you own)",
        _ => "",
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The cache root (see [`crate::location::cache_root`]).
pub fn cache_root() -> Result<PathBuf, CacheError> {
    crate::location::cache_root().ok_or(CacheError::NoLocation)
}

/// Where an image's unpacked root lives (whether or not it exists yet).
pub fn rootfs_path(root: &Path, config_digest: &Digest) -> PathBuf {
    root.join("images").join(config_digest.hex()).join("rootfs")
}

/// An unpacked image root in the cache, held open: the container mounts it only if it is
/// still this directory, so nothing can swap it between the checks and the mount.
#[derive(Debug)]
pub struct CachedRoot {
    /// Its path on the host, for messages.
    pub path: PathBuf,
    /// The open root directory.
    pub fd: OwnedFd,
}

impl CachedRoot {
    /// The (device, inode) of the checked directory, which the container's init verifies
    /// before mounting `path` (see [`crate::ns::Syscall::reopen_dir_checked`]).
    pub fn identity(&self) -> Result<(u64, u64), CacheError> {
        let st = nix::sys::stat::fstat(&self.fd)
            .map_err(|e| io_err("checking", &self.path)(e.into()))?;
        Ok((st.st_dev, st.st_ino))
    }
}

/// Returns the unpacked root of the payload's image, unpacking it first if the cache has
/// none. Every cache directory is checked (see [`trust`]) and opened relative to a checked
/// one; temporary directories have random names; those left by killed runs of any image are
/// removed on the way.
pub fn ensure_rootfs(payload: &Payload<'_>, opts: &CacheOptions) -> Result<CachedRoot, CacheError> {
    let root_path = match &opts.dir {
        Some(d) => d.clone(),
        None => cache_root()?,
    };
    let uid = caller_uid();
    let root = open_root(&root_path, uid)?;
    let images_path = root_path.join("images");
    let images = open_dir_at(root.as_fd(), &root_path, "images".as_ref(), true, uid)?
        .expect("created when missing");
    let hex = payload.config_digest.hex();
    let rootfs_path = rootfs_path(&root_path, &payload.config_digest);
    let cached = open_cached(images.as_fd(), &images_path, hex, uid)?;
    remove_stale(images.as_fd(), &images_path, hex, false, opts.debug)?;
    if let Some(fd) = cached {
        if opts.debug {
            eprintln!("oci2bin: using cached image {}", rootfs_path.display());
        }
        return Ok(CachedRoot {
            path: rootfs_path,
            fd,
        });
    }
    let lock_name = format!("{hex}.lock");
    let lock_file = File::from(open_lock_at(
        images.as_fd(),
        &images_path,
        lock_name.as_ref(),
        uid,
        false,
    )?);
    let lock_path = images_path.join(&lock_name);
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io_err("locking", &lock_path)(e.into()))?;
    if let Some(fd) = open_cached(images.as_fd(), &images_path, hex, uid)? {
        return Ok(CachedRoot {
            path: rootfs_path,
            fd,
        });
    }
    check_exec(images.as_fd(), &images_path)?;
    remove_stale(images.as_fd(), &images_path, hex, true, opts.debug)?;
    let tmp_name = make_random_dir(images.as_fd(), &format!(".tmp-{hex}-"))
        .map_err(|e| io_err("creating a temporary directory in", &images_path)(e.into()))?;
    let tmp = images_path.join(&tmp_name);
    match unpack_into(payload, &tmp, opts) {
        Ok(()) => {
            nix::fcntl::renameat(images.as_fd(), tmp_name.as_str(), images.as_fd(), hex)
                .map_err(|e| io_err("renaming into place", &images_path.join(hex))(e.into()))?;
            let fd = open_cached(images.as_fd(), &images_path, hex, uid)?
                .ok_or_else(|| io_err("opening", &rootfs_path)(io::ErrorKind::NotFound.into()))?;
            Ok(CachedRoot {
                path: rootfs_path,
                fd,
            })
        }
        Err(e) => {
            if let Err(clean) = remove_all_at(images.as_fd(), tmp_name.as_ref()) {
                eprintln!(
                    "oci2bin: warning: could not remove the partial unpack {}: {clean}",
                    tmp.display()
                );
            }
            Err(e)
        }
    }
}

/// Opens `images/<hex>/rootfs` when the entry exists: the entry must pass the trust check
/// (it is ours and only we can write to it, so nobody else can have put `rootfs` there),
/// and neither is followed if it is a symlink.
fn open_cached(
    images: BorrowedFd<'_>,
    images_path: &Path,
    hex: &str,
    uid: u32,
) -> Result<Option<OwnedFd>, CacheError> {
    let Some(entry) = open_dir_at(images, images_path, hex.as_ref(), false, uid)? else {
        return Ok(None);
    };
    let path = images_path.join(hex).join("rootfs");
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    match nix::fcntl::openat(
        entry.as_fd(),
        "rootfs",
        flags,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ELOOP) => Err(TrustError::Symlink(path).into()),
        Err(e) => Err(io_err("opening", &path)(e.into())),
    }
}

/// Refuses a cache on a `noexec` file system, where no program of the image could run.
fn check_exec(dir: BorrowedFd<'_>, path: &Path) -> Result<(), CacheError> {
    let st = nix::sys::statvfs::fstatvfs(dir).map_err(|e| io_err("checking", path)(e.into()))?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC) {
        return Err(CacheError::NoExec(path.to_path_buf()));
    }
    Ok(())
}

/// Removes the temporary directories (`.tmp-<hex>-<random>`) that killed first runs left:
/// those of `hex` when `own` is set (the caller holds `hex`'s lock), and those of every
/// other image whose lock nobody holds, so a killed unpack is cleaned up by the next run of
/// any image.
fn remove_stale(
    images: BorrowedFd<'_>,
    images_path: &Path,
    hex: &str,
    own: bool,
    debug: bool,
) -> Result<(), CacheError> {
    let names = list_dir(images).map_err(|e| io_err("listing", images_path)(e.into()))?;
    for name in names {
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".tmp-")) else {
            continue;
        };
        let Some((owner, _)) = rest.split_once('-') else {
            continue;
        };
        // Another image's: only if no run holds its lock (a run unpacking it right now).
        let _held = if owner == hex {
            if !own {
                continue;
            }
            None
        } else {
            let lock_name = format!("{owner}.lock");
            let Ok(fd) = open_lock_at(images, images_path, lock_name.as_ref(), caller_uid(), false)
            else {
                continue;
            };
            match Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
                Ok(lock) => Some(lock),
                Err(_) => continue,
            }
        };
        if debug {
            eprintln!(
                "oci2bin: removing partial unpack {}",
                images_path.join(&name).display()
            );
        }
        remove_all_at(images, &name)
            .map_err(|e| io_err("removing", &images_path.join(&name))(e.into()))?;
    }
    Ok(())
}

fn unpack_into(payload: &Payload<'_>, tmp: &Path, opts: &CacheOptions) -> Result<(), CacheError> {
    let rootfs = tmp.join("rootfs");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&rootfs)
        .map_err(io_err("creating", &rootfs))?;
    let root_dir = File::open(&rootfs).map_err(io_err("opening", &rootfs))?;
    let mut report = ApplyReport::default();
    let apply_opts = ApplyOptions::default();
    let started = std::time::Instant::now();
    for (i, layer) in payload.layers.iter().enumerate() {
        apply_one(
            opts.payload_is_mapped_file,
            i + 1,
            layer,
            root_dir.as_fd(),
            &apply_opts,
            &mut report,
        )?;
    }
    if report.skipped_devices > 0 {
        eprintln!(
            "oci2bin: warning: skipped {} device node(s) in the image: they cannot be created without privileges (the container gets its own /dev)",
            report.skipped_devices
        );
    }
    if !report.recorded_owners.is_empty() {
        let path = tmp.join("owners.txt");
        let mut f = io::BufWriter::new(File::create(&path).map_err(io_err("creating", &path))?);
        for (p, uid, gid) in &report.recorded_owners {
            writeln!(f, "{uid}:{gid} {}", p.display()).map_err(io_err("writing", &path))?;
        }
        f.flush().map_err(io_err("writing", &path))?;
    }
    if opts.debug {
        eprintln!(
            "oci2bin: unpacked {} layers ({} entries) in {:.0?}; {} owner(s) recorded in owners.txt",
            payload.layers.len(),
            report.entries,
            started.elapsed(),
            report.recorded_owners.len()
        );
    }
    Ok(())
}

/// Reads a layer out of the mapped payload and hands the pages it has read back to the
/// kernel as it goes, so a cold start's memory stays flat whatever the image size (the pages
/// are file-backed: reading them again would simply fault them back in from the binary).
struct ReleasingReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    released: usize,
    enabled: bool,
}

impl<'a> ReleasingReader<'a> {
    /// Release in steps of this many bytes.
    const STEP: usize = 4 << 20;

    fn new(bytes: &'a [u8], enabled: bool) -> Self {
        ReleasingReader {
            bytes,
            pos: 0,
            released: 0,
            enabled,
        }
    }

    fn release_consumed(&mut self) {
        if !self.enabled {
            return;
        }
        let page = crate::payload::attached::page_size();
        let base = self.bytes.as_ptr() as usize;
        let start = (base + self.released).next_multiple_of(page);
        let end = (base + self.pos) / page * page;
        if end > start {
            // SAFETY: [start, end) lies inside `bytes`, a read-only file-backed mapping of the
            // executable; MADV_DONTNEED only drops our copies of its pages, and a later read
            // of the same bytes faults them in again unchanged. Failure is harmless.
            unsafe {
                let _ = nix::sys::mman::madvise(
                    std::ptr::NonNull::new_unchecked(start as *mut std::ffi::c_void),
                    end - start,
                    nix::sys::mman::MmapAdvise::MADV_DONTNEED,
                );
            }
        }
        self.released = self.pos;
    }
}

impl io::Read for ReleasingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.bytes.len() - self.pos);
        buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos - self.released >= Self::STEP || (n == 0 && self.pos > self.released) {
            self.release_consumed();
        }
        Ok(n)
    }
}

fn apply_one(
    release: bool,
    index: usize,
    layer: &PayloadLayer<'_>,
    root: std::os::fd::BorrowedFd<'_>,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> Result<(), CacheError> {
    let hashed = Sha256Reader::new(ReleasingReader::new(layer.bytes, release));
    let mut buffered = BufReader::with_capacity(256 << 10, hashed);
    let applied = decoder(layer.compression, &mut buffered)
        .map_err(|source| CacheError::Decode {
            index,
            digest: layer.digest.clone(),
            source,
        })
        .and_then(|dec| {
            apply_layer(root, dec, opts, report).map_err(|source| CacheError::Layer {
                index,
                digest: layer.digest.clone(),
                source,
            })
        });
    // Hash the rest of the blob even after a failure: a corrupt blob explains most failures
    // and deserves that message rather than a confusing tar error.
    let actual = match buffered.into_inner().finish() {
        Ok((d, _)) => d,
        Err(_) => Digest::of(layer.bytes),
    };
    if actual != layer.digest {
        return Err(CacheError::Corrupt {
            index,
            expected: layer.digest.clone(),
            actual,
        });
    }
    applied?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A minimal payload with uncompressed layers; `corrupt` flips a byte of the last layer
    /// after its digest was recorded.
    fn payload(layers: &[Vec<u8>], corrupt: bool) -> Vec<u8> {
        let ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids},
        }))
        .unwrap();
        let cd = Digest::of(&config);
        let descs: Vec<_> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(l).to_string(), "size": l.len()}))
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": descs,
        }))
        .unwrap();
        let md = Digest::of(&manifest);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len()}],
        }))
        .unwrap();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("oci2bin.json".into(), b"{}".to_vec()),
            ("index.json".into(), index),
            (md.blob_path(), manifest),
            (cd.blob_path(), config),
        ];
        for (i, l) in layers.iter().enumerate() {
            let mut l = l.clone();
            if corrupt && i == layers.len() - 1 {
                l[0] ^= 1;
            }
            files.push((Digest::of(&layers[i]).blob_path(), l));
        }
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        tar_of(&refs)
    }

    fn opts(dir: &Path) -> CacheOptions {
        CacheOptions {
            debug: false,
            dir: Some(dir.to_path_buf()),
            payload_is_mapped_file: false,
        }
    }

    #[test]
    fn unpacks_once_and_reuses() {
        let t = tempfile::tempdir().unwrap();
        let bytes = payload(&[tar_of(&[("a", b"1")]), tar_of(&[("b", b"2")])], false);
        let p = Payload::parse(&bytes).unwrap();
        let root = ensure_rootfs(&p, &opts(t.path())).unwrap().path;
        assert_eq!(fs::read(root.join("a")).unwrap(), b"1");
        assert_eq!(fs::read(root.join("b")).unwrap(), b"2");
        // A second run finds it without unpacking: a marker file survives.
        fs::write(root.join("marker"), b"x").unwrap();
        assert_eq!(ensure_rootfs(&p, &opts(t.path())).unwrap().path, root);
        assert!(root.join("marker").exists());
    }

    #[test]
    fn concurrent_first_runs_unpack_once() {
        let t = tempfile::tempdir().unwrap();
        let bytes = payload(&[tar_of(&[("a", b"1")])], false);
        let roots: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let p = Payload::parse(&bytes).unwrap();
                        ensure_rootfs(&p, &opts(t.path())).unwrap().path
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(roots.windows(2).all(|w| w[0] == w[1]));
        let leftovers: Vec<_> = fs::read_dir(t.path().join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn stale_partial_unpack_is_replaced() {
        let t = tempfile::tempdir().unwrap();
        let bytes = payload(&[tar_of(&[("a", b"1")])], false);
        let p = Payload::parse(&bytes).unwrap();
        let stale = t
            .path()
            .join("images")
            .join(format!(".tmp-{}-999999", p.config_digest.hex()));
        fs::create_dir_all(stale.join("rootfs/half")).unwrap();
        let root = ensure_rootfs(&p, &opts(t.path())).unwrap().path;
        assert!(!stale.exists());
        assert!(!root.join("half").exists());
        assert_eq!(fs::read(root.join("a")).unwrap(), b"1");
    }

    #[test]
    fn corrupt_layer_is_refused_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let bytes = payload(&[tar_of(&[("a", b"1")]), tar_of(&[("b", b"2")])], true);
        let p = Payload::parse(&bytes).unwrap();
        let err = ensure_rootfs(&p, &opts(t.path())).unwrap_err();
        assert!(matches!(err, CacheError::Corrupt { index: 2, .. }), "{err}");
        let names: Vec<_> = fs::read_dir(t.path().join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
