//! Planning and writing the payload tar (see `oci2bin_rt::payload` for the format).
//!
//! The plan knows every entry's size before a byte is written, so the payload can be streamed
//! straight into the object file whose header must state its length; nothing is assembled in
//! memory except the small JSON documents. Headers are fixed (mtime 0, uid 0, mode 0644) so
//! two builds of the same image write identical bytes.

use crate::cache::Stamp;
use crate::compress::CompressSpec;
use crate::error::{BuildError, Result};
use crate::prepare::PreparedLayer;
use crate::source::ResolvedImage;
use oci2bin_rt::oci::{media, Digest, Sha256Writer};
use oci2bin_rt::payload::{format, Metadata};
use serde_json::json;
use std::io::{self, Read, Write};
use std::path::PathBuf;

enum Data {
    Dir,
    Bytes(Vec<u8>),
    Blob {
        path: PathBuf,
        digest: Digest,
        size: u64,
        stamp: Option<Stamp>,
    },
}

struct Entry {
    name: String,
    data: Data,
}

impl Entry {
    fn size(&self) -> u64 {
        match &self.data {
            Data::Dir => 0,
            Data::Bytes(b) => b.len() as u64,
            Data::Blob { size, .. } => *size,
        }
    }
}

/// The payload's entries, in order.
pub struct PayloadPlan {
    entries: Vec<Entry>,
    /// Digest of the manifest written into the payload.
    pub manifest_digest: Digest,
    /// The metadata written as the first entry.
    pub metadata: Metadata,
}

fn pad(n: u64) -> u64 {
    (512 - n % 512) % 512
}

/// Lays out the payload for `image` with its `layers` recompressed by `spec`.
pub fn plan(
    image: &ResolvedImage,
    layers: &[PreparedLayer],
    spec: CompressSpec,
) -> Result<PayloadPlan> {
    let mut layer_descs = Vec::new();
    let mut entries_blobs: Vec<Entry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in layers {
        let digest = l.digest()?;
        layer_descs.push(json!({
            "mediaType": l.compression().oci_layer_media_type(),
            "digest": digest.to_string(),
            "size": l.size,
        }));
        if seen.insert(digest.clone()) {
            entries_blobs.push(Entry {
                name: digest.blob_path(),
                data: Data::Blob {
                    path: l.path.clone(),
                    digest,
                    size: l.size,
                    stamp: l.stamp,
                },
            });
        }
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": image.config_digest.to_string(),
            "size": image.config_bytes.len(),
        },
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(BuildError::json("manifest"))?;
    let manifest_digest = Digest::of(&manifest_bytes);
    let mut platform = json!({
        "architecture": image.platform.architecture,
        "os": image.platform.os,
    });
    if let Some(v) = &image.platform.variant {
        platform["variant"] = json!(v);
    }
    let reference = &image.reference;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest_bytes.len(),
            "platform": platform,
            "annotations": {
                "io.containerd.image.name": reference.to_string(),
                "org.opencontainers.image.ref.name": reference.tag.clone().unwrap_or_else(|| "latest".into()),
            },
        }],
    });
    let docker_manifest = json!([{
        "Config": image.config_digest.blob_path(),
        "RepoTags": [reference.repo_tag()],
        "Layers": layers.iter().map(|l| l.digest().map(|d| d.blob_path())).collect::<Result<Vec<_>>>()?,
    }]);
    let metadata = Metadata {
        oci2bin_version: env!("CARGO_PKG_VERSION").into(),
        reference: reference.to_string(),
        source: image.recorded_source.clone(),
        platform: image.platform.to_string(),
        compression: spec.to_string(),
        source_index_digest: image.index_digest.as_ref().map(|d| d.to_string()),
        source_manifest_digest: image.manifest_digest.as_ref().map(|d| d.to_string()),
    };
    let to_json = |v: &serde_json::Value, what: &str| {
        serde_json::to_vec(v).map_err(BuildError::json(what.to_string()))
    };
    let mut entries = vec![
        Entry {
            name: format::METADATA.into(),
            data: Data::Bytes(
                serde_json::to_vec_pretty(&metadata).map_err(BuildError::json("metadata"))?,
            ),
        },
        Entry {
            name: format::OCI_LAYOUT.into(),
            data: Data::Bytes(format::OCI_LAYOUT_CONTENT.as_bytes().to_vec()),
        },
        Entry {
            name: format::INDEX.into(),
            data: Data::Bytes(to_json(&index, "index")?),
        },
        Entry {
            name: format::DOCKER_MANIFEST.into(),
            data: Data::Bytes(to_json(&docker_manifest, "manifest.json")?),
        },
        Entry {
            name: "blobs/".into(),
            data: Data::Dir,
        },
        Entry {
            name: "blobs/sha256/".into(),
            data: Data::Dir,
        },
        Entry {
            name: image.config_digest.blob_path(),
            data: Data::Bytes(image.config_bytes.clone()),
        },
        Entry {
            name: manifest_digest.blob_path(),
            data: Data::Bytes(manifest_bytes),
        },
    ];
    entries.extend(entries_blobs);
    Ok(PayloadPlan {
        entries,
        manifest_digest,
        metadata,
    })
}

