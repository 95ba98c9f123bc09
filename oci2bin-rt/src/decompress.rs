//! Streaming layer decoders, chosen by [`Compression`].
//!
//! Shared by the runtime (unpacking the embedded layers) and the build side (verifying diff_ids
//! and recompressing), so both agree on what a media type means. Decoders wrap a reader and
//! never hold a whole layer in memory.

use crate::oci::Compression;
use std::io::{self, BufRead, Read};

/// Wraps `input` in the decoder for `compression`.
///
/// gzip input may hold several members (as `pigz` and some registries write), so all are read.
///
/// ```
/// use oci2bin_rt::{decompress::decoder, oci::Compression};
/// use std::io::Read;
/// let mut out = String::new();
/// decoder(Compression::None, &b"plain"[..]).unwrap().read_to_string(&mut out).unwrap();
/// assert_eq!(out, "plain");
/// ```
///
/// A codec whose decoder was not compiled in (see the crate's `zstd`, `gzip` and `xz`
/// features) is an `Unsupported` error naming it.
pub fn decoder<'a, R: BufRead + 'a>(
    compression: Compression,
    input: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        #[cfg(feature = "gzip")]
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        #[cfg(feature = "zstd")]
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        #[cfg(feature = "xz")]
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
        #[allow(unreachable_patterns)]
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "this binary was built without the {other} decoder (oci2bin-rt feature \"{}\")",
                    other.name()
                ),
            ))
        }
    })
}
