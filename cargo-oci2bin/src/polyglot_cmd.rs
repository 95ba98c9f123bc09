//! `cargo oci2bin polyglot FILE`: make an oci2bin executable built some other way (a crate of
//! your own with a linked payload, or a `--no-polyglot` build) the ELF+tar polyglot, so that
//! `docker load` and `podman load` accept it too.
//!
//! The same transformation `cargo oci2bin` applies when it attaches a payload (see
//! [`crate::polyglot`]): a tar header in front, the ELF image moved back by its largest
//! segment alignment with every file offset adjusted, the first tar entry running exactly to
//! the payload. The loaded memory image does not change, and neither does the payload.

use crate::elf::{elf_layout, PayloadKind};
use anyhow::{bail, ensure, Context, Result};
use oci2bin_rt::payload::slot::{self, Slot};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The polyglot form of the oci2bin executable `data`.
pub fn make(data: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        !crate::polyglot::is_polyglot(data),
        "it is already an ELF+tar polyglot"
    );
    let layout = elf_layout(data)?;
    ensure!(
        layout.payload_len > 0,
        "it carries no payload (a bare runtime, or not an oci2bin executable)"
    );
    ensure!(
        layout.aligned,
        "its LOAD segments are not congruent to their alignment"
    );
    let shift = layout.max_align.max(4096);
    let payload_offset = layout.payload_offset + shift;
    if payload_offset % 512 != 0 {
        bail!(
            "its payload starts at byte {}, not on a 512-byte tar block; it cannot be made a polyglot (link the payload with oci2bin-build, whose section is page-aligned)",
            layout.payload_offset
        );
    }
    let mut elf = data.to_vec();
    for at in layout.offset_fields() {
        let v = layout.get_u64(&elf, at);
        layout.put_u64(&mut elf, at, v + shift);
    }
    if layout.kind == PayloadKind::Attached {
        let at = layout
            .slot_offset
            .context("an attached payload without a slot")? as usize;
        let moved = Slot {
            offset: payload_offset,
            len: layout.payload_len,
        };
        elf[at..at + slot::LEN].copy_from_slice(&moved.encode());
    }
    let mut out = Vec::with_capacity(elf.len() + shift as usize);
    out.extend_from_slice(&crate::polyglot::tar_header(
        &elf[..64],
        payload_offset - 512,
    ));
    out.resize(shift as usize, 0);
    out.extend_from_slice(&elf);
    Ok(out)
}

/// Rewrites `file` (or writes `output`) as a polyglot, checked before it replaces anything.
pub fn run(file: &Path, output: Option<&Path>) -> Result<()> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let poly = make(&data).with_context(|| format!("{}", file.display()))?;
    let dest = output.unwrap_or(file);
    let inputs = if output.is_some() {
        vec![crate::output::Input {
            what: "the executable",
            path: file.to_path_buf(),
        }]
    } else {
        Vec::new()
    };
    let out = crate::output::check(dest, &inputs, false)?;
    let layout = elf_layout(&poly)?;
    let check = crate::polyglot::verify(&poly, &layout);
    ensure!(
        check.valid(),
        "the result is not a valid polyglot: {check:?}"
    );
    let mut tmp = tempfile::Builder::new()
        .prefix(".oci2bin-")
        .tempfile_in(&out.dir)
        .with_context(|| format!("creating a temporary file in {}", out.dir.display()))?;
    let _registered = crate::interrupt::register(tmp.path().to_path_buf());
    tmp.write_all(&poly)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&out.path)
        .with_context(|| format!("writing {}", dest.display()))?;
    eprintln!(
        "Wrote {} ({:.1} MB): an executable and a tar archive for docker load / podman load",
        dest.display(),
        poly.len() as f64 / 1e6
    );
    Ok(())
}
