//! `--strip` and `--strip-path`: leaving documentation, caches and chosen paths out of the
//! layers.
//!
//! Every layer is rewritten without the entries under the patterns (a pattern matches a path
//! or any of its ancestors, so `/usr/share/doc/*` empties the directory and `/opt/x` removes
//! the whole tree). Whiteouts and opaque markers are always kept: what they hide is in lower
//! layers, stripped too or not. A file that a kept hardlink points to is kept (with its
//! parent directories), or the link would dangle; so are the paths in [`KEEP`].

use super::error::EditError;
use super::layer_io::{
    cached_edit, copy_entry, edit_key, for_each_entry, layer_name, normalize, record_edit,
    scan_entries, write_layer, LayerEntry,
};
use crate::cache::BuildCache;
use crate::compress::CompressSpec;
use crate::prepare::PreparedLayer;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What `--strip` removes: documentation, manual and info pages, translations, and package
/// manager caches and indexes (apt, apk). None of it is read by a program at run time;
/// `apt-get update` or `apk update` fetches the indexes again.
pub const DEFAULT_STRIP: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/doc-base/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/lintian/*",
    "/usr/share/locale/*",
    "/usr/local/share/doc/*",
    "/usr/local/share/man/*",
    "/var/cache/apt/*",
    "/var/lib/apt/lists/*",
    "/var/cache/apk/*",
    "/var/cache/man/*",
    "/var/cache/debconf/*-old",
];

/// Paths `--strip` keeps although a default pattern covers them: glibc reads
/// `locale.alias` to resolve names such as `en_US` (without it `setlocale` fails for such
/// names), and apt refuses to run without its `partial/` directories. Locale definitions
/// (`/usr/lib/locale`, `/usr/share/i18n`) are never stripped.
pub const KEEP: &[&str] = &[
    "/usr/share/locale/locale.alias",
    "/var/cache/apt/archives/partial",
    "/var/lib/apt/lists/partial",
];

/// What to strip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StripSpec {
    /// Strip [`DEFAULT_STRIP`] (`--strip`).
    pub defaults: bool,
    /// More glob patterns on absolute paths (`--strip-path`): `*` stays within a path
    /// component, `**` crosses them.
    pub patterns: Vec<String>,
}

impl StripSpec {
    /// True when nothing would be stripped.
    pub fn is_empty(&self) -> bool {
        !self.defaults && self.patterns.is_empty()
    }

    /// Every pattern in effect, defaults first.
    fn all_patterns(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        if self.defaults {
            all.extend(DEFAULT_STRIP.iter().map(|s| s.to_string()));
        }
        all.extend(self.patterns.iter().cloned());
        all
    }

    /// Checks every `--strip-path` pattern (anchored, valid glob syntax).
    pub fn check(&self) -> Result<(), EditError> {
        self.matcher().map(|_| ())
    }

    fn matcher(&self) -> Result<Matcher, EditError> {
        let mut set = GlobSetBuilder::new();
        for p in self.all_patterns() {
            if !(p.starts_with('/') || p.starts_with("**")) {
                return Err(EditError::Glob {
                    pattern: p.clone(),
                    reason: format!("patterns match absolute paths: write /{p} or **/{p}"),
                });
            }
            let glob = GlobBuilder::new(&p)
                .literal_separator(true)
                .build()
                .map_err(|e| EditError::Glob {
                    pattern: p.clone(),
                    reason: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| EditError::Glob {
            pattern: self.patterns.join(" "),
            reason: e.to_string(),
        })?;
        let keep = if self.defaults {
            KEEP.iter().map(|k| normalize(k.as_bytes())).collect()
        } else {
            BTreeSet::new()
        };
        Ok(Matcher { globs, keep })
    }
}

/// Decides which paths go.
struct Matcher {
    globs: GlobSet,
    /// Normalised paths kept, with their ancestors.
    keep: BTreeSet<Vec<u8>>,
}

/// Whether `path` (normalised) is in `set` or an ancestor of a path in it.
fn covers(set: &BTreeSet<Vec<u8>>, path: &[u8]) -> bool {
    if set.contains(path) {
        return true;
    }
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    set.range(prefix.clone()..)
        .next()
        .is_some_and(|p| p.starts_with(&prefix))
}

impl Matcher {
    /// Whether the normalised `path` or one of its ancestors matches a pattern.
    fn matches(&self, path: &[u8]) -> bool {
        let mut abs = Vec::with_capacity(path.len() + 1);
        abs.push(b'/');
        abs.extend_from_slice(path);
        let mut end = abs.len();
        loop {
            let candidate = String::from_utf8_lossy(&abs[..end]);
            if self.globs.is_match(candidate.as_ref()) {
                return true;
            }
            match abs[..end].iter().rposition(|&b| b == b'/') {
                Some(0) | None => return false,
                Some(i) => end = i,
            }
        }
    }

    /// Whether an entry at `path` is removed, given the paths kept for hardlinks.
    fn removes(&self, path: &[u8], needed: &BTreeSet<Vec<u8>>) -> bool {
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        if base.starts_with(b".wh.") || path.is_empty() {
            return false;
        }
        self.matches(path) && !covers(&self.keep, path) && !covers(needed, path)
    }
}

