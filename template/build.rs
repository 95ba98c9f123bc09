//! Embeds the image named by `OCI2BIN_IMAGE` (set by `cargo oci2bin`) into this binary.
fn main() {
    if let Err(e) = oci2bin_build::Builder::from_env().and_then(|b| b.embed()) {
        eprintln!("oci2bin: {e}");
        std::process::exit(1);
    }
}
