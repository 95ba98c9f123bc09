//! Image edits applied at build time: config changes, an extra layer of files, stripping and
//! squashing.
//!
//! Some changes to an image are needed only for the executable (another entrypoint, a config
//! file, a smaller image) and do not deserve a Dockerfile and a registry round trip. Edits
//! run on the resolved, verified and recompressed image ([`Builder::edits`]) in a fixed
//! order: strip every layer, add the layer of added files, squash, edit the config. The
//! result is a consistent image: the new layers are in the build cache under their digests,
//! the config's `rootfs.diff_ids` and `history` describe them, and the config (so the image
//! id and the runtime's cache key) changes with every edit, so an edited and an unedited
//! build never share an image. The output stays loadable by `docker load` and `podman load`
//! and is verified by the runtime like any other.
//!
//! [`Builder::edits`]: crate::Builder::edits

mod add_layer;
mod config;
mod error;
mod layer_io;
mod squash;
mod strip;

pub use add_layer::{AddKind, AddPath};
pub use config::{check_workdir, parse_key_value, parse_port, ConfigEdits};
pub use error::EditError;
pub use strip::{StripSpec, DEFAULT_STRIP, KEEP};

use crate::cache::BuildCache;
use crate::compress::CompressSpec;
use crate::pack::{canonical_json, rfc3339};
use crate::prepare::PreparedLayer;
use crate::source::ResolvedImage;
use oci2bin_rt::oci::Digest;
use serde::Serialize;
use serde_json::{json, Value};

/// Everything to change in an image; the default changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageEdits {
    /// Changes to the config (`Entrypoint`, `Cmd`, `Env`, ...).
    pub config: ConfigEdits,
    /// Files and directories of the build machine, added as one layer on top.
    pub add: Vec<AddPath>,
    /// What to leave out of every layer.
    pub strip: StripSpec,
    /// Merge all layers into one.
    pub squash: bool,
    /// The mtime of added files and the time of new history entries (`SOURCE_DATE_EPOCH`;
    /// 0 by default, so builds are reproducible).
    pub source_date_epoch: u64,
}

impl ImageEdits {
    /// True when the image would be left as it is.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.add.is_empty() && self.strip.is_empty() && !self.squash
    }
}

/// What the edits did, for the build's summary and its JSON report.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct EditReport {
    /// Config digest of the image before the edits.
    pub source_config_digest: String,
    /// Layers before the edits.
    pub layers_before: usize,
    /// Layers after.
    pub layers_after: usize,
    /// Compressed size of the layers before.
    pub layer_bytes_before: u64,
    /// Compressed size of the layers after.
    pub layer_bytes_after: u64,
    /// Entries `--strip`/`--strip-path` removed.
    pub stripped_entries: u64,
    /// File bytes (uncompressed) they held: what stripping saved.
    pub stripped_bytes: u64,
    /// Entries in the layer of added files (parents included).
    pub added_entries: u64,
    /// Whether the layers were squashed into one.
    pub squashed: bool,
    /// Hardlinks the squash turned into copies (their target changed in a later layer).
    pub materialized_links: u64,
}

/// A history entry made by an edit.
fn history_entry(created: &str, created_by: String, comment: Option<String>, empty: bool) -> Value {
    let mut h = json!({"created": created, "created_by": created_by});
    if let Some(c) = comment {
        h["comment"] = json!(c);
    }
    if empty {
        h["empty_layer"] = json!(true);
    }
    h
}

