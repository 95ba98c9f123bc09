//! Prints a banner, then runs the embedded image exactly as a `cargo oci2bin` binary would.
fn main() {
    let payload = oci2bin_rt::payload!();
    if std::env::var_os("BANNER_QUIET").is_none() {
        eprintln!(
            "*** banner: {} (payload {} KiB), built with oci2bin ***",
            env!("BANNER_IMAGE_NAME"),
            payload.len() / 1024
        );
    }
    oci2bin_rt::run::main(payload)
}
