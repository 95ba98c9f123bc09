//! Finding a payload attached after linking (see [`super::slot`]): read the slot linked into
//! this executable, then map that range of the executable's own file.
//!
//! The mapping is private and read-only and is never unmapped, so the payload is a
//! `&'static [u8]` just like a linked one, and its pages come from the page cache on demand
//! (nothing is read into the heap; the cache may hand unpacked pages back, see
//! [`crate::cache::CacheOptions::payload_is_mapped_file`]).

use super::slot::{self, Slot};
use std::fs::File;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// The slot itself. `cargo oci2bin` rewrites these bytes in the output file; the code below
/// must therefore read them with a volatile load, never from a constant the compiler folded.
#[used]
#[link_section = ".oci2bin.slot"]
static SLOT: [u8; slot::LEN] = slot::EMPTY;

/// Why the attached payload cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum AttachedError {
    /// The slot is empty: this is the runtime before `cargo oci2bin` attached an image.
    #[error("this executable carries no image: it is the bare oci2bin runtime; build one with `cargo oci2bin --image IMAGE`")]
    NotAttached,
    /// The executable's own file cannot be opened.
    #[error("cannot open this executable's own file {} to read the image attached to it: {source} (it must be readable, not only executable; /proc must be mounted or the program started by its path)", path.display())]
    Open {
        /// The path tried last.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is shorter than the slot says: a partial copy or download.
    #[error("{} is truncated: the image attached to it ends at byte {needed} but the file has {actual} bytes; copy or download the whole file again (tools that rewrite ELF files, such as strip, drop the image)", path.display())]
    Truncated {
        /// The executable file.
        path: PathBuf,
        /// Where the payload ends.
        needed: u64,
        /// The file's size.
        actual: u64,
    },
    /// `mmap` failed.
    #[error("cannot map the image attached to {}: {source}", path.display())]
    Map {
        /// The executable file.
        path: PathBuf,
        /// The error.
        source: nix::Error,
    },
}

/// The system's page size: the unit of `mmap` offsets and of `madvise`, 4 KiB on x86_64 but
/// 16 or 64 KiB on many arm64 and ppc64le kernels.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// The slot as it is in this process's memory (and so in its file).
pub fn slot() -> Slot {
    // SAFETY: reading a static we own; volatile so the patched file bytes are what is read.
    let bytes = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(SLOT)) };
    Slot::decode(&bytes).expect("the linked slot starts with its magic")
}

/// Opens the running executable: `/proc/self/exe`, else (no `/proc`) the path the kernel was
/// given (`AT_EXECFN`).
fn open_self() -> Result<(File, PathBuf), AttachedError> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    let err = match File::open(&proc_exe) {
        Ok(f) => return Ok((f, proc_exe)),
        Err(e) => e,
    };
    if err.kind() != std::io::ErrorKind::NotFound {
        return Err(AttachedError::Open {
            path: proc_exe,
            source: err,
        });
    }
    // SAFETY: getauxval has no preconditions; AT_EXECFN, when present, points to the
    // NUL-terminated path string the kernel placed on the initial stack.
    let execfn = unsafe { libc::getauxval(libc::AT_EXECFN) } as *const libc::c_char;
    if execfn.is_null() {
        return Err(AttachedError::Open {
            path: proc_exe,
            source: err,
        });
    }
    // SAFETY: see above; the string lives for the whole process.
    let bytes = unsafe { std::ffi::CStr::from_ptr(execfn) }.to_bytes();
    let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes));
    match File::open(&path) {
        Ok(f) => Ok((f, path)),
        Err(source) => Err(AttachedError::Open { path, source }),
    }
}

/// `path` as messages should name it: the real file behind `/proc/self/exe`. Resolved only
/// for a message, so a good start does not pay for the `readlink`.
fn real_path(path: PathBuf) -> PathBuf {
    std::fs::read_link(&path).unwrap_or(path)
}

/// Maps `slot`'s range of `file` and leaks the mapping.
fn map(file: &File, path: PathBuf, slot: Slot) -> Result<&'static [u8], AttachedError> {
    let actual = file
        .metadata()
        .map_err(|source| AttachedError::Open {
            path: real_path(path.clone()),
            source,
        })?
        .len();
    let needed = slot.offset.saturating_add(slot.len);
    if needed > actual {
        return Err(AttachedError::Truncated {
            path: real_path(path),
            needed,
            actual,
        });
    }
    // mmap offsets must be page-aligned: map from the page holding the first byte.
    let page = page_size() as u64;
    let start = slot.offset - slot.offset % page;
    let skip = (slot.offset - start) as usize;
    let len = NonZeroUsize::new(skip + slot.len as usize).expect("attached payloads are not empty");
    // SAFETY: a private read-only mapping of a range checked to lie inside the file. It is
    // never unmapped, so the slice may be 'static. Truncating the file while it runs would
    // fault, as it would for the executable's own code.
    let ptr = unsafe {
        nix::sys::mman::mmap(
            None,
            len,
            nix::sys::mman::ProtFlags::PROT_READ,
            nix::sys::mman::MapFlags::MAP_PRIVATE,
            file,
            start as libc::off_t,
        )
    }
    .map_err(|source| AttachedError::Map {
        path: real_path(path),
        source,
    })?;
    // SAFETY: the mapping is `skip + slot.len` bytes long and lives forever.
    Ok(unsafe {
        std::slice::from_raw_parts((ptr.as_ptr() as *const u8).add(skip), slot.len as usize)
    })
}

/// The payload attached to this executable, mapped from its own file.
pub fn payload() -> Result<&'static [u8], AttachedError> {
    let slot = slot();
    if !slot.is_attached() {
        return Err(AttachedError::NotAttached);
    }
    let (file, path) = open_self()?;
    map(&file, path, slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_test_binary_has_no_payload() {
        assert_eq!(slot(), Slot { offset: 0, len: 0 });
        assert!(matches!(payload(), Err(AttachedError::NotAttached)));
    }

    #[test]
    fn maps_an_unaligned_range_and_refuses_a_short_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut data = vec![0u8; 10_000];
        data[5000..5005].copy_from_slice(b"hello");
        f.write_all(&data).unwrap();
        let got = map(
            f.as_file(),
            f.path().into(),
            Slot {
                offset: 5000,
                len: 5,
            },
        )
        .unwrap();
        assert_eq!(got, b"hello");
        let err = map(
            f.as_file(),
            f.path().into(),
            Slot {
                offset: 9000,
                len: 2000,
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            AttachedError::Truncated {
                needed: 11000,
                actual: 10000,
                ..
            }
        ));
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
