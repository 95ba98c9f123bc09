//! Read-only memory maps of output binaries, so inspecting or rewriting a multi-hundred-MB
//! executable touches only the pages it needs.

use anyhow::{Context, Result};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::path::Path;
use std::ptr::NonNull;

/// A file mapped read-only.
pub struct Mapped {
    ptr: NonNull<std::ffi::c_void>,
    len: usize,
}

impl Mapped {
    /// Maps `path`; an empty file maps to an empty slice.
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len() as usize;
        let Some(nz) = NonZeroUsize::new(len) else {
            return Ok(Mapped {
                ptr: NonNull::dangling(),
                len: 0,
            });
        };
        // SAFETY: a private read-only mapping of a file we opened; the slice handed out is
        // bounded by its length. A concurrent truncation would be a SIGBUS, as with any mmap.
        let ptr = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ,
                MapFlags::MAP_PRIVATE,
                &file,
                0,
            )
        }
        .with_context(|| format!("mapping {}", path.display()))?;
        Ok(Mapped { ptr, len })
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `open` mapped.
            let _ = unsafe { munmap(self.ptr, self.len) };
        }
    }
}
