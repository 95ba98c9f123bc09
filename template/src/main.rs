//! The oci2bin runtime: runs the image `cargo oci2bin` attached to a copy of this binary as a
//! rootless container.
fn main() {
    oci2bin_rt::run::main_attached()
}
