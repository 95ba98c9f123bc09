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

/// How far the build is: `done` of about `total` compilation units, the last one `name`.
pub struct Progress<'a> {
    /// Units compiled (or found fresh) so far.
    pub done: usize,
    /// The estimate of all units (packages plus build scripts), at least `done`.
    pub total: usize,
    /// The package just compiled.
    pub name: &'a str,
}

/// The number of compilation units a build of `manifest` for `target` has, about: every
/// package of the resolved graph plus one per build script, from `cargo metadata` (quick,
/// offline, and only run the one time a runtime is compiled).
fn estimate_units(manifest: &Path, target: &str) -> Option<usize> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(target)
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let nodes = meta["resolve"]["nodes"].as_array()?;
    let used: std::collections::HashSet<&str> =
        nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    let build_scripts = meta["packages"]
        .as_array()?
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| used.contains(id)))
        .filter(|p| {
            p["targets"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "custom-build"))
                })
            })
        })
        .count();
    Some(nodes.len() + build_scripts)
}

/// Runs `cmd` with cargo's JSON messages on stdout, reporting each compiled unit to
/// `progress`; cargo's diagnostics are kept and printed only if the build fails.
fn build_with_progress(
    mut cmd: Command,
    b: &CargoBuild<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<std::process::ExitStatus> {
    use std::io::{BufRead, Read};
    let mut total = estimate_units(b.manifest, b.target).unwrap_or(0);
    cmd.arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("running cargo build")?;
    crate::interrupt::set_child(Some(child.id()));
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut done = 0;
    let mut rendered = String::new();
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match msg["reason"].as_str() {
            Some("compiler-artifact") | Some("build-script-executed") => {
                if msg["reason"] == "compiler-artifact" {
                    done += 1;
                }
                total = total.max(done);
                let id = msg["package_id"].as_str().unwrap_or("");
                progress(Progress {
                    done,
                    total,
                    name: package_name(id),
                });
            }
            Some("compiler-message") => {
                if let Some(r) = msg["message"]["rendered"].as_str() {
                    rendered.push_str(r);
                }
            }
            _ => {}
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    crate::interrupt::set_child(None);
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        eprintln!("{rendered}");
        eprintln!("{errors}");
    }
    Ok(status)
}

/// `name` of a cargo package id, in either spelling (`name 1.0 (source)` or
/// `registry+https://...#name@1.0`).
fn package_name(id: &str) -> &str {
    if let Some((_, frag)) = id.rsplit_once('#') {
        return frag.split('@').next().unwrap_or(frag);
    }
    id.split(' ').next().unwrap_or(id)
}

/// Builds and returns the path of the produced binary, reporting its progress.
pub fn build(b: &CargoBuild<'_>, progress: &mut dyn FnMut(Progress<'_>)) -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--release", "--manifest-path"])
        .arg(b.manifest)
        .arg("--target")
        .arg(b.target)
        .arg("--target-dir")
        .arg(b.target_dir);
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
    let status = if b.verbose {
        cmd.status().context("running cargo build")?
    } else {
        build_with_progress(cmd, b, progress)?
    };
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
