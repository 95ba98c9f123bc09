//! `--add-file` and `--add-dir`: build-machine files as one extra, reproducible layer.
//!
//! All additions go into one layer whose tar depends only on the files' content and the
//! destinations: entries sorted by path (parents first), every mtime the build's
//! `SOURCE_DATE_EPOCH` (0 by default), owner 0:0, modes 0755 (directories, executables) or
//! 0644 unless `:MODE` is given; symlinks inside an added directory are stored, not followed.
//! Parent directories of the destinations are added too, with the mode and owner the image
//! already gives them (read from its layers), or 0755 root when it has none, so adding
//! `/tmp/x` does not take `/tmp`'s sticky bit away.

use super::error::EditError;
#[cfg(test)]
use super::layer_io::for_each_entry;
use super::layer_io::{layer_name, normalize, scan_entries, store_layer, LayerEntry};
use crate::cache::BuildCache;
use crate::compress::CompressSpec;
use crate::pack::rootfs_tar::{Ownership, Walker};
use crate::prepare::PreparedLayer;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Whether an addition is one file or a directory tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKind {
    /// `--add-file HOST:CONTAINER[:MODE]`: one regular file (a host symlink is followed).
    File,
    /// `--add-dir HOST:CONTAINER`: the directory and everything below it.
    Dir,
}

/// One file or directory of the build machine to put into the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddPath {
    /// File or tree.
    pub kind: AddKind,
    /// The path on the build machine.
    pub host: PathBuf,
    /// The absolute destination in the image.
    pub container: String,
    /// Permission bits for an added file (octal on the command line); `None` gives 0755 to
    /// files their owner may execute and 0644 to others.
    pub mode: Option<u32>,
}

const FILE_SYNTAX: &str = "HOST:CONTAINER[:MODE]";
const DIR_SYNTAX: &str = "HOST:CONTAINER";

impl AddPath {
    /// Parses `--add-file HOST:CONTAINER[:MODE]` (MODE in octal, e.g. 0755).
    ///
    /// ```
    /// use oci2bin_build::edit::AddPath;
    /// let a = AddPath::parse_file("conf/app.toml:/etc/app.toml:0600").unwrap();
    /// assert_eq!((a.container.as_str(), a.mode), ("/etc/app.toml", Some(0o600)));
    /// assert!(AddPath::parse_file("app.toml:etc/app.toml").is_err());
    /// ```
    pub fn parse_file(value: &str) -> Result<AddPath, EditError> {
        let err = |reason: &str| EditError::AddSyntax {
            flag: "--add-file",
            value: value.to_string(),
            syntax: FILE_SYNTAX,
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = value.split(':').collect();
        let (host, container, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, None),
            [h, c, m] => {
                let mode = u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| err("MODE is octal permission bits such as 0644 or 755"))?;
                (*h, *c, Some(mode))
            }
            _ => return Err(err("give the host file and the destination separated by ':' (paths containing ':' cannot be added)")),
        };
        if host.is_empty() {
            return Err(err("the host file is empty"));
        }
        check_container("--add-file", container, false)?;
        Ok(AddPath {
            kind: AddKind::File,
            host: host.into(),
            container: container.to_string(),
            mode,
        })
    }

    /// Parses `--add-dir HOST:CONTAINER`.
    ///
    /// ```
    /// use oci2bin_build::edit::AddPath;
    /// let a = AddPath::parse_dir("site:/srv/www").unwrap();
    /// assert_eq!(a.container, "/srv/www");
    /// ```
    pub fn parse_dir(value: &str) -> Result<AddPath, EditError> {
        let err = |reason: &str| EditError::AddSyntax {
            flag: "--add-dir",
            value: value.to_string(),
            syntax: DIR_SYNTAX,
            reason: reason.to_string(),
        };
        let Some((host, container)) = value.split_once(':') else {
            return Err(err(
                "give the host directory and the destination separated by ':'",
            ));
        };
        if host.is_empty() || container.contains(':') {
            return Err(err(
                "give exactly one host directory and one destination (paths containing ':' cannot be added)",
            ));
        }
        check_container("--add-dir", container, true)?;
        Ok(AddPath {
            kind: AddKind::Dir,
            host: host.into(),
            container: container.to_string(),
            mode: None,
        })
    }

    fn flag(&self) -> &'static str {
        match self.kind {
            AddKind::File => "--add-file",
            AddKind::Dir => "--add-dir",
        }
    }
}

