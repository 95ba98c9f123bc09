//! Verifying and recompressing one layer in a single streaming pass.
//!
//! The blob is read once: its bytes are hashed (the layer digest), decoded and hashed again
//! (the diff_id), and re-encoded into the cache while the output is hashed (the new digest).
//! Only when all three check out is the result renamed into the cache; a mismatch leaves
//! nothing behind under any digest.

use crate::cache::{BuildCache, Stamp};
use crate::compress::CompressSpec;
use crate::error::{BuildError, Result};
use crate::source::SourceLayer;
use oci2bin_rt::decompress::decoder;
use oci2bin_rt::oci::{Compression, Digest, Sha256Reader, Sha256Writer};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

/// A layer ready to embed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PreparedLayer {
    /// Digest of the recompressed blob.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Digest of the uncompressed tar (unchanged by recompression).
    pub diff_id: String,
    /// Codec of the recompressed blob.
    pub codec: String,
    /// Where the blob is in the build cache (not part of the record on disk).
    #[serde(skip)]
    pub path: PathBuf,
    /// The blob file's stamp when it was verified (see [`Stamp`]); records written before
    /// stamps existed have none, and their blob is hashed again when a payload is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
}

impl PreparedLayer {
    /// The blob digest, parsed.
    pub fn digest(&self) -> Result<Digest> {
        Digest::parse(&self.digest).map_err(BuildError::digest("cached layer record"))
    }

    /// The compression of the blob.
    pub fn compression(&self) -> Compression {
        match self.codec.as_str() {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "xz" => Compression::Xz,
            _ => Compression::None,
        }
    }
}

/// Counts bytes for a progress callback.
struct Counting<'a, R> {
    inner: R,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// The mismatch error when the blob read for `layer` hashed to `got` instead of its digest.
fn check_blob_digest(layer: &SourceLayer, got: &Digest, what: &str) -> Result<()> {
    match &layer.digest {
        Some(want) if want != got => Err(BuildError::Mismatch {
            what: format!("{what} (blob content)"),
            expected: want.to_string(),
            actual: got.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Verifies `layer` and recompresses it with `spec` into `cache`, or returns the cached result
/// of an earlier identical run. `what` names the layer in errors; `progress` receives the
/// number of source bytes consumed as they are read.
pub fn prepare_layer(
    layer: &SourceLayer,
    spec: CompressSpec,
    cache: &BuildCache,
    what: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<PreparedLayer> {
    let key = match &layer.digest {
        Some(d) => d.hex().to_string(),
        None => format!("diff-{}", layer.diff_id.hex()),
    };
    let record_path = cache.record_path(&key, &spec.to_string());
    if let Some(hit) = cached(cache, &record_path, &layer.diff_id) {
        progress(layer.location.len);
        return Ok(hit);
    }

    let input = layer.location.open()?;
    let hashed_in = Sha256Reader::new(Counting {
        inner: input,
        progress,
    });
    let mut buffered = BufReader::with_capacity(1 << 20, hashed_in);
    let read_err = BuildError::io("reading", &layer.location.path);
    let compression = match layer.compression {
        Some(c) => c,
        None => Compression::sniff(buffered.fill_buf().map_err(read_err)?),
    };
    let tmp = tempfile::NamedTempFile::new_in(cache.tmp_dir()).map_err(BuildError::io(
        "creating a temporary file in",
        cache.tmp_dir(),
    ))?;
    let write_err = |e| BuildError::io("writing", tmp.path())(e);
    let out = Sha256Writer::new(BufWriter::with_capacity(1 << 20, tmp.as_file()));
    let mut uncompressed = Sha256Writer::new(spec.encoder(out).map_err(write_err)?);
    let copied = {
        let mut dec = decoder(compression, &mut buffered)
            .map_err(|e| BuildError::Unsupported(format!("cannot decode {what}: {e}")))?;
        io::copy(&mut dec, &mut uncompressed)
    };
    if let Err(e) = copied {
        if e.kind() == io::ErrorKind::WriteZero || e.raw_os_error().is_some() {
            return Err(BuildError::io("recompressing into", tmp.path())(e));
        }
        // A blob that does not decode is most often one whose bytes were changed: hash the
        // rest of it and report the digest mismatch, the real problem, when there is one.
        let (in_digest, _) = buffered
            .into_inner()
            .finish()
            .map_err(BuildError::io("reading", &layer.location.path))?;
        check_blob_digest(layer, &in_digest, what)?;
        return Err(BuildError::Mismatch {
            what: format!("{what}: {compression} stream"),
            expected: "a valid compressed tar".into(),
            actual: format!("a decoding error ({e})"),
        });
    }
    let (diff_id, _, encoder) = uncompressed.finish();
    let out = encoder.finish().map_err(write_err)?;
    let (out_digest, out_size, mut file) = out.finish();
    file.flush().map_err(write_err)?;
    drop(file);
    let (in_digest, in_size) = buffered
        .into_inner()
        .finish()
        .map_err(BuildError::io("reading", &layer.location.path))?;

    check_blob_digest(layer, &in_digest, what)?;
    if let Some(want) = layer.size {
        if want != in_size {
            return Err(BuildError::Mismatch {
                what: format!("{what} (blob size)"),
                expected: format!("{want} bytes"),
                actual: format!("{in_size} bytes"),
            });
        }
    }
    if diff_id != layer.diff_id {
        return Err(BuildError::Mismatch {
            what: format!("{what} (uncompressed content vs the config's diff_id)"),
            expected: layer.diff_id.to_string(),
            actual: diff_id.to_string(),
        });
    }
    let path = cache.blob_path(&out_digest);
    tmp.as_file().sync_all().map_err(write_err)?;
    // Read-only: the blob is content-addressed, nothing should write to it.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .map_err(write_err)?;
    tmp.persist(&path)
        .map_err(|e| BuildError::io("renaming into", &path)(e.error))?;
    let stamp = Stamp::of(&path).map_err(BuildError::io("reading", &path))?;
    let prepared = PreparedLayer {
        digest: out_digest.to_string(),
        size: out_size,
        diff_id: diff_id.to_string(),
        codec: spec.codec.name().into(),
        path,
        stamp: Some(stamp),
    };
    let record = serde_json::to_vec(&prepared).map_err(BuildError::json("layer record"))?;
    cache.write_atomic(&record_path, &record)?;
    Ok(prepared)
}

fn cached(cache: &BuildCache, record: &std::path::Path, diff_id: &Digest) -> Option<PreparedLayer> {
    let mut p: PreparedLayer = serde_json::from_slice(&std::fs::read(record).ok()?).ok()?;
    if p.diff_id != diff_id.to_string() {
        return None;
    }
    let digest = Digest::parse(&p.digest).ok()?;
    p.path = cache.blob_path(&digest);
    let meta = std::fs::metadata(&p.path).ok()?;
    (meta.len() == p.size).then_some(p)
}
