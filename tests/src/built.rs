//! Running `cargo oci2bin` the way a user does (any working directory, any options) and reading
//! what it built with `cargo oci2bin inspect`.

use crate::cargo_bin::cargo_oci2bin;
use crate::tools::run_ok;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `cargo-oci2bin oci2bin ARGS...` run in `cwd`, as cargo would invoke the subcommand; returns
/// its output, whether or not it succeeded.
pub fn oci2bin_in(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(cargo_oci2bin());
    cmd.current_dir(cwd).arg("oci2bin").args(args);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Panics with the command's stderr unless `out` is a success.
pub fn assert_built(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "cargo oci2bin ({what}) failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cargo oci2bin inspect FILE --json`, parsed (panics unless it succeeds).
pub fn inspect_json(file: &Path) -> Value {
    let out = run_ok(
        Command::new(cargo_oci2bin())
            .args(["oci2bin", "inspect", "--json"])
            .arg(file),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect --json printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `cargo oci2bin inspect FILE [--json]`, whatever its outcome.
pub fn inspect(file: &Path, json: bool) -> Output {
    let mut cmd = Command::new(cargo_oci2bin());
    cmd.args(["oci2bin", "inspect"]).arg(file);
    if json {
        cmd.arg("--json");
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `cargo oci2bin pack ROOTFS -o LAYOUT --tag TAG --arch ARCH EXTRA...` (panics unless it
/// succeeds).
pub fn pack(rootfs: &Path, layout: &Path, tag: &str, arch: &str, extra: &[&str]) {
    run_ok(
        Command::new(cargo_oci2bin())
            .args(["oci2bin", "pack"])
            .arg(rootfs)
            .arg("-o")
            .arg(layout)
            .args(["--tag", tag, "--arch", arch])
            .args(extra),
    );
}

/// A JSON array of strings as a `Vec<String>` (`None` for null or absent).
pub fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|s| s.as_str().expect("an array of strings").to_string())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_reads_arrays_and_null() {
        assert_eq!(
            strings(&json!(["a", "b"])),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(strings(&Value::Null), None);
    }
}