/// What stripping one layer removed.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Stripped {
    /// Entries removed.
    pub entries: u64,
    /// Bytes of file content removed (uncompressed).
    pub bytes: u64,
}

/// Strips every layer; returns the new layers and the totals.
pub(crate) fn strip_layers(
    layers: Vec<PreparedLayer>,
    spec: &StripSpec,
    codec: CompressSpec,
    cache: &BuildCache,
) -> Result<(Vec<PreparedLayer>, Stripped), EditError> {
    let matcher = spec.matcher()?;
    let mut total = Stripped::default();
    let mut out = Vec::with_capacity(layers.len());
    for (i, layer) in layers.into_iter().enumerate() {
        let what = layer_name(i, &layer);
        let key = edit_key(&serde_json::json!({
            "edit": "strip", "version": 1, "patterns": spec.all_patterns(),
            "keep": spec.defaults.then_some(KEEP), "diff_id": layer.diff_id,
        }));
        let (new, stripped) = match cached_edit::<Stripped>(cache, &key, codec) {
            Some(hit) => hit,
            None => {
                let result = strip_layer(&layer, &what, &matcher, codec, cache)?;
                let result = match result {
                    // Nothing to remove: the layer stays as it is (and keeps its digest).
                    None => (layer, Stripped::default()),
                    Some(r) => r,
                };
                record_edit(cache, &key, codec, &result.0, &result.1)?;
                result
            }
        };
        total.entries += stripped.entries;
        total.bytes += stripped.bytes;
        out.push(new);
    }
    Ok((out, total))
}

/// Strips one layer: `None` when nothing in it matches.
fn strip_layer(
    layer: &PreparedLayer,
    what: &str,
    matcher: &Matcher,
    codec: CompressSpec,
    cache: &BuildCache,
) -> Result<Option<(PreparedLayer, Stripped)>, EditError> {
    // One pass in the common case: entries are filtered while the layer is read, verified
    // and written. Tar puts a hardlink after its target, so only a kept link to a removed
    // file needs to be known in advance: then the layer is done again in two passes below.
    let none = BTreeSet::new();
    let mut two_passes = false;
    let one = write_layer(cache, codec, &format!("stripped {what}"), |out| {
        let mut stripped = Stripped::default();
        for_each_entry(layer, what, |e: &mut LayerEntry<'_, '_>| {
            let path = normalize(&e.path_bytes());
            if matcher.removes(&path, &none) {
                stripped.entries += 1;
                if e.header().entry_type().is_file() {
                    stripped.bytes += e.size();
                }
                return Ok(());
            }
            if e.header().entry_type().is_hard_link() {
                let target = e.link_name_bytes().map(|t| normalize(&t));
                if target.is_some_and(|t| matcher.removes(&t, &none)) {
                    two_passes = true;
                    let restart = std::io::Error::other("a kept hardlink to a removed file");
                    return Err(EditError::layer("restarting", what.to_string())(restart));
                }
            }
            copy_entry(out, e, None).map_err(super::error::EditError::layer(
                "copying an entry of",
                what.to_string(),
            ))
        })?;
        Ok(stripped)
    });
    match one {
        Err(_) if two_passes => {}
        // Nothing matched: the layer stays as it is (and keeps its digest).
        Ok((_, stripped)) if stripped.entries == 0 => return Ok(None),
        other => return other.map(Some),
    }
    // Pass 1 (headers; pass 2 verifies): which entries match, and the layer's hardlinks.
    let mut any = false;
    let mut links: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    scan_entries(layer, what, |e: &mut LayerEntry<'_, '_>| {
        let path = normalize(&e.path_bytes());
        if e.header().entry_type().is_hard_link() {
            if let Some(t) = e.link_name_bytes() {
                links.insert(path.clone(), normalize(&t));
            }
        }
        any |= matcher.removes(&path, &none);
        Ok(())
    })?;
    if !any {
        return Ok(None);
    }
    // Targets of kept hardlinks stay, following chains of links to links.
    let mut needed = BTreeSet::new();
    let mut todo: Vec<Vec<u8>> = links
        .iter()
        .filter(|(link, _)| !matcher.removes(link, &none))
        .map(|(_, target)| target.clone())
        .collect();
    while let Some(t) = todo.pop() {
        if needed.insert(t.clone()) {
            if let Some(next) = links.get(&t) {
                todo.push(next.clone());
            }
        }
    }
    let (new, stripped) = write_layer(cache, codec, &format!("stripped {what}"), |out| {
        let mut stripped = Stripped::default();
        for_each_entry(layer, what, |e: &mut LayerEntry<'_, '_>| {
            let path = normalize(&e.path_bytes());
            if matcher.removes(&path, &needed) {
                stripped.entries += 1;
                if e.header().entry_type().is_file() {
                    stripped.bytes += e.size();
                }
                return Ok(());
            }
            copy_entry(out, e, None).map_err(super::error::EditError::layer(
                "copying an entry of",
                what.to_string(),
            ))
        })?;
        Ok(stripped)
    })?;
    Ok(Some((new, stripped)))
}

