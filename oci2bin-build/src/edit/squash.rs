//! `--squash`: all layers merged into one, as the runtime would see them stacked.
//!
//! Two passes over the layers. The first applies them in memory, headers only: a whiteout
//! (`.wh.NAME`) removes `NAME` and its subtree from lower layers, an opaque marker
//! (`.wh..wh..opq`) removes a directory's lower-layer contents, a non-directory replaces a
//! path with its subtree, and a directory over a directory only changes its metadata. The
//! second pass writes the entries that survived, in the order the layers give them, so every
//! directory comes before its contents (a directory whose metadata a later layer changed is
//! written where it first appeared, with the later header). A hardlink whose target was
//! replaced or removed above it would point at the wrong file, or at none: it becomes a copy
//! of the content it had (spooled to a temporary file while the second pass passes it).

use super::error::EditError;
use super::layer_io::{
    cached_edit, copy_entry, edit_key, for_each_entry, layer_name, normalize, record_edit,
    scan_entries, write_layer, LayerEntry,
};
use crate::cache::BuildCache;
use crate::compress::CompressSpec;
use crate::prepare::PreparedLayer;
use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, SeekFrom};

/// Where an entry is: layer index and position in that layer.
type Pos = (usize, u64);

/// What an entry is, as far as merging cares.
#[derive(Clone, Debug)]
enum Kind {
    Dir,
    /// A hardlink, with the target path, the target's entry when the link was made, and the
    /// regular file at the end of the chain.
    Link {
        target: Vec<u8>,
        target_pos: Option<Pos>,
        root: Option<Pos>,
    },
    Other,
}

#[derive(Clone, Debug)]
struct Rec {
    pos: Pos,
    kind: Kind,
    /// For a directory that a later layer redeclared: that layer's header.
    header: Option<Box<tar::Header>>,
}

/// The merged tree: normalised path -> surviving entry.
#[derive(Default)]
struct Tree {
    map: BTreeMap<Vec<u8>, Rec>,
}

impl Tree {
    /// Removes `path` (unless `keep_self`) and everything below it that comes from a layer
    /// below `layer`.
    fn remove(&mut self, path: &[u8], layer: usize, keep_self: bool) {
        let mut prefix = path.to_vec();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        let doomed: Vec<Vec<u8>> = self
            .map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, r)| r.pos.0 < layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.map.remove(&k);
        }
        if !keep_self && self.map.get(path).is_some_and(|r| r.pos.0 < layer) {
            self.map.remove(path);
        }
    }

    /// Removes everything below `path`, from any layer.
    fn remove_children(&mut self, path: &[u8]) {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.map.remove(&k);
        }
    }

    /// Applies one entry of layer `layer`.
    fn apply(&mut self, pos: Pos, entry: &LayerEntry<'_, '_>) {
        let path = normalize(&entry.path_bytes());
        let (parent, base) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], &path[..]),
        };
        if base == b".wh..wh..opq" {
            self.remove(parent, pos.0, true);
            return;
        }
        if let Some(name) = base.strip_prefix(b".wh.") {
            let mut hidden = parent.to_vec();
            if !hidden.is_empty() {
                hidden.push(b'/');
            }
            hidden.extend_from_slice(name);
            self.remove(&hidden, pos.0, false);
            return;
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            t if t.is_hard_link() => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| normalize(&t))
                    .unwrap_or_default();
                let (target_pos, root) = match self.map.get(&target) {
                    Some(r) => (
                        Some(r.pos),
                        match &r.kind {
                            Kind::Link { root, .. } => *root,
                            _ => Some(r.pos),
                        },
                    ),
                    None => (None, None),
                };
                Kind::Link {
                    target,
                    target_pos,
                    root,
                }
            }
            _ => Kind::Other,
        };
        match self.map.get_mut(&path) {
            Some(old) if matches!(old.kind, Kind::Dir) && matches!(kind, Kind::Dir) => {
                old.header = Some(Box::new(header.clone()));
                return;
            }
            Some(old) if matches!(old.kind, Kind::Dir) => self.remove_children(&path),
            _ => {}
        }
        self.map.insert(
            path,
            Rec {
                pos,
                kind,
                header: None,
            },
        );
    }
}

