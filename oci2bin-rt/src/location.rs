//! Where oci2bin keeps its caches on a machine: one root for every oci2bin tool, so that
//! one variable moves them all and one command (`cargo oci2bin cache`) finds them all.
//!
//! The runtime keeps unpacked images and per-run directories under it (`images/`, `runs/`);
//! the build side keeps verified layers (`build/`), compiled runtimes (`runtimes/`), cargo's
//! target directory (`target/`) and the generated crates (`work/`).

use std::path::PathBuf;

/// The cache root: `$OCI2BIN_CACHE_DIR`, else `$XDG_CACHE_HOME/oci2bin`, else
/// `~/.cache/oci2bin`; `None` when none of them is set.
///
/// ```
/// # // SAFETY: a doc test runs alone in its process.
/// # unsafe { std::env::set_var("OCI2BIN_CACHE_DIR", "/var/cache/mine") };
/// assert_eq!(oci2bin_rt::location::cache_root().unwrap(), std::path::Path::new("/var/cache/mine"));
/// ```
pub fn cache_root() -> Option<PathBuf> {
    let var = |k| std::env::var_os(k).filter(|v: &std::ffi::OsString| !v.is_empty());
    if let Some(d) = var("OCI2BIN_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("oci2bin"));
    }
    var("HOME").map(|h| PathBuf::from(h).join(".cache/oci2bin"))
}
