//! Reading the prepared layers and writing edited ones into the build cache.
//!
//! Edits work on the layers as [`prepare`](crate::prepare) left them in the build cache
//! (already verified, recompressed with the build's codec). Each is decoded as a stream and
//! hashed on the way, and checked against its diff_id at the end, so a cache file changed
//! since it was verified is caught rather than edited. Edited layers are compressed the way
//! `pack` compresses ([`encode_tar`]) and renamed into the content-addressed blob store;
//! results that depend only on input layers and options (strip, squash) are recorded under
//! a key of both, so a rebuild reuses them and an unedited build never sees them.

use super::error::EditError;
use crate::cache::{BuildCache, Stamp};
use crate::compress::CompressSpec;
use crate::pack::layer_blob::{encode_tar, EncodeError, TarSink};
use crate::prepare::PreparedLayer;
use oci2bin_rt::decompress::decoder;
use oci2bin_rt::oci::{Digest, Sha256Writer};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::ffi::OsStr;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A tar entry of a layer being read.
pub(crate) type LayerEntry<'a, 'b> = tar::Entry<'a, &'b mut LayerReader>;

/// How a layer is named in messages.
pub(crate) fn layer_name(index: usize, layer: &PreparedLayer) -> String {
    format!("layer {} ({})", index + 1, layer.diff_id)
}

/// Calls `f` for every entry of `layer` in order (global PAX headers skipped), then checks
/// the whole stream against the layer's diff_id.
pub(crate) fn for_each_entry(
    layer: &PreparedLayer,
    what: &str,
    f: impl FnMut(&mut LayerEntry<'_, '_>) -> Result<(), EditError>,
) -> Result<(), EditError> {
    read_entries(layer, what, true, f)
}

/// Like [`for_each_entry`], without hashing: for a pass that only looks at headers, before
/// a pass over the same layer that does verify it (so nothing unverified is written).
pub(crate) fn scan_entries(
    layer: &PreparedLayer,
    what: &str,
    f: impl FnMut(&mut LayerEntry<'_, '_>) -> Result<(), EditError>,
) -> Result<(), EditError> {
    read_entries(layer, what, false, f)
}

