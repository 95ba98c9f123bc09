//! Attaching a payload to the prebuilt runtime: the output is the runtime's ELF image,
//! optionally behind the polyglot's tar header (see [`crate::polyglot`]), then the payload tar
//! at a 512-byte aligned offset, with the runtime's slot patched to name that offset and length.
//!
//! Nothing is linked per image: the runtime is compiled and linked once per target and codec,
//! and attaching costs about what copying the payload costs (blobs are copied by the kernel,
//! see `PayloadPlan::write_to`), whatever the image's size, in constant memory.

use crate::elf::{elf_layout, ElfLayout, PayloadKind};
use anyhow::{ensure, Context, Result};
use oci2bin_build::payload::PayloadPlan;
use oci2bin_rt::payload::slot::Slot;
use std::io::{Seek, Write};

/// Where the payload starts in the file: on a tar block boundary, as the polyglot's first
/// entry must end there. The runtime maps from the page holding the first byte, so page
/// alignment would only add padding to every binary.
const PAYLOAD_ALIGN: u64 = 512;

/// The output's layout, before a byte is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How far the ELF image moves into the file (0 without the polyglot header).
    pub shift: u64,
    /// File offset of the payload.
    pub payload_offset: u64,
    /// Payload length.
    pub payload_len: u64,
}

/// Checks that `runtime` is a bare oci2bin runtime and lays out the output.
pub fn plan(runtime: &[u8], payload_len: u64, polyglot: bool) -> Result<(ElfLayout, Plan)> {
    let layout = elf_layout(runtime)?;
    ensure!(
        layout.kind == PayloadKind::Attached && layout.slot_offset.is_some(),
        "the runtime has a linked payload, not a slot to attach one to"
    );
    ensure!(
        layout.payload_len == 0,
        "the runtime already has a payload attached"
    );
    ensure!(
        layout.aligned,
        "the runtime's LOAD segments are not congruent to their alignment"
    );
    let shift = if polyglot {
        layout.max_align.max(4096)
    } else {
        0
    };
    let payload_offset = (shift + runtime.len() as u64).next_multiple_of(PAYLOAD_ALIGN);
    Ok((
        layout,
        Plan {
            shift,
            payload_offset,
            payload_len,
        },
    ))
}

/// The bytes before the payload: tar header and padding (polyglot), the runtime with its file
/// offsets shifted and its slot filled, padding to the payload.
pub fn head(runtime: &[u8], layout: &ElfLayout, plan: &Plan) -> Vec<u8> {
    let mut elf = runtime.to_vec();
    if plan.shift > 0 {
        for at in layout.offset_fields() {
            let v = layout.get_u64(&elf, at);
            layout.put_u64(&mut elf, at, v + plan.shift);
        }
    }
    let slot_at = layout.slot_offset.expect("checked by plan") as usize;
    let slot = Slot {
        offset: plan.payload_offset,
        len: plan.payload_len,
    };
    elf[slot_at..slot_at + oci2bin_rt::payload::slot::LEN].copy_from_slice(&slot.encode());

    let mut out = Vec::with_capacity(plan.payload_offset as usize);
    if plan.shift > 0 {
        out.extend_from_slice(&crate::polyglot::tar_header(
            &elf[..64],
            plan.payload_offset - 512,
        ));
        out.resize(plan.shift as usize, 0);
    }
    out.extend_from_slice(&elf);
    out.resize(plan.payload_offset as usize, 0);
    out
}

/// Writes `runtime` with `payload` attached into `out` (an empty file).
pub fn attach(
    runtime: &[u8],
    payload: &PayloadPlan,
    polyglot: bool,
    out: &mut std::fs::File,
) -> Result<Plan> {
    let (layout, plan) = plan(runtime, payload.len(), polyglot)?;
    reserve(out, plan.payload_offset + plan.payload_len)?;
    out.write_all(&head(runtime, &layout, &plan))?;
    payload.write_to(out)?;
    let end = out.stream_position()?;
    ensure!(
        end == plan.payload_offset + plan.payload_len,
        "the payload written is {} bytes, its plan said {}",
        end - plan.payload_offset,
        plan.payload_len
    );
    // Not synced, like the output of cargo, a linker or cp: it is rebuilt from cached inputs
    // in a fraction of a second, and a copy cut short by a crash reads back as zeros where
    // data is missing, which the runtime's checks refuse with a clear error.
    Ok(plan)
}

