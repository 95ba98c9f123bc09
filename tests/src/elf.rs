//! Reading the ELF header and program headers of a built executable with Python, independently
//! of the `object` crate that `cargo oci2bin` itself uses, so a shared misreading cannot hide a
//! broken binary.
//!
//! The file is read from byte 0 even when it is an ELF+tar polyglot: the tar header's name
//! field holds the ELF header there, which is exactly what the kernel reads.

use crate::tools::run_ok;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;
/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;

/// Parses a 64-bit ELF file's header and program headers, printing JSON.
const ELF_PY: &str = r#"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
if data[:4] != b"\x7fELF":
    sys.exit("not an ELF file: starts with %r" % data[:4])
if data[4] != 2:
    sys.exit("not a 64-bit ELF file (EI_CLASS %d)" % data[4])
e = "<" if data[5] == 1 else ">"
(e_type, e_machine, _version, e_entry, e_phoff, e_shoff, _flags, _ehsize,
 e_phentsize, e_phnum, _shentsize, e_shnum, _shstrndx) = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
phdrs = []
for i in range(e_phnum):
    off = e_phoff + i * e_phentsize
    if off + 56 > len(data):
        sys.exit("program header %d at %d runs past the end of the file" % (i, off))
    p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = struct.unpack_from(e + "IIQQQQQQ", data, off)
    phdrs.append(dict(type=p_type, flags=p_flags, offset=p_offset, vaddr=p_vaddr,
                      filesz=p_filesz, memsz=p_memsz, align=p_align))
print(json.dumps(dict(little_endian=(e == "<"), type=e_type, machine=e_machine, entry=e_entry,
                      phoff=e_phoff, shoff=e_shoff, shnum=e_shnum, file_size=len(data), phdrs=phdrs)))
"#;

/// One program header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub p_type: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_align`.
    pub align: u64,
}

/// What the headers of an ELF file say.
#[derive(Clone, Debug)]
pub struct ElfInfo {
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (2 = executable, 3 = shared object / PIE).
    pub e_type: u16,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_shnum`.
    pub shnum: u64,
    /// The file's size.
    pub file_size: u64,
    /// All program headers, in order.
    pub phdrs: Vec<ProgramHeader>,
}

impl ElfInfo {
    /// The `PT_LOAD` segments.
    pub fn loads(&self) -> Vec<&ProgramHeader> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect()
    }

    /// The largest `p_align` of the LOAD segments.
    pub fn max_load_align(&self) -> u64 {
        self.loads().iter().map(|p| p.align).max().unwrap_or(0)
    }

    /// LOAD segments that break what the kernel requires: `p_offset % p_align ==
    /// p_vaddr % p_align`, and file contents inside the file. Empty when the binary is fine.
    pub fn load_problems(&self) -> Vec<String> {
        self.loads()
            .iter()
            .filter_map(|p| {
                let a = p.align.max(1);
                if p.offset % a != p.vaddr % a {
                    Some(format!(
                        "LOAD at offset {:#x} vaddr {:#x}: not congruent modulo p_align {:#x}",
                        p.offset, p.vaddr, p.align
                    ))
                } else if p.offset + p.filesz > self.file_size {
                    Some(format!(
                        "LOAD at offset {:#x} with {:#x} bytes runs past the end of the file ({:#x})",
                        p.offset, p.filesz, self.file_size
                    ))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Reads `path`'s ELF headers with Python; panics with Python's message when it is not a
/// 64-bit ELF file.
pub fn read_elf(path: &Path) -> ElfInfo {
    let out = run_ok(Command::new("python3").args(["-c", ELF_PY]).arg(path));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the ELF reader prints JSON");
    let n = |v: &Value, k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("ELF reader: no {k} in {v}"))
    };
    ElfInfo {
        machine: n(&v, "machine") as u16,
        e_type: n(&v, "type") as u16,
        phoff: n(&v, "phoff"),
        shnum: n(&v, "shnum"),
        file_size: n(&v, "file_size"),
        phdrs: v["phdrs"]
            .as_array()
            .expect("phdrs")
            .iter()
            .map(|p| ProgramHeader {
                p_type: n(p, "type") as u32,
                offset: n(p, "offset"),
                vaddr: n(p, "vaddr"),
                filesz: n(p, "filesz"),
                align: n(p, "align"),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_host_executable() {
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let elf = read_elf(&sh);
        assert!(!elf.loads().is_empty());
        assert!(elf.load_problems().is_empty(), "{:?}", elf.load_problems());
        assert!(elf.max_load_align() >= 4096);
    }

    #[test]
    fn flags_incongruent_segments() {
        let elf = ElfInfo {
            machine: EM_X86_64,
            e_type: 3,
            phoff: 64,
            shnum: 0,
            file_size: 0x10000,
            phdrs: vec![ProgramHeader {
                p_type: PT_LOAD,
                offset: 0x1200,
                vaddr: 0x401000,
                filesz: 0x100,
                align: 0x1000,
            }],
        };
        assert_eq!(elf.load_problems().len(), 1);
    }
}
