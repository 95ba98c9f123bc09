//! The ELF+tar polyglot: an executable that is also a tar archive `docker load` and
//! `podman load` accept.
//!
//! The file starts with a 512-byte ustar header whose name field holds the 64-byte ELF
//! header, so the kernel sees an ELF file and tar readers see an archive. The ELF image sits
//! `A` bytes further into the file, `A` being the largest `p_align` of its LOAD segments
//! (4 KiB on x86_64, 64 KiB on aarch64), with every file offset shifted by `A` (see
//! `crate::attach`), so `p_offset % p_align == p_vaddr % p_align` still holds on 4K, 16K and
//! 64K page kernels and the loaded memory image is unchanged. The first tar entry's data runs
//! exactly to the payload tar, so a tar reader sees entry 1, then the payload's entries, then
//! end-of-archive. The runtime finds its payload through the slot (or a linked symbol), never
//! through these offsets.

use crate::elf::ElfLayout;

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}\0", value, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

fn checksum(block: &[u8; 512]) -> u64 {
    block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                b' ' as u64
            } else {
                *b as u64
            }
        })
        .sum()
}

/// Builds the 512-byte ustar header whose name field starts with `elf_header`, for an entry
/// of `size` bytes.
pub fn tar_header(elf_header: &[u8], size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..64].copy_from_slice(&elf_header[..64]);
    octal(&mut h[100..108], 0o755);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum = checksum(&h);
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// True when `data` starts with a tar header that holds an ELF header.
pub fn is_polyglot(data: &[u8]) -> bool {
    data.len() >= 512 && data.starts_with(b"\x7fELF") && &data[257..262] == b"ustar"
}

/// The result of checking a file as a polyglot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolyglotCheck {
    /// Starts with a ustar header holding the ELF header.
    pub tar_header: bool,
    /// The header checksum is right.
    pub checksum_ok: bool,
    /// The first entry ends exactly where the payload starts.
    pub first_entry_reaches_payload: bool,
    /// Every LOAD segment satisfies `p_offset % p_align == p_vaddr % p_align`.
    pub load_segments_aligned: bool,
}

impl PolyglotCheck {
    /// All checks pass.
    pub fn valid(&self) -> bool {
        self.tar_header
            && self.checksum_ok
            && self.first_entry_reaches_payload
            && self.load_segments_aligned
    }
}

/// Checks `data` (a whole file, whose ELF `layout` the caller has read) as a polyglot.
pub fn verify(data: &[u8], layout: &ElfLayout) -> PolyglotCheck {
    let tar_header = is_polyglot(data);
    let mut check = PolyglotCheck {
        tar_header,
        checksum_ok: false,
        first_entry_reaches_payload: false,
        load_segments_aligned: layout.aligned,
    };
    if tar_header {
        let block: &[u8; 512] = data[..512].try_into().expect("512 bytes");
        let field = std::str::from_utf8(&block[148..154]).unwrap_or("");
        check.checksum_ok = u64::from_str_radix(field.trim(), 8).ok() == Some(checksum(block));
        let size = std::str::from_utf8(&block[124..135])
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim_matches(char::from(0)).trim(), 8).ok());
        check.first_entry_reaches_payload =
            size.map(|s| 512 + s.div_ceil(512) * 512) == Some(layout.payload_offset);
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_checksum_and_fields() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        let h = tar_header(&elf, 4096 - 512);
        assert_eq!(&h[..4], b"\x7fELF");
        assert_eq!(&h[257..263], b"ustar\0");
        let field = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(field, 8).unwrap(), checksum(&h));
        assert_eq!(std::str::from_utf8(&h[124..135]).unwrap(), "00000007000");
    }
}
