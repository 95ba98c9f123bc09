//! Running `cargo build` on the generated runtime crate.
//!
//! The target directory is shared by every image (under the oci2bin cache), so the runtime
//! and its dependencies compile once per target and decoder. cargo's own output is kept quiet
//! unless the build fails or `-v` is given.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to build.
pub struct CargoBuild<'a> {
    /// Manifest of the generated crate.
    pub manifest: &'a Path,
    /// Shared target directory.
    pub target_dir: &'a Path,
    /// Rust target triple.
    pub target: &'a str,
    /// The binary's name (the package name).
    pub bin: &'a str,
    /// Stream cargo's output.
    pub verbose: bool,
}

/// The C cross compiler and linker settings a target needs, unless the user set them.
fn cross_env(target: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let upper = target.replace('-', "_");
    let arch = target.split('-').next().unwrap_or("");
    let host_arch = std::env::consts::ARCH;
    if arch != host_arch && target.ends_with("-linux-musl") {
        let linker_var = format!("CARGO_TARGET_{}_LINKER", upper.to_uppercase());
        if std::env::var_os(&linker_var).is_none() {
            env.push((linker_var, "rust-lld".into()));
        }
        let gnu = format!("{arch}-linux-gnu");
        for (tool, var) in [
            ("gcc", format!("CC_{upper}")),
            ("ar", format!("AR_{upper}")),
        ] {
            if std::env::var_os(&var).is_none() {
                env.push((var, format!("{gnu}-{tool}")));
            }
        }
    }
    env
}

fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Checks what a target needs before cargo fails obscurely.
pub fn check_toolchain(target: &str) -> Result<()> {
    let out = Command::new(cargo())
        .args(["--version"])
        .output()
        .context("running cargo: is a Rust toolchain installed?")?;
    if !out.status.success() {
        bail!("cargo --version failed");
    }
    if let Ok(o) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        let installed = String::from_utf8_lossy(&o.stdout);
        if o.status.success() && !installed.lines().any(|l| l.trim() == target) {
            bail!("the Rust target {target} is not installed: run `rustup target add {target}`");
        }
    }
    let arch = target.split('-').next().unwrap_or("");
    if target.ends_with("-linux-musl") {
        let cc = if arch == std::env::consts::ARCH {
            "musl-gcc".to_string()
        } else {
            format!("{arch}-linux-gnu-gcc")
        };
        let cc_var = format!("CC_{}", target.replace('-', "_"));
        if std::env::var_os(&cc_var).is_none() && !which(&cc) {
            let pkg = if arch == std::env::consts::ARCH {
                "musl-tools".to_string()
            } else {
                format!("gcc-{arch}-linux-gnu")
            };
            bail!(
                "building for {target} needs the C compiler {cc} (the zstd and xz decoders are C): \
                 install it (Debian/Ubuntu: apt-get install {pkg}) or set {cc_var}"
            );
        }
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds and returns the path of the produced binary.
pub fn build(b: &CargoBuild<'_>) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--release", "--manifest-path"])
        .arg(b.manifest)
        .arg("--target")
        .arg(b.target)
        .arg("--target-dir")
        .arg(b.target_dir);
    if !b.verbose {
        cmd.arg("--quiet");
    }
    // In the crate's directory, so that cargo reads its `.cargo/config.toml` (C flags).
    if let Some(dir) = b.manifest.parent() {
        cmd.current_dir(dir);
    }
    for (k, v) in cross_env(b.target) {
        cmd.env(k, v);
    }
    // Settings from an outer cargo invocation must not leak into this one.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status;
    if b.verbose {
        status = cmd.status().context("running cargo build")?;
    } else {
        let out = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("running cargo build")?;
        status = out.status;
        if !status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    if !status.success() {
        bail!(
            "cargo build of the generated crate {} failed (its output is above)",
            b.manifest.display()
        );
    }
    Ok(b.target_dir.join(b.target).join("release").join(b.bin))
}

/// Runs a freshly built runtime once, without an image, where the host can run it: it must
/// start and say it carries no image (exit 125). Catches a toolchain whose static start-up
/// code cannot load what was linked before any output is written with it.
pub fn smoke_test(runtime: &Path, target: &str) -> Result<()> {
    if target.split('-').next() != Some(std::env::consts::ARCH) {
        return Ok(());
    }
    let out = Command::new(runtime)
        .env_clear()
        .output()
        .with_context(|| format!("running the freshly built runtime {}", runtime.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(125) || !stderr.contains("carries no image") {
        bail!(
            "the freshly built runtime {} does not start ({}; stderr: {}); is the Rust toolchain \
             older than the template's rust-version?",
            runtime.display(),
            out.status,
            stderr.trim()
        );
    }
    Ok(())
}
