//! Resolving untrusted paths inside a root directory.
//!
//! `openat2(RESOLVE_IN_ROOT)` makes the kernel treat the root fd as `/` for every component,
//! symlinks included, which is exactly the containment a layer needs.

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Opens `path` (absolute or relative: both mean "inside the root") below `root`, resolving
/// symlinks as if `root` were `/`. `..` cannot climb above the root.
pub fn open_in_root<Fd: AsFd>(root: Fd, path: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    nix::fcntl::openat2(root, rel, how).map_err(std::io::Error::from)
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