/// Applies `edits` to `image` and its prepared `layers`, writing new layers with `codec`
/// into `cache`. With no edits, returns its inputs unchanged.
pub fn apply(
    mut image: ResolvedImage,
    layers: Vec<PreparedLayer>,
    edits: &ImageEdits,
    codec: CompressSpec,
    cache: &BuildCache,
) -> Result<(ResolvedImage, Vec<PreparedLayer>, EditReport), EditError> {
    let mut report = EditReport {
        source_config_digest: image.config_digest.to_string(),
        layers_before: layers.len(),
        layer_bytes_before: layers.iter().map(|l| l.size).sum(),
        ..Default::default()
    };
    if edits.is_empty() {
        report.layers_after = layers.len();
        report.layer_bytes_after = report.layer_bytes_before;
        return Ok((image, layers, report));
    }
    let mut config: Value =
        serde_json::from_slice(&image.config_bytes).map_err(|e| EditError::Config {
            what: format!("is not JSON ({e})"),
        })?;
    let created = rfc3339::format_utc(edits.source_date_epoch);
    let mut history: Option<Vec<Value>> = match config.get("history") {
        Some(Value::Array(h)) => Some(h.clone()),
        _ => None,
    };
    let mut layers = layers;

    if !edits.strip.is_empty() {
        let (stripped, totals) = strip::strip_layers(layers, &edits.strip, codec, cache)?;
        layers = stripped;
        report.stripped_entries = totals.entries;
        report.stripped_bytes = totals.bytes;
        if let Some(h) = &mut history {
            let mut by = String::from("cargo oci2bin");
            if edits.strip.defaults {
                by.push_str(" --strip");
            }
            for p in &edits.strip.patterns {
                by.push_str(&format!(" --strip-path {p}"));
            }
            h.push(history_entry(
                &created,
                by,
                Some(format!(
                    "removed {} entries, {} bytes",
                    totals.entries, totals.bytes
                )),
                true,
            ));
        }
    }
    if !edits.add.is_empty() {
        let (added, entries) =
            add_layer::add_layer(&edits.add, &layers, edits.source_date_epoch, codec, cache)?;
        layers.push(added);
        report.added_entries = entries;
        // Only the destinations: the build machine's paths must not make the image differ.
        let by = edits
            .add
            .iter()
            .map(|a| match a.kind {
                AddKind::File => format!(" --add-file {}", a.container),
                AddKind::Dir => format!(" --add-dir {}", a.container),
            })
            .collect::<String>();
        if let Some(h) = &mut history {
            h.push(history_entry(
                &created,
                format!("cargo oci2bin{by}"),
                None,
                false,
            ));
        }
        image
            .inputs
            .extend(edits.add.iter().map(|a| a.host.clone()));
    }
    if edits.squash && layers.len() > 1 {
        let before = layers.len();
        let (squashed, info) = squash::squash_layers(layers, codec, cache)?;
        layers = squashed;
        report.squashed = true;
        report.materialized_links = info.materialized;
        if let Some(h) = &mut history {
            for entry in h.iter_mut() {
                if let Some(o) = entry.as_object_mut() {
                    o.insert("empty_layer".into(), json!(true));
                }
            }
            h.push(history_entry(
                &created,
                "cargo oci2bin --squash".into(),
                Some(format!("{before} layers squashed into one")),
                false,
            ));
        }
    }
    config::apply(&mut config, &edits.config)?;
    if !edits.config.is_empty() {
        if let Some(h) = &mut history {
            h.push(history_entry(&created, edits.config.describe(), None, true));
        }
    }
    let top = config.as_object_mut().ok_or_else(|| EditError::Config {
        what: "is not a JSON object".into(),
    })?;
    top.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()}),
    );
    if let Some(h) = history {
        top.insert("history".into(), Value::Array(h));
    }
    let bytes = canonical_json::to_vec(&config).map_err(|e| EditError::Config {
        what: format!("cannot be written back ({e})"),
    })?;
    image.config = serde_json::from_slice(&bytes).map_err(|e| EditError::Config {
        what: format!("is no longer a valid image config after the edits ({e})"),
    })?;
    image.config_digest = Digest::of(&bytes);
    image.config_bytes = bytes;
    report.layers_after = layers.len();
    report.layer_bytes_after = layers.iter().map(|l| l.size).sum();
    Ok((image, layers, report))
}
