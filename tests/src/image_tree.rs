//! Looking at an unpacked image root from the host without ever leaving it, and at the entry
//! names of an OCI layout's layers.
//!
//! The roots tests inspect come from hostile images: `rootfs/a` may be a symlink to `/`, so
//! `rootfs.join("a/tmp/x")` would name the host's `/tmp/x`. [`resolve_in_root`] resolves a
//! path the way the container sees it (symlinks and `..` stay inside the root).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// How many symlinks [`resolve_in_root`] follows before giving up (as `ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// The host path of `path` inside the directory `root`, resolved as if `root` were `/`:
/// absolute symlinks start again at `root`, `..` stops at `root`. Every component but the
/// last is followed; the last is not (so it can name a symlink itself). `None` for a symlink
/// loop. The result may not exist.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = components(path);
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            done.pop();
            continue;
        }
        let here: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&name);
        let last = todo.is_empty();
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() && !last => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                let target = fs::read_link(&here).ok()?;
                if target.is_absolute() {
                    done.clear();
                }
                for c in components(&target).into_iter().rev() {
                    todo.push_front(c);
                }
            }
            _ => done.push(name),
        }
    }
    Some(root.join(done.iter().collect::<PathBuf>()))
}

/// The normal and `..` components of `path` (root and `.` dropped).
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Entry names as an unpacker should read them: `./` and `/` prefixes and a trailing `/`
/// dropped (`""` names the root).
pub fn normalize_entry_name(name: &str) -> String {
    let mut n = name;
    loop {
        let stripped = n.trim_start_matches('/');
        let stripped = stripped.strip_prefix("./").unwrap_or(stripped);
        if stripped == n {
            break;
        }
        n = stripped;
    }
    let n = n.trim_end_matches('/');
    if n == "." {
        String::new()
    } else {
        n.to_string()
    }
}

/// The entry names of each layer of the image tagged `tag` in the OCI layout `layout`,
/// bottom layer first, as stored (not normalized). Layers may be gzip-compressed or plain.
pub fn layout_layer_names(layout: &Path, tag: &str) -> Vec<Vec<String>> {
    let manifest = crate::oci_layout::read_manifest(layout, tag);
    let layers = manifest["layers"].as_array().expect("manifest layers");
    layers
        .iter()
        .map(|desc| {
            let digest = desc["digest"].as_str().expect("layer digest");
            let path = layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"));
            let blob = fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read layer {}: {e}", path.display()));
            let tar = if blob.starts_with(&[0x1f, 0x8b]) {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&blob[..])
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("cannot gunzip {}: {e}", path.display()));
                out
            } else {
                blob
            };
            tar_entry_names(&tar)
        })
        .collect()
}

/// The names of a tar's entries, in order, with GNU long names and PAX paths applied (a
/// reader of names only: enough for the fixtures' layers).
pub fn tar_entry_names(tar: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 0;
    let mut long_name: Option<String> = None;
    while pos + 512 <= tar.len() {
        let header = &tar[pos..pos + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |from: usize, len: usize| {
            let f = &header[from..from + len];
            let end = f.iter().position(|&b| b == 0).unwrap_or(len);
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        let size = usize::from_str_radix(field(124, 12).trim(), 8).unwrap_or(0);
        let kind = header[156];
        let data = &tar[(pos + 512).min(tar.len())..(pos + 512 + size).min(tar.len())];
        match kind {
            b'L' => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                long_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            b'x' => {
                for record in String::from_utf8_lossy(data).split('\n') {
                    if let Some((_, kv)) = record.split_once(' ') {
                        if let Some(path) = kv.strip_prefix("path=") {
                            long_name = Some(path.to_string());
                        }
                    }
                }
            }
            b'g' => {}
            _ => {
                let name = long_name.take().unwrap_or_else(|| {
                    let prefix = if &header[257..262] == b"ustar" {
                        field(345, 155)
                    } else {
                        String::new()
                    };
                    let name = field(0, 100);
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                });
                names.push(name);
            }
        }
        pos += 512 + size.div_ceil(512) * 512;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("tmp")).unwrap();
        symlink("/", root.join("a")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("a/tmp/x")).unwrap(),
            root.join("tmp/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("up/tmp/x")).unwrap(),
            root.join("tmp/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/../../tmp/x")).unwrap(),
            root.join("tmp/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("a")).unwrap(),
            root.join("a")
        );
        assert!(resolve_in_root(root, Path::new("loop/x")).is_none());
    }

    #[test]
    fn entry_names_are_normalized() {
        assert_eq!(normalize_entry_name("./etc/passwd"), "etc/passwd");
        assert_eq!(normalize_entry_name("/tmp/x"), "tmp/x");
        assert_eq!(normalize_entry_name("dir/"), "dir");
        assert_eq!(normalize_entry_name("./"), "");
        assert_eq!(normalize_entry_name("."), "");
        assert_eq!(normalize_entry_name("../x"), "../x");
    }

    #[test]
    fn reads_names_in_order_with_long_names() {
        let long = format!("d/{}", "x".repeat(150));
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import io,tarfile,sys\nb=io.BytesIO()\nt=tarfile.open(fileobj=b,mode='w',format=tarfile.GNU_FORMAT)\n\
                 for n in ['b','a','{long}','./c/']:\n i=tarfile.TarInfo(n); t.addfile(i,io.BytesIO(b''))\n\
                 t.close()\nsys.stdout.buffer.write(b.getvalue())"
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            tar_entry_names(&out.stdout),
            ["b", "a", long.as_str(), "./c/"]
        );
    }
}
