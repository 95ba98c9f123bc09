//! The container's identity: a random 12-hex-digit id, used as its hostname exactly like
//! docker's short container id, so programs that log or key on the hostname see something
//! familiar and distinct per run.

/// Formats the first 6 bytes of `bytes` as 12 lowercase hex digits.
pub fn id_from_bytes(bytes: [u8; 6]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random container id from the kernel's random pool (`getrandom`), falling back to
/// time and pid if that is unavailable.
pub fn random_id() -> String {
    let mut bytes = [0u8; 6];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    if n != bytes.len() as isize {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mixed = nanos ^ (u128::from(std::process::id()) << 64);
        bytes.copy_from_slice(&mixed.to_le_bytes()[..6]);
    }
    id_from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_hex_digits() {
        assert_eq!(
            id_from_bytes([0, 1, 0xab, 0xcd, 0xef, 0xff]),
            "0001abcdefff"
        );
        let id = random_id();
        assert_eq!(id.len(), 12);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(random_id(), random_id());
    }
}
