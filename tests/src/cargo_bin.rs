//! Building the `cargo-oci2bin` binary under test and running its build command.

use crate::file_lock::FileLock;
use crate::paths::{e2e_dir, target_dir, workspace_root};
use crate::tools::run_ok;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `cargo-oci2bin` binary of this workspace, built once per test process with
/// `cargo build -p cargo-oci2bin` (cargo makes this quick when it is up to date), or
/// `$OCI2BIN_CARGO_OCI2BIN` when set (to test an installed binary).
pub fn cargo_oci2bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("OCI2BIN_CARGO_OCI2BIN") {
            return PathBuf::from(bin);
        }
        let _lock = FileLock::acquire(&e2e_dir().join("locks/cargo-build.lock"))
            .expect("cannot lock the cargo build lock");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run_ok(Command::new(cargo).current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "cargo-oci2bin",
        ]));
        let bin = target_dir().join("debug/cargo-oci2bin");
        assert!(
            bin.is_file(),
            "cargo build did not produce {}",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Runs `cargo-oci2bin oci2bin --image SOURCE -o OUT EXTRA...` (as cargo would invoke the
/// subcommand) and returns its output, whether or not it succeeded.
pub fn build_binary(source: &str, out: &Path, extra_args: &[&str]) -> Output {
    let mut cmd = Command::new(cargo_oci2bin());
    cmd.current_dir(workspace_root())
        .args(["oci2bin", "--image", source, "-o"])
        .arg(out)
        .args(extra_args);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