/// How the second pass treats an entry.
enum Action {
    /// Copy it (with this header instead of its own, for a redeclared directory).
    Write(Option<Box<tar::Header>>),
    /// A hardlink whose target changed: write the content of the entry at this position.
    Materialize(Pos),
}

/// What the squash did, for the report.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Squashed {
    /// Entries in the squashed layer.
    pub entries: u64,
    /// Hardlinks turned into copies.
    pub materialized: u64,
}

/// Squashes `layers` into one layer (fewer than two layers are returned as they are).
pub(crate) fn squash_layers(
    layers: Vec<PreparedLayer>,
    codec: CompressSpec,
    cache: &BuildCache,
) -> Result<(Vec<PreparedLayer>, Squashed), EditError> {
    if layers.len() < 2 {
        return Ok((layers, Squashed::default()));
    }
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let key = edit_key(&serde_json::json!({"edit": "squash", "version": 1, "diff_ids": diff_ids}));
    if let Some((layer, info)) = cached_edit::<Squashed>(cache, &key, codec) {
        return Ok((vec![layer], info));
    }
    let names: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| layer_name(i, l))
        .collect();

    // Pass 1: the merged tree.
    let mut tree = Tree::default();
    for (i, layer) in layers.iter().enumerate() {
        let mut seq = 0;
        // Headers only; pass 2 verifies what it writes.
        scan_entries(layer, &names[i], |e: &mut LayerEntry<'_, '_>| {
            tree.apply((i, seq), e);
            seq += 1;
            Ok(())
        })?;
    }
    let mut actions: HashMap<Pos, Action> = HashMap::new();
    let mut spool_wanted: HashMap<Pos, Option<std::fs::File>> = HashMap::new();
    for rec in tree.map.values() {
        let action = match &rec.kind {
            Kind::Link {
                target,
                target_pos,
                root,
            } if tree.map.get(target).map(|t| t.pos) != *target_pos => match root {
                Some(root) => {
                    spool_wanted.insert(*root, None);
                    Action::Materialize(*root)
                }
                None => Action::Write(None),
            },
            _ => Action::Write(rec.header.clone()),
        };
        actions.insert(rec.pos, action);
    }

    // Pass 2: write what survived.
    let tmp_dir = cache.tmp_dir();
    let (layer, info) = write_layer(cache, codec, "the squashed layer", |out| {
        let mut info = Squashed::default();
        for (i, layer) in layers.iter().enumerate() {
            let what = &names[i];
            let copy_err = || EditError::layer("squashing", what.clone());
            let mut seq = 0;
            for_each_entry(layer, what, |e: &mut LayerEntry<'_, '_>| {
                let pos = (i, seq);
                seq += 1;
                if let Some(slot) = spool_wanted.get_mut(&pos) {
                    let mut f = tempfile::tempfile_in(&tmp_dir).map_err(copy_err())?;
                    std::io::copy(e, &mut f).map_err(copy_err())?;
                    *slot = Some(f);
                }
                match actions.get(&pos) {
                    None => Ok(()),
                    Some(Action::Write(header)) => {
                        info.entries += 1;
                        match spool_wanted.get_mut(&pos).and_then(|f| f.as_mut()) {
                            // Its data went to the spool: write the entry from there.
                            Some(f) => {
                                f.seek(SeekFrom::Start(0)).map_err(copy_err())?;
                                let mut h = header
                                    .as_deref()
                                    .cloned()
                                    .unwrap_or_else(|| e.header().clone());
                                let path = e.path_bytes().into_owned();
                                out.append_data(&mut h, super::layer_io::bytes_path(&path), f)
                                    .map_err(copy_err())
                            }
                            None => copy_entry(out, e, header.as_deref()).map_err(copy_err()),
                        }
                    }
                    Some(Action::Materialize(root)) => {
                        info.entries += 1;
                        info.materialized += 1;
                        let f = spool_wanted
                            .get_mut(root)
                            .and_then(|f| f.as_mut())
                            .expect("the root entry comes before its links");
                        let size = f.seek(SeekFrom::End(0)).map_err(copy_err())?;
                        f.seek(SeekFrom::Start(0)).map_err(copy_err())?;
                        let mut h = e.header().clone();
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(size);
                        h.as_old_mut().linkname = [0; 100];
                        let path = e.path_bytes().into_owned();
                        out.append_data(&mut h, super::layer_io::bytes_path(&path), f)
                            .map_err(copy_err())
                    }
                }
            })?;
        }
        Ok(info)
    })?;
    record_edit(cache, &key, codec, &layer, &info)?;
    Ok((vec![layer], info))
}

