//! Making the executable also a tar archive that `docker load` and `podman load` accept.
//!
//! The output starts with a 512-byte ustar header whose name field holds the 64-byte ELF
//! header, so the kernel sees an ELF file and tar readers see an archive. Everything of the
//! original ELF moves up by `A` = the largest `p_align` of its LOAD segments (4 KiB on x86_64,
//! 64 KiB on aarch64), and every file offset (`e_phoff`, `e_shoff`, each `p_offset` and
//! `sh_offset`) is shifted by `A`, so `p_offset % p_align == p_vaddr % p_align` still holds on
//! 4K, 16K and 64K page kernels and the loaded memory image is unchanged. The first tar
//! entry's data runs exactly to the embedded payload tar (page-aligned inside the ELF), so a
//! tar reader sees entry 1, then the payload's entries, then end-of-archive. The runtime finds
//! its payload through a linked symbol, so nothing in memory depends on these offsets.

use crate::mapped::Mapped;
use anyhow::{bail, ensure, Context, Result};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{elf, Endianness};
use std::io::Write;
use std::path::Path;

/// What the ELF layout of a binary says about its payload and alignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    /// `x86_64`, `aarch64`, ...
    pub arch: &'static str,
    /// File offset of the payload (the `.oci2bin` section).
    pub payload_offset: u64,
    /// Payload size.
    pub payload_len: u64,
    /// Largest `p_align` of the LOAD segments.
    pub max_align: u64,
    /// Whether every LOAD segment has `p_offset % p_align == p_vaddr % p_align`.
    pub aligned: bool,
    /// e_phoff, e_phentsize, e_phnum, e_shoff, e_shentsize, e_shnum.
    tables: (u64, u64, u64, u64, u64, u64),
    little: bool,
}

/// Parses the ELF headers of `data` (the whole file, or at least its headers and tables).
pub fn elf_layout(data: &[u8]) -> Result<ElfLayout> {
    let header = elf::FileHeader64::<Endianness>::parse(data)
        .context("not a 64-bit ELF file (oci2bin outputs are 64-bit ELF executables)")?;
    let endian = header.endian().context("unknown ELF byte order")?;
    let arch = match header.e_machine(endian) {
        elf::EM_X86_64 => "x86_64",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_RISCV => "riscv64",
        elf::EM_PPC64 => "powerpc64",
        elf::EM_S390 => "s390x",
        m => bail!("unsupported ELF machine {m}"),
    };
    let phdrs = header
        .program_headers(endian, data)
        .context("reading the ELF program headers")?;
    let mut max_align = 1;
    let mut aligned = true;
    for ph in phdrs {
        if ph.p_type(endian) == elf::PT_LOAD {
            let a = ph.p_align(endian).max(1);
            max_align = max_align.max(a);
            aligned &= ph.p_offset(endian) % a == ph.p_vaddr(endian) % a;
        }
    }
    let sections = header
        .sections(endian, data)
        .context("reading the ELF section headers")?;
    let (_, section) = sections
        .section_by_name(endian, oci2bin_rt::PAYLOAD_SECTION.as_bytes())
        .context("the ELF file has no .oci2bin section: it was not built by oci2bin")?;
    Ok(ElfLayout {
        arch,
        payload_offset: section.sh_offset(endian),
        payload_len: section.sh_size(endian),
        max_align,
        aligned,
        tables: (
            header.e_phoff(endian),
            header.e_phentsize(endian) as u64,
            header.e_phnum(endian) as u64,
            header.e_shoff(endian),
            header.e_shentsize(endian) as u64,
            header.e_shnum(endian) as u64,
        ),
        little: endian == Endianness::Little,
    })
}

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
fn tar_header(elf_header: &[u8], size: u64) -> [u8; 512] {
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

fn put_u64(buf: &mut [u8], at: usize, v: u64, little: bool) {
    let b = if little {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    };
    buf[at..at + 8].copy_from_slice(&b);
}

fn get_u64(buf: &[u8], at: usize, little: bool) -> u64 {
    let b: [u8; 8] = buf[at..at + 8].try_into().expect("8 bytes");
    if little {
        u64::from_le_bytes(b)
    } else {
        u64::from_be_bytes(b)
    }
}

/// Rewrites the ELF `input` into the polyglot `output`, streaming the body and patching the
/// shifted offsets in place.
pub fn make_polyglot(input: &Path, output: &Path) -> Result<ElfLayout> {
    use std::os::unix::fs::FileExt;
    let data = Mapped::open(input)?;
    ensure!(
        !is_polyglot(&data),
        "{} is already an oci2bin polyglot",
        input.display()
    );
    let layout = elf_layout(&data).with_context(|| format!("parsing {}", input.display()))?;
    ensure!(
        layout.aligned,
        "{}: LOAD segments are not congruent to their alignment",
        input.display()
    );
    let shift = layout.max_align.max(4096);
    ensure!(
        layout.payload_offset % 512 == 0,
        "the payload in {} is at offset {}, not 512-aligned",
        input.display(),
        layout.payload_offset
    );
    let (phoff, phentsize, phnum, shoff, shentsize, shnum) = layout.tables;
    let little = layout.little;
    // Program headers: p_offset at +8; section headers: sh_offset at +24 (the null section
    // keeps 0). Collected as (offset in the original file, new value).
    let mut patches = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phentsize + 8;
        patches.push((at, get_u64(&data, at as usize, little) + shift));
    }
    for i in 1..shnum {
        let at = shoff + i * shentsize + 24;
        patches.push((at, get_u64(&data, at as usize, little) + shift));
    }
    let mut elf_header = data[..64].to_vec();
    put_u64(&mut elf_header, 0x20, phoff + shift, little);
    put_u64(&mut elf_header, 0x28, shoff + shift, little);
    let header = tar_header(&elf_header, layout.payload_offset + shift - 512);

    let mut out =
        std::fs::File::create(output).with_context(|| format!("creating {}", output.display()))?;
    let werr = || format!("writing {}", output.display());
    out.write_all(&header).with_context(werr)?;
    out.write_all(&vec![0u8; (shift - 512) as usize])
        .with_context(werr)?;
    out.write_all(&data).with_context(werr)?;
    for (at, value) in patches {
        let mut b = [0u8; 8];
        put_u64(&mut b, 0, value, little);
        out.write_all_at(&b, shift + at).with_context(werr)?;
    }
    out.sync_all().with_context(werr)?;
    drop(out);
    drop(data);
    // Check what was written, as `inspect` would.
    let written = Mapped::open(output)?;
    let check = verify(&written)?;
    ensure!(
        check.valid(),
        "the polyglot written to {} does not verify: {check:?}",
        output.display()
    );
    elf_layout(&written)
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

/// Checks `data` (a whole file) as a polyglot.
pub fn verify(data: &[u8]) -> Result<PolyglotCheck> {
    let layout = elf_layout(data)?;
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
    Ok(check)
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