impl PayloadPlan {
    /// Total size of the tar, end-of-archive blocks included.
    pub fn len(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| 512 + e.size() + pad(e.size()))
            .sum::<u64>()
            + 1024
    }

    /// Always false: a payload has at least its metadata.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the tar to `out`. Each layer blob is checked on the way: against its digest,
    /// or, when the cache file still matches the [`Stamp`] taken when it was verified, by that
    /// stamp alone (the cache is trusted only as far as it provably has not changed). Into a
    /// `File`, such blobs are copied by the kernel (`copy_file_range`), so writing a payload
    /// costs what copying it costs.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> Result<()> {
        let zeros = [0u8; 1024];
        let werr = |e: io::Error| BuildError::io("writing the payload to", "the output")(e);
        for e in &self.entries {
            let mut h = tar::Header::new_ustar();
            h.set_path(&e.name).map_err(|err| {
                BuildError::Unsupported(format!("payload entry name {:?}: {err}", e.name))
            })?;
            h.set_size(e.size());
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            match e.data {
                Data::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                }
                _ => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                }
            }
            h.set_cksum();
            out.write_all(h.as_bytes()).map_err(werr)?;
            match &e.data {
                Data::Dir => {}
                Data::Bytes(b) => out.write_all(b).map_err(werr)?,
                Data::Blob {
                    path,
                    digest,
                    size,
                    stamp,
                } => copy_blob(out, path, digest, *size, *stamp)?,
            }
            out.write_all(&zeros[..pad(e.size()) as usize])
                .map_err(werr)?;
        }
        out.write_all(&zeros).map_err(werr)?;
        Ok(())
    }
}

/// Copies the cached blob at `path` into `out`: unhashed when the open file still matches
/// `stamp`, else hashed and compared with `digest`.
fn copy_blob<W: Write + ?Sized>(
    out: &mut W,
    path: &std::path::Path,
    digest: &Digest,
    size: u64,
    stamp: Option<Stamp>,
) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(BuildError::io("opening", path))?;
    let now = f
        .metadata()
        .map(|m| Stamp::from_metadata(&m))
        .map_err(BuildError::io("reading", path))?;
    let mismatch = |actual: String| BuildError::Mismatch {
        what: format!("cached blob {}", path.display()),
        expected: format!("{digest} ({size} bytes)"),
        actual: format!("{actual}; delete the build cache and retry"),
    };
    if stamp == Some(now) && now.len == size {
        let n = io::copy(&mut (&mut f).take(size), out).map_err(BuildError::io("copying", path))?;
        if n != size {
            return Err(mismatch(format!("{n} bytes")));
        }
        return Ok(());
    }
    let mut w = Sha256Writer::new(out);
    io::copy(&mut f, &mut w).map_err(BuildError::io("copying", path))?;
    let (got, n, _) = w.finish();
    if &got != digest || n != size {
        return Err(mismatch(format!("{got} ({n} bytes)")));
    }
    Ok(())
}
