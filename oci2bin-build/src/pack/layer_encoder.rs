//! The compressor a packed layer is written through, with fixed, reproducible settings.
//!
//! `pack` promises byte-identical blobs for identical input on any machine, so nothing here may
//! depend on the host: zstd runs single-threaded (its multi-threaded frames differ from the
//! single-threaded ones, and the thread count would depend on the core count), gzip carries no
//! file name and a zero mtime, and every codec uses one fixed level.

use oci2bin_rt::oci::Compression;
use std::io::{self, Write};

/// gzip level: zlib's default, the usual trade-off for registry layers.
const GZIP_LEVEL: u32 = 6;
/// zstd level: zstd's default.
const ZSTD_LEVEL: i32 = 3;
/// xz preset: xz's default.
const XZ_PRESET: u32 = 6;

/// A streaming layer compressor; [`LayerEncoder::finish`] must be called to write the trailer.
pub(crate) enum LayerEncoder<W: Write> {
    /// An uncompressed tar.
    Plain(W),
    /// gzip.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd, with a content checksum.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// xz.
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> LayerEncoder<W> {
    /// Wraps `out` in the encoder for `compression`.
    pub(crate) fn new(compression: Compression, out: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => LayerEncoder::Plain(out),
            Compression::Gzip => LayerEncoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                enc.include_checksum(true)?;
                LayerEncoder::Zstd(enc)
            }
            Compression::Xz => LayerEncoder::Xz(liblzma::write::XzEncoder::new(out, XZ_PRESET)),
        })
    }

    /// Writes the codec's trailer and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            LayerEncoder::Plain(w) => Ok(w),
            LayerEncoder::Gzip(e) => e.finish(),
            LayerEncoder::Zstd(e) => e.finish(),
            LayerEncoder::Xz(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for LayerEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LayerEncoder::Plain(w) => w.write(buf),
            LayerEncoder::Gzip(e) => e.write(buf),
            LayerEncoder::Zstd(e) => e.write(buf),
            LayerEncoder::Xz(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LayerEncoder::Plain(w) => w.flush(),
            LayerEncoder::Gzip(e) => e.flush(),
            LayerEncoder::Zstd(e) => e.flush(),
            LayerEncoder::Xz(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn encode(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut enc = LayerEncoder::new(c, Vec::new()).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn decode(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match c {
            Compression::None => out.extend_from_slice(data),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(data)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Xz => {
                liblzma::read::XzDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn every_codec_round_trips_and_is_labelled_by_its_magic() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 253).to_le_bytes())
            .collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Xz,
        ] {
            let packed = encode(c, &data);
            if c != Compression::None {
                assert!(packed.len() < data.len() / 4, "{c} did not compress");
            }
            assert_eq!(Compression::sniff(&packed), c);
            assert_eq!(decode(c, &packed), data, "{c}");
        }
    }

    #[test]
    fn output_is_reproducible() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i * 7).to_be_bytes()).collect();
        for c in [Compression::Gzip, Compression::Zstd, Compression::Xz] {
            assert_eq!(encode(c, &data), encode(c, &data), "{c}");
        }
        // gzip: no file name, mtime 0 (bytes 4..8 of the header).
        let gz = encode(Compression::Gzip, b"x");
        assert_eq!(&gz[3..8], &[0, 0, 0, 0, 0]);
    }
}
