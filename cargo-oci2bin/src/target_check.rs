//! Refusing targets and platforms that build a binary which cannot do its job.
//!
//! A `*-gnu` target links the runtime against the build machine's glibc: the output runs only
//! where a compatible glibc is installed, which is what a single static file is meant to
//! avoid. An image for another architecture than the target's runs nothing: its programs fail
//! with "Exec format error" inside the container, long after the build said it succeeded.

use anyhow::{bail, Result};
use oci2bin_rt::oci::Platform;

/// Checks `target` (and `platform`, when the user chose one) before any work is done.
pub fn check(target: &str, platform: Option<&Platform>, allow_dynamic: bool) -> Result<()> {
    if !target.contains("-linux-") {
        bail!(
            "--target {target}: the runtime needs Linux (namespaces, mounts); use a *-unknown-linux-musl target such as {}-unknown-linux-musl",
            std::env::consts::ARCH
        );
    }
    let env = target.rsplit('-').next().unwrap_or("");
    if !env.starts_with("musl") && !allow_dynamic {
        let arch = target.split('-').next().unwrap_or("");
        bail!(
            "--target {target} links the runtime dynamically against glibc: the output would run only on machines with a compatible glibc, not on any Linux. \
             Use {arch}-unknown-linux-musl (static; the default for this machine is {}-unknown-linux-musl), or pass --allow-dynamic to build it anyway",
            std::env::consts::ARCH
        );
    }
    if let Some(p) = platform {
        if p.os != "linux" {
            bail!("--platform {p}: oci2bin runs Linux images only (the image's os must be linux)");
        }
        let wanted = Platform::for_target(target)?;
        if p.architecture != wanted.architecture {
            bail!(
                "--platform {p} selects an image for {} machines, but --target {target} builds a runtime for {}: \
                 the image's programs would fail with \"Exec format error\". Choose a matching --target (for example {}) or leave --platform out",
                p.architecture,
                wanted.architecture,
                suggested_target(&p.architecture)
            );
        }
    }
    Ok(())
}

/// The musl target for an OCI architecture name, for messages.
fn suggested_target(architecture: &str) -> String {
    let arch = match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "armv7",
        "386" => "i686",
        "riscv64" => "riscv64gc",
        "ppc64le" => "powerpc64le",
        other => other,
    };
    format!("{arch}-unknown-linux-musl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_targets_need_allow_dynamic() {
        let err = check("x86_64-unknown-linux-gnu", None, false).unwrap_err();
        assert!(err.to_string().contains("--allow-dynamic"), "{err}");
        assert!(check("x86_64-unknown-linux-gnu", None, true).is_ok());
        assert!(check("aarch64-unknown-linux-musl", None, false).is_ok());
        assert!(check("x86_64-apple-darwin", None, true).is_err());
    }

    #[test]
    fn platforms_must_match_the_target_architecture() {
        let arm = Platform::parse("linux/arm64").unwrap();
        let err = check("x86_64-unknown-linux-musl", Some(&arm), false).unwrap_err();
        assert!(
            err.to_string().contains("aarch64-unknown-linux-musl"),
            "{err}"
        );
        assert!(check("aarch64-unknown-linux-musl", Some(&arm), false).is_ok());
        let v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(check("aarch64-unknown-linux-musl", Some(&v8), false).is_ok());
        let win = Platform::parse("windows/amd64").unwrap();
        assert!(check("x86_64-unknown-linux-musl", Some(&win), false).is_err());
    }
}
