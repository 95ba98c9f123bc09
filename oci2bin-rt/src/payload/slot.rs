//! The *slot*: a 32-byte record linked into the runtime that tells it where, in its own
//! file, the payload attached after linking lies.
//!
//! `cargo oci2bin` links the runtime once per target and codec and then only appends each
//! image to a copy of it, which costs about as much as copying the payload (linking a payload
//! costs a relink and a linker that holds the whole payload in memory). The runtime cannot
//! learn the appended bytes' position from a symbol, so the builder patches this record, found
//! through its ELF section (section headers survive `strip`), and the runtime reads it back
//! and maps that range of `/proc/self/exe`. Both sides use this module, so the format is
//! defined once.
//!
//! Layout, little-endian whatever the target: 16 bytes of [`MAGIC`], the payload's file offset
//! (`u64`), its length (`u64`). A length of 0 means no payload is attached: the bare runtime.

/// Name of the ELF section holding the slot.
pub const SECTION: &str = ".oci2bin.slot";
/// Size of the record.
pub const LEN: usize = 32;
/// The record's first 16 bytes, so a patcher can tell the slot from anything else.
pub const MAGIC: [u8; 16] = *b"oci2bin slot v1\0";

/// Where an attached payload lies in the executable file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// File offset of the payload's first byte.
    pub offset: u64,
    /// Payload length in bytes; 0 when nothing is attached.
    pub len: u64,
}

/// The bytes of an empty slot, as linked into the runtime.
pub const EMPTY: [u8; LEN] = Slot { offset: 0, len: 0 }.encode();

impl Slot {
    /// The record's bytes.
    pub const fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        let mut i = 0;
        while i < 16 {
            out[i] = MAGIC[i];
            i += 1;
        }
        let (o, l) = (self.offset.to_le_bytes(), self.len.to_le_bytes());
        let mut j = 0;
        while j < 8 {
            out[16 + j] = o[j];
            out[24 + j] = l[j];
            j += 1;
        }
        out
    }

    /// Reads a record; `None` when `bytes` does not start with [`MAGIC`] or is too short.
    pub fn decode(bytes: &[u8]) -> Option<Slot> {
        if bytes.len() < LEN || bytes[..16] != MAGIC {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Some(Slot {
            offset: word(16),
            len: word(24),
        })
    }

    /// Whether a payload is attached.
    pub fn is_attached(&self) -> bool {
        self.len > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_bytes() {
        let s = Slot {
            offset: 0x1234_5000,
            len: 987_654_321,
        };
        assert_eq!(Slot::decode(&s.encode()), Some(s));
        assert_eq!(Slot::decode(&EMPTY), Some(Slot { offset: 0, len: 0 }));
        assert!(!Slot::decode(&EMPTY).unwrap().is_attached());
        assert_eq!(Slot::decode(&[0u8; LEN]), None);
        assert_eq!(Slot::decode(&EMPTY[..LEN - 1]), None);
    }
}
