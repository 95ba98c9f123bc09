//! oci2bin-build
