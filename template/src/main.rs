//! An oci2bin executable: the embedded image, run as a rootless container.
oci2bin_rt::main!();