/// Refuses relative destinations and `.`/`..` components (and `/` for a file).
fn check_container(flag: &'static str, value: &str, root_ok: bool) -> Result<(), EditError> {
    let err = |reason: String| EditError::ContainerPath {
        flag,
        value: value.to_string(),
        reason,
    };
    if !value.starts_with('/') {
        return Err(err(format!(
            "the destination must be absolute, e.g. /{value}"
        )));
    }
    if value
        .split('/')
        .any(|c| c == "." || c == ".." || c.starts_with(".wh."))
    {
        return Err(err(
            "the destination must not contain `.`, `..` or `.wh.` components".into(),
        ));
    }
    if !root_ok && value.trim_matches('/').is_empty() {
        return Err(err("a file cannot replace the root directory".into()));
    }
    Ok(())
}

/// What one entry of the new layer comes from.
#[derive(Clone, Debug)]
enum Item {
    /// A parent directory of a destination.
    Parent,
    /// A host file, directory or symlink (a directory's entry only), with a forced mode.
    Host {
        abs: PathBuf,
        mode: Option<u32>,
        is_dir: bool,
    },
}

type Components = Vec<Vec<u8>>;

fn components(rel: &[u8]) -> Components {
    rel.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Adds `abs` (a host directory already listed) and everything below it under `at`.
fn walk(
    items: &mut BTreeMap<Components, Item>,
    abs: &std::path::Path,
    at: &Components,
    flag: &'static str,
) -> Result<(), EditError> {
    let read_err = |e: std::io::Error| EditError::AddSource {
        flag,
        path: abs.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    };
    let mut names: Vec<OsString> = std::fs::read_dir(abs)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(read_err)?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let child = abs.join(&name);
        let md = std::fs::symlink_metadata(&child).map_err(|e| EditError::AddSource {
            flag,
            path: child.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        let mut path = at.clone();
        path.push(name.as_bytes().to_vec());
        items.insert(
            path.clone(),
            Item::Host {
                abs: child.clone(),
                mode: None,
                is_dir: md.is_dir(),
            },
        );
        if md.is_dir() {
            walk(items, &child, &path, flag)?;
        }
    }
    Ok(())
}

/// The entries of the new layer, sorted, parents included.
fn plan(adds: &[AddPath]) -> Result<BTreeMap<Components, Item>, EditError> {
    let mut items: BTreeMap<Components, Item> = BTreeMap::new();
    for add in adds {
        let flag = add.flag();
        let at = components(add.container.as_bytes());
        let md = std::fs::metadata(&add.host).map_err(|e| EditError::AddSource {
            flag,
            path: add.host.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        match add.kind {
            AddKind::File => {
                if !md.is_file() {
                    return Err(EditError::AddSource {
                        flag,
                        path: add.host.clone(),
                        reason: "not a regular file (use --add-dir for a directory)".into(),
                    });
                }
                let abs = add.host.canonicalize().map_err(|e| EditError::AddSource {
                    flag,
                    path: add.host.clone(),
                    reason: format!("cannot resolve it: {e}"),
                })?;
                // A later addition of the same path replaces an earlier one, subtree too.
                items.retain(|k, _| !k.starts_with(&at) || k.len() == at.len());
                items.insert(
                    at,
                    Item::Host {
                        abs,
                        mode: add.mode,
                        is_dir: false,
                    },
                );
            }
            AddKind::Dir => {
                if !md.is_dir() {
                    return Err(EditError::AddSource {
                        flag,
                        path: add.host.clone(),
                        reason: "not a directory (use --add-file for a file)".into(),
                    });
                }
                let abs = add.host.canonicalize().map_err(|e| EditError::AddSource {
                    flag,
                    path: add.host.clone(),
                    reason: format!("cannot resolve it: {e}"),
                })?;
                if !at.is_empty() {
                    items.insert(
                        at.clone(),
                        Item::Host {
                            abs: abs.clone(),
                            mode: None,
                            is_dir: true,
                        },
                    );
                }
                walk(&mut items, &abs, &at, flag)?;
            }
        }
    }
    // Parents: missing ones are added, a non-directory in the way is a conflict.
    let paths: Vec<Components> = items.keys().cloned().collect();
    for path in paths {
        for n in 1..path.len() {
            let parent = path[..n].to_vec();
            match items.get(&parent) {
                Some(Item::Host { is_dir: false, .. }) => {
                    return Err(EditError::AddConflict {
                        path: format!("/{}", String::from_utf8_lossy(&parent.join(&b'/'))),
                        child: format!("/{}", String::from_utf8_lossy(&path.join(&b'/'))),
                    })
                }
                Some(_) => {}
                None => {
                    items.insert(parent, Item::Parent);
                }
            }
        }
    }
    Ok(items)
}

/// Mode, uid and gid of a directory.
type DirMeta = (u32, u64, u64);

/// Mode, uid and gid of the directories in `wanted` as the image's layers leave them.
fn lower_dirs(
    layers: &[PreparedLayer],
    wanted: &BTreeSet<Vec<u8>>,
) -> Result<HashMap<Vec<u8>, DirMeta>, EditError> {
    let mut found = HashMap::new();
    for (i, layer) in layers.iter().enumerate() {
        scan_entries(
            layer,
            &layer_name(i, layer),
            |e: &mut LayerEntry<'_, '_>| {
                let path = normalize(&e.path_bytes());
                let (parent, base) = match path.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&path[..i], &path[i + 1..]),
                    None => (&path[..0], &path[..]),
                };
                if let Some(name) = base.strip_prefix(b".wh.") {
                    let mut hidden = parent.to_vec();
                    if !hidden.is_empty() {
                        hidden.push(b'/');
                    }
                    hidden.extend_from_slice(name);
                    found.retain(|p: &Vec<u8>, _| {
                        !(p == &hidden
                            || (p.starts_with(&hidden) && p.get(hidden.len()) == Some(&b'/')))
                    });
                    return Ok(());
                }
                if wanted.contains(&path) {
                    let h = e.header();
                    if h.entry_type().is_dir() {
                        found.insert(
                            path,
                            (
                                h.mode().unwrap_or(0o755),
                                h.uid().unwrap_or(0),
                                h.gid().unwrap_or(0),
                            ),
                        );
                    } else {
                        found.remove(&path);
                    }
                }
                Ok(())
            },
        )?;
    }
    Ok(found)
}

/// Writes the layer of `adds` on top of `layers`; returns it and its entry count.
pub(crate) fn add_layer(
    adds: &[AddPath],
    layers: &[PreparedLayer],
    mtime: u64,
    codec: CompressSpec,
    cache: &BuildCache,
) -> Result<(PreparedLayer, u64), EditError> {
    let items = plan(adds)?;
    let parents: BTreeSet<Vec<u8>> = items
        .iter()
        .filter(|(_, i)| matches!(i, Item::Parent))
        .map(|(k, _)| k.join(&b'/'))
        .collect();
    let lower = if parents.is_empty() {
        HashMap::new()
    } else {
        lower_dirs(layers, &parents)?
    };
    store_layer(cache, codec, "the layer of added files", |sink| {
        let mut walker = Walker::new(sink, mtime, Ownership::Root);
        for (path, item) in &items {
            let rel = path.join(&b'/');
            match item {
                Item::Parent => {
                    let (mode, uid, gid) = lower.get(&rel).copied().unwrap_or((0o755, 0, 0));
                    walker.add_synthetic_dir(&rel, mode, uid, gid)?;
                }
                Item::Host { abs, mode, .. } => walker.add_path(abs, &rel, *mode)?,
            }
        }
        let (stats, sink) = walker.finish(std::path::Path::new("the layer of added files"))?;
        Ok((stats.entries, sink))
    })
}

#[cfg(test)]
mod tests {
    use super::super::layer_io::test_util::{cache, layer, none, tar_of, E};
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(l: &PreparedLayer) -> Vec<(String, u32, u64, u64)> {
        let mut out = Vec::new();
        for_each_entry(l, "added", |e: &mut LayerEntry<'_, '_>| {
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 7);
            out.push((
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn additions_are_sorted_owned_by_root_with_parents_from_the_image() {
        let (d, cache) = cache();
        let host = d.path().join("host");
        std::fs::create_dir_all(host.join("site/sub")).unwrap();
        std::fs::write(host.join("site/index.html"), "hi").unwrap();
        std::fs::write(host.join("site/sub/run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            host.join("site/sub/run.sh"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(host.join("conf"), "x=1").unwrap();
        std::os::unix::fs::symlink("index.html", host.join("site/home")).unwrap();
        let adds = vec![
            AddPath::parse_dir(&format!("{}:/srv/www", host.join("site").display())).unwrap(),
            AddPath::parse_file(&format!(
                "{}:/tmp/app/conf:0600",
                host.join("conf").display()
            ))
            .unwrap(),
        ];
        let mut tmp = tar::Header::new_gnu();
        tmp.set_entry_type(tar::EntryType::Directory);
        let lower = layer(&cache, &tar_of(&[E::Dir("srv"), E::Dir("tmp")]));
        // The test helper gives directories 0755; make /tmp sticky as images have it.
        let lower_tar = {
            let mut b = tar::Builder::new(Vec::new());
            tmp.set_mode(0o1777);
            tmp.set_size(0);
            b.append_data(&mut tmp, "tmp/", std::io::empty()).unwrap();
            b.into_inner().unwrap()
        };
        let lower2 = layer(&cache, &lower_tar);
        let (l, n) = add_layer(&adds, &[lower, lower2], 7, none(), &cache).unwrap();
        assert_eq!(n, 9);
        assert_eq!(
            entries(&l),
            [
                ("srv/".to_string(), 0o755, 0, 0),
                ("srv/www/".into(), 0o755, 0, 0),
                ("srv/www/home".into(), 0o755, 0, 0),
                ("srv/www/index.html".into(), 0o644, 0, 0),
                ("srv/www/sub/".into(), 0o755, 0, 0),
                ("srv/www/sub/run.sh".into(), 0o755, 0, 0),
                ("tmp/".into(), 0o1777, 0, 0),
                ("tmp/app/".into(), 0o755, 0, 0),
                ("tmp/app/conf".into(), 0o600, 0, 0),
            ]
        );
        // The same inputs give the same layer.
        let (again, _) = add_layer(&adds, &[], 7, none(), &cache).unwrap();
        assert_ne!(
            again.digest, l.digest,
            "parents differ without the image's /tmp"
        );
        let lower2 = layer(&cache, &lower_tar);
        let lower = layer(&cache, &tar_of(&[E::Dir("srv"), E::Dir("tmp")]));
        let (same, _) = add_layer(&adds, &[lower, lower2], 7, none(), &cache).unwrap();
        assert_eq!(same.digest, l.digest);
    }

    #[test]
    fn bad_additions_are_refused_with_the_reason() {
        assert!(AddPath::parse_file("a:/b:999").is_err());
        assert!(AddPath::parse_file("a:/b/../c").is_err());
        assert!(AddPath::parse_file("a:/").is_err());
        assert!(AddPath::parse_dir("a:b").is_err());
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "").unwrap();
        let f = d.path().join("f").display().to_string();
        let conflict = [
            AddPath::parse_file(&format!("{f}:/x")).unwrap(),
            AddPath::parse_file(&format!("{f}:/x/y")).unwrap(),
        ];
        assert!(matches!(
            plan(&conflict),
            Err(EditError::AddConflict { .. })
        ));
        let dir_as_file = [AddPath::parse_file(&format!("{}:/x", d.path().display())).unwrap()];
        assert!(matches!(
            plan(&dir_as_file),
            Err(EditError::AddSource { .. })
        ));
        let missing = [AddPath::parse_dir("/nonexistent/dir:/x").unwrap()];
        assert!(matches!(plan(&missing), Err(EditError::AddSource { .. })));
    }
}
