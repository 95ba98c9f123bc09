//! Streaming a root filesystem into a compressed layer blob of the layout.
//!
//! The pipeline is `tar -> hash (diff_id) -> compressor -> hash (digest) -> temp file`, so the
//! uncompressed tar's digest (the config's `diff_ids`) and the blob's digest (the manifest's
//! layer descriptor) come out of one pass, and the layer never sits in memory.

use super::error::PackError;
use super::layout_dir::{LayoutDir, StoredBlob};
use super::rootfs_tar::{write_rootfs_tar, TarStats};
use crate::compress::CompressSpec;
use oci2bin_rt::oci::{Digest, Sha256Writer};
use std::io::{BufWriter, Write};
use std::path::Path;

/// A layer written into the layout.
#[derive(Clone, Debug)]
pub(crate) struct LayerBlob {
    /// The compressed blob.
    pub blob: StoredBlob,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// What the tar holds.
    pub stats: TarStats,
}

/// Packs `rootfs` as one layer blob of `layout`.
pub(crate) fn write_layer_blob(
    layout: &LayoutDir,
    rootfs: &Path,
    compression: CompressSpec,
    mtime: u64,
) -> Result<LayerBlob, PackError> {
    let tmp = layout.temp_blob()?;
    let tmp_path = tmp.path().to_path_buf();
    let (encoded, stats) = encode_tar(tmp.as_file(), compression, |tar| {
        write_rootfs_tar(rootfs, tar, mtime)
    })
    .map_err(|e| match e {
        EncodeError::Io(e) => PackError::write(&tmp_path)(e),
        EncodeError::Tar(e) => e,
    })?;
    layout.commit_blob(tmp, &encoded.digest)?;
    Ok(LayerBlob {
        blob: StoredBlob {
            digest: encoded.digest,
            size: encoded.size,
        },
        diff_id: encoded.diff_id,
        stats,
    })
}

/// The digests of a tar compressed by [`encode_tar`].
#[derive(Clone, Debug)]
pub(crate) struct EncodedTar {
    /// Digest of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// Why [`encode_tar`] failed: writing the output, or the caller's tar writer.
#[derive(Debug)]
pub(crate) enum EncodeError<E> {
    /// Compressing into or flushing the output failed.
    Io(std::io::Error),
    /// The tar writer failed.
    Tar(E),
}

/// The writer a tar is written into by [`encode_tar`]'s callback.
pub(crate) type TarSink<'a> =
    Sha256Writer<crate::compress::Encoder<Sha256Writer<BufWriter<&'a std::fs::File>>>>;

/// Compresses the tar that `write` produces into `file` with `compression`, hashing it before
/// and after compression in the same pass. `write` gets the sink, must end the archive and
/// give the sink back with its own result. Shared by `pack` and the build-time image edits
/// (`crate::edit`), so every layer oci2bin writes is made the same way.
pub(crate) fn encode_tar<'a, T, E>(
    file: &'a std::fs::File,
    compression: CompressSpec,
    write: impl FnOnce(TarSink<'a>) -> Result<(T, TarSink<'a>), E>,
) -> Result<(EncodedTar, T), EncodeError<E>> {
    let blob_hasher = Sha256Writer::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = compression.encoder(blob_hasher).map_err(EncodeError::Io)?;
    let tar_hasher = Sha256Writer::new(encoder);
    let (value, tar_hasher) = write(tar_hasher).map_err(EncodeError::Tar)?;
    let (diff_id, _tar_len, encoder) = tar_hasher.finish();
    let blob_hasher = encoder.finish().map_err(EncodeError::Io)?;
    let (digest, size, mut buffered) = blob_hasher.finish();
    buffered.flush().map_err(EncodeError::Io)?;
    Ok((
        EncodedTar {
            digest,
            size,
            diff_id,
        },
        value,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci2bin_rt::oci::Compression;
    use std::fs;
    use std::io::Read;

    #[test]
    fn digest_and_diff_id_describe_the_blob_and_its_tar() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/hostname"), "box\n").unwrap();
        let layout = LayoutDir::open_or_create(&dir.path().join("out")).unwrap();
        for c in [Compression::Gzip, Compression::None] {
            let spec = CompressSpec::parse(c.name()).unwrap();
            let layer = write_layer_blob(&layout, &rootfs, spec, 7).unwrap();
            let bytes = fs::read(layout.root().join(layer.blob.digest.blob_path())).unwrap();
            assert_eq!(Digest::of(&bytes), layer.blob.digest);
            assert_eq!(bytes.len() as u64, layer.blob.size);
            let tar = if c == Compression::Gzip {
                let mut tar = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut tar)
                    .unwrap();
                tar
            } else {
                bytes
            };
            assert_eq!(Digest::of(&tar), layer.diff_id);
            assert_eq!(
                super::super::rootfs_tar::entry_names(&tar),
                ["etc/", "etc/hostname"]
            );
            assert_eq!(layer.stats.entries, 2);
        }
    }
}