#[cfg(test)]
mod tests {
    use super::super::layer_io::test_util::{cache, layer, listing, none, tar_of, E};
    use super::*;

    #[test]
    fn whiteouts_opaque_dirs_and_replacements_are_applied() {
        let (_d, cache) = cache();
        let l1 = layer(
            &cache,
            &tar_of(&[
                E::Dir("a"),
                E::File("a/gone", "1"),
                E::File("a/kept", "2"),
                E::Dir("opq"),
                E::File("opq/old", "3"),
                E::Dir("d2f"),
                E::File("d2f/child", "4"),
                E::File("f2d", "5"),
                E::Dir("keep"),
                E::File("keep/x", "6"),
                E::File("whole", "7"),
            ]),
        );
        let l2 = layer(
            &cache,
            &tar_of(&[
                E::File("a/.wh.gone", ""),
                E::File("opq/.wh..wh..opq", ""),
                E::File("opq/new", "8"),
                E::File("d2f", "file now"),
                E::Dir("f2d"),
                E::File("f2d/in", "9"),
                E::Dir("keep"),
                E::File(".wh.whole", ""),
            ]),
        );
        let l3 = layer(&cache, &tar_of(&[E::File("whole", "back")]));
        let (out, info) = squash_layers(vec![l1, l2, l3], none(), &cache).unwrap();
        assert_eq!(out.len(), 1);
        let got: Vec<(String, char, String)> = listing(&out[0]);
        let want: Vec<(String, char, String)> = [
            ("a/", 'd', ""),
            ("a/kept", 'f', "2"),
            ("opq/", 'd', ""),
            ("keep/", 'd', ""),
            ("keep/x", 'f', "6"),
            ("opq/new", 'f', "8"),
            ("d2f", 'f', "file now"),
            ("f2d/", 'd', ""),
            ("f2d/in", 'f', "9"),
            ("whole", 'f', "back"),
        ]
        .iter()
        .map(|(p, k, c)| (p.to_string(), *k, c.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(info.entries, 10);
    }

    #[test]
    fn hardlinks_stay_links_or_become_copies_when_their_target_changed() {
        let (_d, cache) = cache();
        let l1 = layer(
            &cache,
            &tar_of(&[
                E::File("orig", "old content"),
                E::Hard("link", "orig"),
                E::File("t2", "kept target"),
                E::Hard("link2", "t2"),
                E::Hard("chain", "link2"),
            ]),
        );
        let l2 = layer(&cache, &tar_of(&[E::File("orig", "replaced")]));
        let (out, info) = squash_layers(vec![l1, l2], none(), &cache).unwrap();
        assert_eq!(
            listing(&out[0]),
            [
                ("link".to_string(), 'f', "old content".to_string()),
                ("t2".into(), 'f', "kept target".into()),
                ("link2".into(), 'h', "t2".into()),
                ("chain".into(), 'h', "link2".into()),
                ("orig".into(), 'f', "replaced".into()),
            ]
        );
        assert_eq!(info.materialized, 1);
        // A whited-out target: the link keeps the content.
        let l1 = layer(
            &cache,
            &tar_of(&[E::File("orig", "content"), E::Hard("link", "orig")]),
        );
        let l2 = layer(&cache, &tar_of(&[E::File(".wh.orig", "")]));
        let (out, _) = squash_layers(vec![l1, l2], none(), &cache).unwrap();
        assert_eq!(
            listing(&out[0]),
            [("link".to_string(), 'f', "content".to_string())]
        );
    }
}