/// Allocates the whole output before writing it: a full disk is reported before a byte is
/// written, and ext4 writes into allocated blocks about 25% faster than it allocates them one
/// page at a time. File systems without `fallocate` are written as they are.
fn reserve(out: &std::fs::File, len: u64) -> Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    match fallocate(out, FallocateFlags::empty(), 0, len as i64) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSPC) => anyhow::bail!(
            "not enough space for the {len}-byte output (No space left on device): free some space or write it elsewhere with -o"
        ),
        Err(_) => Ok(()),
    }
}

/// Reads the written file `path` back as `inspect` and the runtime would: the slot names
/// `plan`'s payload, the payload parses, and the polyglot (when written) verifies.
pub fn check(path: &std::path::Path, plan: &Plan, polyglot: bool) -> Result<()> {
    let data = crate::mapped::Mapped::open(path)?;
    let layout = elf_layout(&data)?;
    ensure!(
        layout.kind == PayloadKind::Attached
            && (layout.payload_offset, layout.payload_len)
                == (plan.payload_offset, plan.payload_len),
        "its slot names {} bytes at {}, not the {} bytes written at {}",
        layout.payload_len,
        layout.payload_offset,
        plan.payload_len,
        plan.payload_offset
    );
    let range = plan.payload_offset as usize..(plan.payload_offset + plan.payload_len) as usize;
    let payload = data
        .get(range)
        .context("the file is shorter than its payload")?;
    oci2bin_rt::payload::Payload::parse(payload).context("its payload does not parse")?;
    if polyglot {
        let check = crate::polyglot::verify(&data, &layout);
        ensure!(check.valid(), "it is not a valid polyglot: {check:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polyglot::verify;

    /// A minimal little-endian x86_64 ELF with one LOAD segment, an `.oci2bin.slot` section
    /// holding an empty slot, and a section name table.
    fn fake_runtime() -> Vec<u8> {
        use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, Writer};
        let mut buf = Vec::new();
        let mut w = Writer::new(object::Endianness::Little, true, &mut buf);
        w.reserve_file_header();
        w.reserve_program_headers(1);
        let slot_name = w.add_section_name(oci2bin_rt::payload::slot::SECTION.as_bytes());
        let _null = w.reserve_null_section_index();
        let _slot_index = w.reserve_section_index();
        let _shstrtab = w.reserve_shstrtab_section_index();
        let slot_off = w.reserve(oci2bin_rt::payload::slot::LEN, 16);
        w.reserve_shstrtab();
        w.reserve_section_headers();
        w.write_file_header(&FileHeader {
            os_abi: 0,
            abi_version: 0,
            e_type: object::elf::ET_DYN,
            e_machine: object::elf::EM_X86_64,
            e_entry: 0,
            e_flags: 0,
        })
        .unwrap();
        w.write_program_header(&ProgramHeader {
            p_type: object::elf::PT_LOAD,
            p_flags: object::elf::PF_R,
            p_offset: 0,
            p_vaddr: 0,
            p_paddr: 0,
            p_filesz: 64,
            p_memsz: 64,
            p_align: 4096,
        });
        w.pad_until(slot_off);
        w.write(&oci2bin_rt::payload::slot::EMPTY);
        w.write_shstrtab();
        w.write_null_section_header();
        w.write_section_header(&SectionHeader {
            name: Some(slot_name),
            sh_type: object::elf::SHT_PROGBITS,
            sh_flags: object::elf::SHF_ALLOC as u64,
            sh_addr: 0,
            sh_offset: slot_off as u64,
            sh_size: oci2bin_rt::payload::slot::LEN as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 16,
            sh_entsize: 0,
        });
        w.write_shstrtab_section_header();
        buf
    }

    #[test]
    fn slot_names_the_payload_with_and_without_the_polyglot_header() {
        let rt = fake_runtime();
        for polyglot in [false, true] {
            let (layout, plan) = plan(&rt, 3000, polyglot).unwrap();
            assert_eq!(plan.shift, if polyglot { 4096 } else { 0 });
            assert_eq!(plan.payload_offset % PAYLOAD_ALIGN, 0);
            let mut file = head(&rt, &layout, &plan);
            assert_eq!(file.len() as u64, plan.payload_offset);
            file.extend(std::iter::repeat_n(7u8, 3000));
            let after = elf_layout(&file).unwrap();
            assert_eq!(after.kind, PayloadKind::Attached);
            assert_eq!(
                (after.payload_offset, after.payload_len),
                (plan.payload_offset, 3000)
            );
            assert_eq!(
                after.slot_offset,
                Some(layout.slot_offset.unwrap() + plan.shift)
            );
            let check = verify(&file, &after);
            assert_eq!(check.valid(), polyglot, "{check:?}");
            // A second attach is refused.
            assert!(super::plan(&file, 1, polyglot).is_err());
        }
    }
}
