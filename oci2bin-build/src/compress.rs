//! Layer recompression settings and streaming encoders.
//!
//! Images arrive gzip-compressed; the runtime decodes zstd several times faster, and xz is
//! smaller, so the embedded layers are re-encoded as the user chooses (`--compress`).

use crate::error::{BuildError, Result};
use oci2bin_rt::oci::Compression;
use std::fmt;
use std::io::{self, Write};

/// A codec and level, as given to `--compress` (`zstd`, `zstd:19`, `xz:6`, `gzip:9`, `none`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompressSpec {
    /// The codec.
    pub codec: Compression,
    /// The level (0 for `none`).
    pub level: i32,
}

impl Default for CompressSpec {
    fn default() -> Self {
        CompressSpec {
            codec: Compression::Zstd,
            level: 3,
        }
    }
}

impl CompressSpec {
    /// Parses `codec[:level]`.
    ///
    /// ```
    /// use oci2bin_build::CompressSpec;
    /// assert_eq!(CompressSpec::parse("zstd:19").unwrap().level, 19);
    /// assert_eq!(CompressSpec::parse("gzip").unwrap().to_string(), "gzip:6");
    /// assert!(CompressSpec::parse("zstd:99").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        let (codec, default, range) = match name {
            "zstd" => (Compression::Zstd, 3, 1..=22),
            "xz" => (Compression::Xz, 6, 0..=9),
            "gzip" => (Compression::Gzip, 6, 1..=9),
            "none" => (Compression::None, 0, 0..=0),
            _ => {
                return Err(BuildError::Config(format!(
                    "unknown compression {s:?}: use zstd[:1-22], xz[:0-9], gzip[:1-9] or none"
                )))
            }
        };
        let level = match level {
            None => default,
            Some(l) => l
                .parse::<i32>()
                .ok()
                .filter(|l| range.contains(l))
                .ok_or_else(|| {
                    BuildError::Config(format!(
                        "compression level {l:?} for {name} is not in {}..={}",
                        range.start(),
                        range.end()
                    ))
                })?,
        };
        Ok(CompressSpec { codec, level })
    }

    /// Wraps `out` in this spec's encoder.
    ///
    /// The output depends on the input and the spec only, never on the host, so layers (and
    /// `pack`'s blobs) are byte-identical on any machine: gzip carries no file name and a zero
    /// mtime; zstd always runs with worker threads (at least one), because its multi-threaded
    /// frames are the same for any number of workers but differ from single-threaded ones,
    /// and it carries a content checksum.
    pub fn encoder<W: Write>(&self, out: W) -> io::Result<Encoder<W>> {
        Ok(match self.codec {
            Compression::None => Encoder::None(out),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(self.level as u32),
            )),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, self.level)?;
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                enc.multithread(threads.max(1))?;
                enc.include_checksum(true)?;
                Encoder::Zstd(enc)
            }
            Compression::Xz => Encoder::Xz(liblzma::write::XzEncoder::new(out, self.level as u32)),
        })
    }
}

impl fmt::Display for CompressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.codec {
            Compression::None => f.write_str("none"),
            c => write!(f, "{}:{}", c.name(), self.level),
        }
    }
}

/// A streaming encoder that must be finished to flush its trailer.
pub enum Encoder<W: Write> {
    /// Pass-through.
    None(W),
    /// gzip.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// xz.
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci2bin_rt::decompress::decoder;
    use std::io::Read;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for spec in ["none", "gzip:1", "zstd:3", "xz:0"] {
            let spec = CompressSpec::parse(spec).unwrap();
            let mut enc = spec.encoder(Vec::new()).unwrap();
            enc.write_all(&data).unwrap();
            let packed = enc.finish().unwrap();
            assert_eq!(Compression::sniff(&packed), spec.codec, "{spec}");
            let mut out = Vec::new();
            decoder(spec.codec, &packed[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "{spec}");
            if spec.codec != Compression::None {
                assert!(packed.len() < data.len() / 4, "{spec} did not compress");
            }
        }
    }

    fn encode(spec: &str, data: &[u8]) -> Vec<u8> {
        let mut enc = CompressSpec::parse(spec)
            .unwrap()
            .encoder(Vec::new())
            .unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn output_is_reproducible() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| (i * 7).to_be_bytes()).collect();
        for spec in ["gzip", "zstd", "xz"] {
            assert_eq!(encode(spec, &data), encode(spec, &data), "{spec}");
        }
        // gzip: no file name, mtime 0 (bytes 4..8 of the header).
        let gz = encode("gzip", b"x");
        assert_eq!(&gz[3..8], &[0, 0, 0, 0, 0]);
    }
}
