//! Choosing where a build may write, before any work is done.
//!
//! `-o` names a file that the build replaces by renaming a finished temporary file over it.
//! That is safe for a missing file or an earlier oci2bin output, and destructive for anything
//! else: the build's own input (`-o LAYOUT/index.json`), a device (`-o /dev/null` as root
//! turns it into a regular file), or a user's unrelated file. So the output is checked first,
//! and refused with the reason, before an image is read or a runtime compiled.

use crate::elf::{elf_layout, PayloadKind};
use anyhow::{bail, Context, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A file or directory the build reads: the output may not be it or lie inside it.
#[derive(Debug, Clone)]
pub struct Input {
    /// What the user called it (for messages), e.g. `the OCI layout`.
    pub what: &'static str,
    /// Its path.
    pub path: PathBuf,
}

/// An output the build may write: the absolute path and the directory its temporary file
/// goes in (the same file system, so the final rename is atomic).
#[derive(Debug, Clone)]
pub struct Output {
    /// Where the result goes.
    pub path: PathBuf,
    /// Its parent directory.
    pub dir: PathBuf,
}

/// Whether the file at `path` is an executable an earlier build wrote (an ELF with an oci2bin
/// payload slot or section), the one kind of existing file a build replaces without `--force`.
pub fn is_oci2bin_output(path: &Path) -> bool {
    let Ok(data) = crate::mapped::Mapped::open(path) else {
        return false;
    };
    match elf_layout(&data) {
        Ok(layout) => layout.kind == PayloadKind::Linked || layout.payload_len > 0,
        Err(_) => false,
    }
}

/// `path`'s real location: the parent resolved through symlinks (it must exist) joined with
/// the file name, so `a/../b` and a symlinked directory compare as what they are.
fn real_location(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let name = abs
        .file_name()
        .with_context(|| format!("-o {}: not a file name", path.display()))?;
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let parent = parent.canonicalize().with_context(|| {
        format!(
            "-o {}: the directory {} does not exist; create it first",
            path.display(),
            parent.display()
        )
    })?;
    Ok(parent.join(name))
}

/// Checks that `path` may be written by a build that reads `inputs`, and returns where.
///
/// Refused: a directory, a device, fifo, socket or symlink; the path of an input or a path
/// inside an input directory (also through another name: a hard link to an input file is
/// caught by its inode); an existing file that is not an earlier oci2bin output, unless
/// `force`.
pub fn check(path: &Path, inputs: &[Input], force: bool) -> Result<Output> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        bail!("-o: empty file name");
    }
    // A trailing slash or `.`/`..` as the last component names a directory.
    let text = path.as_os_str().to_string_lossy();
    if text.ends_with('/') || path.file_name().is_none() {
        bail!("-o {shown}: is a directory; name the file to write, e.g. -o {shown}/NAME");
    }
    let real = real_location(path)?;
    let dir = real.parent().expect("joined to a parent").to_path_buf();
    let existing = match std::fs::symlink_metadata(&real) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("-o {shown}: cannot check it")),
    };
    for input in inputs {
        let Ok(input_real) = input.path.canonicalize() else {
            continue;
        };
        if real == input_real || real.starts_with(&input_real) {
            bail!(
                "-o {shown}: {} {} of this build; refusing to overwrite the build's own input (write the output elsewhere)",
                if real == input_real { "is" } else { "lies inside" },
                format_args!("{} {}", input.what, input.path.display())
            );
        }
        if let (Some(out), Ok(inp)) = (&existing, std::fs::metadata(&input_real)) {
            if inp.is_file() && (out.dev(), out.ino()) == (inp.dev(), inp.ino()) {
                bail!(
                    "-o {shown}: is the same file as {} {} (a hard link); refusing to overwrite the build's own input",
                    input.what,
                    input.path.display()
                );
            }
        }
    }
    if let Some(m) = existing {
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Some("is a directory; name the file to write, e.g. -o DIR/NAME")
        } else if ft.is_symlink() {
            Some("is a symbolic link; name the file itself, or remove the link first")
        } else if ft.is_char_device() || ft.is_block_device() {
            Some("is a device, not a file; the output must be a regular file or not exist")
        } else if ft.is_fifo() || ft.is_socket() {
            Some("is a fifo or socket, not a file; the output must be a regular file or not exist")
        } else {
            None
        };
        if let Some(kind) = kind {
            let kind = kind.replace("DIR", &shown.to_string());
            bail!("-o {shown}: {kind}");
        }
        if !force && !is_oci2bin_output(&real) {
            bail!(
                "-o {shown}: exists and is not an oci2bin executable; refusing to replace it (pass --force to replace it anyway, or choose another name)"
            );
        }
    }
    Ok(Output { path: real, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &Path) -> Vec<Input> {
        vec![Input {
            what: "the OCI layout",
            path: path.to_path_buf(),
        }]
    }

    #[test]
    fn a_missing_file_in_an_existing_directory_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let out = check(&dir.path().join("app"), &[], false).unwrap();
        assert_eq!(out.dir, dir.path().canonicalize().unwrap());
        assert!(check(&dir.path().join("nope/app"), &[], false).is_err());
    }

    #[test]
    fn inputs_and_paths_inside_them_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        std::fs::write(layout.join("index.json"), b"{}").unwrap();
        let err = check(&layout.join("index.json"), &input(&layout), true).unwrap_err();
        assert!(err.to_string().contains("lies inside"), "{err}");
        // Through `..` and a symlinked directory too.
        std::os::unix::fs::symlink(&layout, dir.path().join("link")).unwrap();
        let sneaky = dir.path().join("link/../layout/blobs");
        assert!(check(&sneaky, &input(&layout), true).is_err());
        assert!(check(&dir.path().join("link/x"), &input(&layout), true).is_err());
        // A hard link to an input archive.
        let archive = dir.path().join("img.tar");
        std::fs::write(&archive, b"tar").unwrap();
        std::fs::hard_link(&archive, dir.path().join("other")).unwrap();
        let inputs = vec![Input {
            what: "the archive",
            path: archive.clone(),
        }];
        let err = check(&dir.path().join("other"), &inputs, true).unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
    }

    #[test]
    fn directories_devices_and_links_are_refused_even_with_force() {
        let dir = tempfile::tempdir().unwrap();
        for p in [dir.path().to_path_buf(), PathBuf::from(".")] {
            let err = check(&p, &[], true).unwrap_err();
            assert!(err.to_string().contains("directory"), "{err}");
        }
        let err = check(Path::new("/dev/null"), &[], true).unwrap_err();
        assert!(err.to_string().contains("device"), "{err}");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("l")).unwrap();
        let err = check(&dir.path().join("l"), &[], true).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn other_files_need_force() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.txt");
        std::fs::write(&f, b"precious").unwrap();
        let err = check(&f, &[], false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(check(&f, &[], true).is_ok());
    }
}