fn read_entries(
    layer: &PreparedLayer,
    what: &str,
    verify: bool,
    mut f: impl FnMut(&mut LayerEntry<'_, '_>) -> Result<(), EditError>,
) -> Result<(), EditError> {
    let read_err = || EditError::layer("reading", what.to_string());
    let file = std::fs::File::open(&layer.path).map_err(read_err())?;
    let dec =
        decoder(layer.compression(), BufReader::with_capacity(1 << 20, file)).map_err(read_err())?;
    let mut reader = LayerReader {
        inner: dec,
        hasher: verify.then(Sha256Writer::sink),
    };
    {
        let mut archive = tar::Archive::new(&mut reader);
        for entry in archive.entries().map_err(read_err())? {
            let mut entry = entry.map_err(read_err())?;
            if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
                continue;
            }
            f(&mut entry)?;
        }
    }
    if !verify {
        return Ok(());
    }
    // The rest of the stream (end-of-archive blocks, padding) counts too.
    io::copy(&mut reader, &mut io::sink()).map_err(read_err())?;
    let (got, _, _) = reader.hasher.take().expect("verifying").finish();
    if got.to_string() != layer.diff_id {
        return Err(EditError::Corrupt {
            what: what.to_string(),
            expected: layer.diff_id.clone(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

/// The decoded stream of a layer, hashed when it is being verified.
pub(crate) struct LayerReader {
    inner: Box<dyn Read>,
    hasher: Option<Sha256Writer<io::Sink>>,
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// An entry's path as an unpacker reads it: without `./` or `/` prefixes and trailing `/`
/// (empty for the root).
pub(crate) fn normalize(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    loop {
        let before = p.len();
        while let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        }
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        }
        if p.len() == before {
            break;
        }
    }
    while let Some(rest) = p.strip_suffix(b"/") {
        p = rest;
    }
    if p == b"." {
        return Vec::new();
    }
    p.to_vec()
}

/// `path` as a `Path`, for the tar builder.
pub(crate) fn bytes_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Copies `entry` (its PAX records but for the path ones, which the builder writes again
/// when needed, its link target and data) into `out`, with `header` instead of its own when
/// given (its path fields are ignored).
pub(crate) fn copy_entry<W: Write, R: Read>(
    out: &mut tar::Builder<W>,
    entry: &mut tar::Entry<'_, R>,
    header: Option<&tar::Header>,
) -> io::Result<()> {
    let path = entry.path_bytes().into_owned();
    let link = entry.link_name_bytes().map(|l| l.into_owned());
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext
                .key()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if key != "path" && key != "linkpath" {
                pax.push((key.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    if !pax.is_empty() {
        out.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    let mut h = header.cloned().unwrap_or_else(|| entry.header().clone());
    let kind = h.entry_type();
    match link {
        Some(target) if kind.is_hard_link() || kind.is_symlink() => {
            out.append_link(&mut h, bytes_path(&path), bytes_path(&target))
        }
        _ => out.append_data(&mut h, bytes_path(&path), entry),
    }
}

/// Writes a new layer: `write` fills the tar builder (the archive is ended here), the result
/// is compressed with `spec` and renamed into the cache's blob store.
pub(crate) fn write_layer<T>(
    cache: &BuildCache,
    spec: CompressSpec,
    what: &str,
    write: impl FnOnce(&mut tar::Builder<TarSink<'_>>) -> Result<T, EditError>,
) -> Result<(PreparedLayer, T), EditError> {
    store_layer(cache, spec, what, |sink| {
        let mut builder = tar::Builder::new(sink);
        let value = write(&mut builder)?;
        let sink = builder
            .into_inner()
            .map_err(EditError::layer("writing", what.to_string()))?;
        Ok((value, sink))
    })
}

/// Like [`write_layer`], for a writer that takes the sink itself and ends the archive.
pub(crate) fn store_layer<T>(
    cache: &BuildCache,
    spec: CompressSpec,
    what: &str,
    write: impl FnOnce(TarSink<'_>) -> Result<(T, TarSink<'_>), EditError>,
) -> Result<(PreparedLayer, T), EditError> {
    let tmp_dir = cache.tmp_dir();
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(EditError::layer(
        "creating a temporary file in",
        tmp_dir.display().to_string(),
    ))?;
    let (encoded, value) = encode_tar(tmp.as_file(), spec, write).map_err(|e| match e {
        EncodeError::Io(e) => EditError::layer("writing", what.to_string())(e),
        EncodeError::Tar(e) => e,
    })?;
    let path = cache.blob_path(&encoded.digest);
    let write_err = || EditError::layer("storing", path.display().to_string());
    tmp.as_file().sync_all().map_err(write_err())?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .map_err(write_err())?;
    tmp.persist(&path).map_err(|e| write_err()(e.error))?;
    let stamp = Stamp::of(&path).map_err(write_err())?;
    Ok((
        PreparedLayer {
            digest: encoded.digest.to_string(),
            size: encoded.size,
            diff_id: encoded.diff_id.to_string(),
            codec: spec.codec.name().into(),
            path,
            stamp: Some(stamp),
        },
        value,
    ))
}

/// What the cache keeps for an edited layer: the layer and what the edit reported.
#[derive(Serialize, Deserialize)]
struct EditRecord<T> {
    layer: PreparedLayer,
    info: T,
}

/// The cache key of an edit: a digest over its kind, options and input diff_ids.
pub(crate) fn edit_key(what: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(what).unwrap_or_default();
    format!("edit-{}", Digest::of(&bytes).hex())
}

/// The recorded result of the edit with `key`, when its blob is still in the cache.
pub(crate) fn cached_edit<T: DeserializeOwned>(
    cache: &BuildCache,
    key: &str,
    spec: CompressSpec,
) -> Option<(PreparedLayer, T)> {
    let record = std::fs::read(cache.record_path(key, &spec.to_string())).ok()?;
    let mut r: EditRecord<T> = serde_json::from_slice(&record).ok()?;
    let digest = Digest::parse(&r.layer.digest).ok()?;
    r.layer.path = cache.blob_path(&digest);
    let meta = std::fs::metadata(&r.layer.path).ok()?;
    (meta.len() == r.layer.size).then_some((r.layer, r.info))
}

/// Records the result of the edit with `key` (see [`cached_edit`]).
pub(crate) fn record_edit<T: Serialize>(
    cache: &BuildCache,
    key: &str,
    spec: CompressSpec,
    layer: &PreparedLayer,
    info: &T,
) -> Result<(), EditError> {
    let record = serde_json::to_vec(&EditRecord {
        layer: layer.clone(),
        info,
    })
    .map_err(|e| EditError::layer("recording", key.to_string())(e.into()))?;
    cache
        .write_atomic(&cache.record_path(key, &spec.to_string()), &record)
        .map_err(|e| EditError::Layer {
            action: "recording",
            what: key.to_string(),
            source: io::Error::other(e.to_string()),
        })
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Layers for the unit tests of the edits: tars built in memory, stored like prepared
    //! layers.
    use super::*;
    use oci2bin_rt::oci::Compression;

    /// One entry of a test layer.
    pub(crate) enum E<'a> {
        /// A directory.
        Dir(&'a str),
        /// A regular file and its content.
        File(&'a str, &'a str),
        /// A hardlink to an earlier path.
        Hard(&'a str, &'a str),
        /// A symlink.
        Sym(&'a str, &'a str),
    }

    /// The tar of `entries`.
    pub(crate) fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(0);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{p}/"), io::empty()).unwrap();
                }
                E::File(p, c) => {
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, p, c.as_bytes()).unwrap();
                }
                E::Hard(p, t) | E::Sym(p, t) => {
                    h.set_entry_type(if matches!(e, E::Hard(..)) {
                        tar::EntryType::Link
                    } else {
                        tar::EntryType::Symlink
                    });
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    /// Stores `tar` uncompressed in `cache` as a prepared layer.
    pub(crate) fn layer(cache: &BuildCache, tar: &[u8]) -> PreparedLayer {
        let digest = Digest::of(tar);
        let path = cache.blob_path(&digest);
        std::fs::write(&path, tar).unwrap();
        PreparedLayer {
            digest: digest.to_string(),
            size: tar.len() as u64,
            diff_id: digest.to_string(),
            codec: Compression::None.name().into(),
            path,
            stamp: None,
        }
    }

    /// `(path, kind, content or link target)` of every entry of `layer`.
    pub(crate) fn listing(layer: &PreparedLayer) -> Vec<(String, char, String)> {
        let mut out = Vec::new();
        for_each_entry(layer, "test layer", &mut |e: &mut LayerEntry<'_, '_>| {
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Link => 'h',
                tar::EntryType::Symlink => 'l',
                _ => 'f',
            };
            let mut body = match e.link_name_bytes() {
                Some(l) => String::from_utf8(l.into_owned()).unwrap(),
                None => String::new(),
            };
            e.read_to_string(&mut body).unwrap();
            out.push((path, kind, body));
            Ok(())
        })
        .unwrap();
        out
    }

    /// A fresh build cache.
    pub(crate) fn cache() -> (tempfile::TempDir, BuildCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path().join("cache")).unwrap();
        (dir, cache)
    }

    /// The "none" codec, so the tests can read blobs directly.
    pub(crate) fn none() -> CompressSpec {
        CompressSpec::parse("none").unwrap()
    }
}
