//! What the ELF headers of an oci2bin executable say: architecture, alignment, and where its
//! payload is.
//!
//! A payload is either *linked* (the `.oci2bin` section a build script's object file put
//! there) or *attached* (appended after linking, at the offset the `.oci2bin.slot` record
//! names; see `oci2bin_rt::payload::slot`). Section headers survive `strip`, so both are found
//! in stripped binaries of any architecture.

use anyhow::{bail, Context, Result};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{elf, Endianness};
use oci2bin_rt::payload::slot::{self, Slot};

/// How the payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// In the `.oci2bin` section, linked in.
    Linked,
    /// After the ELF image, named by the slot.
    Attached,
}

/// What the ELF layout of a binary says about its payload and alignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    /// `x86_64`, `aarch64`, ...
    pub arch: &'static str,
    /// File offset of the payload; 0 for a bare runtime.
    pub payload_offset: u64,
    /// Payload size; 0 for a bare runtime (no payload attached yet).
    pub payload_len: u64,
    /// How the payload is stored.
    pub kind: PayloadKind,
    /// File offset of the slot record, when there is one.
    pub slot_offset: Option<u64>,
    /// Largest `p_align` of the LOAD segments.
    pub max_align: u64,
    /// Whether every LOAD segment has `p_offset % p_align == p_vaddr % p_align`.
    pub aligned: bool,
    /// Where the file offsets to shift are (see [`ElfLayout::offset_fields`]).
    pub tables: Tables,
    /// Little-endian.
    pub little: bool,
}

/// The ELF header fields that locate the program and section header tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phentsize`.
    pub phentsize: u64,
    /// `e_phnum`.
    pub phnum: u64,
    /// `e_shoff`.
    pub shoff: u64,
    /// `e_shentsize`.
    pub shentsize: u64,
    /// `e_shnum`.
    pub shnum: u64,
}

/// Parses the ELF headers of `data` (the whole file).
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
    let slot_section = sections.section_by_name(endian, slot::SECTION.as_bytes());
    let (slot_offset, slot) = match slot_section {
        Some((_, s)) => {
            let at = s.sh_offset(endian);
            let bytes = data
                .get(at as usize..)
                .filter(|_| s.sh_size(endian) >= slot::LEN as u64)
                .and_then(Slot::decode)
                .context("the .oci2bin.slot section is damaged")?;
            (Some(at), Some(bytes))
        }
        None => (None, None),
    };
    let linked = sections.section_by_name(endian, oci2bin_rt::PAYLOAD_SECTION.as_bytes());
    let (kind, payload_offset, payload_len) = match (slot, linked) {
        (Some(s), _) if s.is_attached() => (PayloadKind::Attached, s.offset, s.len),
        (_, Some((_, section))) => (
            PayloadKind::Linked,
            section.sh_offset(endian),
            section.sh_size(endian),
        ),
        (Some(_), None) => (PayloadKind::Attached, 0, 0),
        (None, None) => bail!(
            "the ELF file has no .oci2bin section (nor an .oci2bin.slot): it was not built by oci2bin"
        ),
    };
    Ok(ElfLayout {
        arch,
        payload_offset,
        payload_len,
        kind,
        slot_offset,
        max_align,
        aligned,
        tables: Tables {
            phoff: header.e_phoff(endian),
            phentsize: header.e_phentsize(endian) as u64,
            phnum: header.e_phnum(endian) as u64,
            shoff: header.e_shoff(endian),
            shentsize: header.e_shentsize(endian) as u64,
            shnum: header.e_shnum(endian) as u64,
        },
        little: endian == Endianness::Little,
    })
}

impl ElfLayout {
    /// File offsets of every 8-byte field that holds a file offset: `e_phoff`, `e_shoff`,
    /// each `p_offset` and each `sh_offset` but the null section's. Moving the ELF image
    /// within a file means adding the move to each.
    pub fn offset_fields(&self) -> Vec<u64> {
        let t = &self.tables;
        let mut at = vec![0x20, 0x28];
        at.extend((0..t.phnum).map(|i| t.phoff + i * t.phentsize + 8));
        at.extend((1..t.shnum).map(|i| t.shoff + i * t.shentsize + 24));
        at
    }

    /// Reads the 8-byte field at `at` of `data`.
    pub fn get_u64(&self, data: &[u8], at: u64) -> u64 {
        let b: [u8; 8] = data[at as usize..at as usize + 8]
            .try_into()
            .expect("8 bytes");
        if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        }
    }

    /// Writes the 8-byte field at `at` of `data`.
    pub fn put_u64(&self, data: &mut [u8], at: u64, v: u64) {
        let b = if self.little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        data[at as usize..at as usize + 8].copy_from_slice(&b);
    }
}