#[cfg(test)]
mod tests {
    use super::super::layer_io::test_util::{cache, layer, listing, none, tar_of, E};
    use super::*;

    fn names(l: &PreparedLayer) -> Vec<String> {
        listing(l).into_iter().map(|(p, _, _)| p).collect()
    }

    #[test]
    fn globs_match_paths_and_their_ancestors() {
        let spec = StripSpec {
            defaults: true,
            patterns: vec!["/opt/tool".into(), "**/*.pyc".into(), "/srv/*.log".into()],
        };
        let m = spec.matcher().unwrap();
        let none = BTreeSet::new();
        let removes = |p: &str| m.removes(p.as_bytes(), &none);
        assert!(removes("usr/share/doc/bash/copyright"));
        assert!(removes("usr/share/doc/bash"));
        assert!(!removes("usr/share/doc"), "the directory itself stays");
        assert!(removes("usr/share/locale/de/LC_MESSAGES/x.mo"));
        assert!(!removes("usr/share/locale/locale.alias"));
        assert!(!removes("var/lib/apt/lists/partial"));
        assert!(removes("var/lib/apt/lists/deb.debian.org_dists"));
        assert!(removes("opt/tool") && removes("opt/tool/bin/x"));
        assert!(!removes("opt/toolbox"));
        assert!(removes("usr/lib/python3/a/b.pyc") && removes("x.pyc"));
        assert!(removes("srv/a.log") && !removes("srv/sub/a.log"));
        assert!(!removes("usr/share/doc/.wh.bash"), "whiteouts stay");
        assert!(!removes("usr/lib/locale/C.utf8/LC_CTYPE"));
        assert!(!removes(""));
        for bad in ["usr/share", "/a/[b"] {
            let spec = StripSpec {
                defaults: false,
                patterns: vec![bad.into()],
            };
            assert!(matches!(spec.check(), Err(EditError::Glob { .. })), "{bad}");
        }
    }

    #[test]
    fn stripping_removes_matches_but_keeps_hardlink_targets() {
        let (_d, cache) = cache();
        let tar = tar_of(&[
            E::Dir("usr"),
            E::Dir("usr/share"),
            E::Dir("usr/share/doc"),
            E::Dir("usr/share/doc/a"),
            E::File("usr/share/doc/a/README", "0123456789"),
            E::File("usr/share/doc/a/shared", "linked"),
            E::Dir("usr/bin"),
            E::File("usr/bin/tool", "bin"),
            E::Hard("usr/bin/alias", "usr/share/doc/a/shared"),
            E::Sym("usr/share/doc/a/link", "/etc"),
        ]);
        let l = layer(&cache, &tar);
        let spec = StripSpec {
            defaults: true,
            patterns: vec![],
        };
        let (out, total) = strip_layers(vec![l.clone()], &spec, none(), &cache).unwrap();
        assert_eq!(
            names(&out[0]),
            [
                "usr/",
                "usr/share/",
                "usr/share/doc/",
                "usr/share/doc/a/",
                "usr/share/doc/a/shared",
                "usr/bin/",
                "usr/bin/tool",
                "usr/bin/alias"
            ]
        );
        assert_eq!(
            total,
            Stripped {
                entries: 2,
                bytes: 10
            }
        );
        assert_ne!(out[0].diff_id, l.diff_id);
        // Recorded: the second run finds the same layer without rewriting it.
        let (again, total2) = strip_layers(vec![l.clone()], &spec, none(), &cache).unwrap();
        assert_eq!(again[0].digest, out[0].digest);
        assert_eq!(total2, total);
        // A layer with nothing to strip is kept as it is.
        let plain = layer(&cache, &tar_of(&[E::Dir("etc"), E::File("etc/x", "1")]));
        let (same, t) = strip_layers(vec![plain.clone()], &spec, none(), &cache).unwrap();
        assert_eq!(same[0].digest, plain.digest);
        assert_eq!(t, Stripped::default());
    }

    #[test]
    fn one_pass_when_no_kept_link_needs_a_removed_file() {
        let (_d, cache) = cache();
        let tar = tar_of(&[
            E::Dir("usr"),
            E::Dir("usr/share"),
            E::Dir("usr/share/man"),
            E::File("usr/share/man/ls.1", "manual"),
            E::File("usr/bin-ls", "elf"),
            E::Hard("usr/bin-dir", "usr/bin-ls"),
            E::Hard("usr/share/man/dir.1", "usr/share/man/ls.1"),
        ]);
        let l = layer(&cache, &tar);
        let spec = StripSpec {
            defaults: true,
            patterns: vec![],
        };
        let (out, total) = strip_layers(vec![l], &spec, none(), &cache).unwrap();
        assert_eq!(
            names(&out[0]),
            [
                "usr/",
                "usr/share/",
                "usr/share/man/",
                "usr/bin-ls",
                "usr/bin-dir"
            ]
        );
        assert_eq!(
            total,
            Stripped {
                entries: 2,
                bytes: 6
            }
        );
    }
}
