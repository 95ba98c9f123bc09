//! `cargo oci2bin --image SRC`: the whole build.

use crate::cargo_build::{self, CargoBuild};
use crate::cli::{BuildArgs, RegistryArgs};
use crate::progress::Mode;
use crate::pull_progress::PullProgress;
use anyhow::{bail, Context, Result};
use oci2bin_build::cache::write_atomic;
use oci2bin_build::{Builder, CompressSpec, Event, ImageSource};
use oci2bin_rt::oci::{Digest, Platform};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The oci2bin home: `$OCI2BIN_HOME`, else `$XDG_CACHE_HOME/oci2bin`, else `~/.cache/oci2bin`,
/// made absolute (cargo runs in the generated crate's directory).
pub fn home(explicit: Option<&Path>) -> Result<PathBuf> {
    let home = if let Some(p) = explicit {
        p.to_path_buf()
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("oci2bin")
    } else {
        let home = std::env::var_os("HOME").filter(|d| !d.is_empty()).context(
            "no cache directory: set OCI2BIN_HOME, XDG_CACHE_HOME or HOME (or pass --cache-dir)",
        )?;
        PathBuf::from(home).join(".cache/oci2bin")
    };
    std::path::absolute(&home).with_context(|| format!("resolving {}", home.display()))
}

/// The build cache: `HOME/build` under an oci2bin home given with `--cache-dir` or
/// `OCI2BIN_HOME`, else the library's default (`OCI2BIN_BUILD_CACHE`, else the same
/// `~/.cache/oci2bin/build`), so `cargo oci2bin` fills the cache a build script reads.
pub fn build_cache_dir(explicit_home: Option<&Path>) -> Result<PathBuf> {
    match explicit_home {
        Some(_) => Ok(home(explicit_home)?.join("build")),
        None => Ok(oci2bin_build::cache::BuildCache::default_dir()?),
    }
}

/// The host's static musl target.
pub fn default_target() -> String {
    format!("{}-unknown-linux-musl", std::env::consts::ARCH)
}

/// Makes a local source's path absolute: the build script runs in another directory.
fn absolute_source(source: &ImageSource) -> Result<String> {
    let abs = |p: &Path| -> Result<PathBuf> {
        std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
    };
    Ok(match source {
        ImageSource::OciLayout { dir, tag } => ImageSource::OciLayout {
            dir: abs(dir)?,
            tag: tag.clone(),
        }
        .to_string(),
        ImageSource::DockerArchive { file, reference } => ImageSource::DockerArchive {
            file: abs(file)?,
            reference: reference.clone(),
        }
        .to_string(),
        other => other.to_string(),
    })
}

/// Reads a password from standard input as `docker login --password-stdin` does: all of it,
/// without the trailing newline.
fn read_password(mut input: impl Read) -> Result<String> {
    let mut password = String::new();
    input
        .read_to_string(&mut password)
        .context("reading the registry password from standard input (--password-stdin)")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("--password-stdin: standard input was empty; pipe the password in, e.g. `cat token | cargo oci2bin --username USER --password-stdin ...`");
    }
    Ok(password)
}

/// Applies the registry options of the command line to `builder` (reading the password from
/// standard input for --password-stdin).
pub fn with_registry_args(mut builder: Builder, args: &RegistryArgs) -> Result<Builder> {
    builder = builder.offline(args.offline);
    for r in &args.insecure_registry {
        builder = builder.insecure_registry(r);
    }
    if let (Some(user), true) = (&args.username, args.password_stdin) {
        builder = builder.credentials(user, read_password(std::io::stdin().lock())?);
    }
    Ok(builder)
}

/// The runtime for `target` with the decoder of `compress`, as bytes: built by cargo the first
/// time, then kept under `home/runtimes/<bundle id>/<target>/` and reused without running
/// cargo at all (the bundle id changes with every runtime source, so a kept runtime is always
/// the one these sources build).
fn runtime(
    home: &Path,
    target: &str,
    compress: CompressSpec,
    mode: Mode,
    verbose: bool,
) -> Result<Vec<u8>> {
    let bin = crate::generate::package_name(compress.codec);
    let kept = home
        .join("runtimes")
        .join(crate::bundle::id())
        .join(target)
        .join(&bin);
    let kept_digest = kept.with_extension("sha256");
    match std::fs::read(&kept) {
        Ok(bytes) => {
            let want = std::fs::read_to_string(&kept_digest).unwrap_or_default();
            if Digest::of(&bytes).to_string() == want.trim() {
                return Ok(bytes);
            }
            eprintln!(
                "warning: the kept runtime {} does not match its digest; building it again",
                kept.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", kept.display())),
    }
    cargo_build::check_toolchain(target)?;
    let sources = crate::bundle::unpack(home)?;
    // One build at a time per home: the generated manifests and the binaries read below
    // belong to this build.
    let _lock = crate::generate::lock(home)?;
    let manifest = crate::generate::generate(home, &sources, compress.codec)?;
    let spinner = mode.spinner(&format!(
        "Building the runtime for {target} with the {} decoder (cargo build --release; once per target and codec)",
        compress.codec.name()
    ));
    let built = cargo_build::build(&CargoBuild {
        manifest: &manifest,
        target_dir: &home.join("target"),
        target,
        bin: &bin,
        verbose,
    });
    spinner.finish_and_clear();
    let built = built?;
    cargo_build::smoke_test(&built, target)?;
    let bytes = std::fs::read(&built)
        .with_context(|| format!("reading the runtime {}", built.display()))?;
    let dir = kept.parent().expect("has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(dir, &kept, &bytes)?;
    write_atomic(dir, &kept_digest, Digest::of(&bytes).to_string().as_bytes())?;
    Ok(bytes)
}

/// Runs the build.
pub fn run(args: &BuildArgs) -> Result<()> {
    let mode = Mode::detect(args.quiet);
    let Some(image) = &args.image else {
        bail!("no image given: pass --image NAME (a registry reference), --image oci:DIR[:TAG] or --image docker-archive:FILE (see --help)");
    };
    let source = ImageSource::parse(image)?;
    let source_str = absolute_source(&source)?;
    let target = args.target.clone().unwrap_or_else(default_target);
    let compress = CompressSpec::parse(&args.compress)?;
    let home = home(args.cache_dir.as_deref())?;
    let build_cache = build_cache_dir(args.cache_dir.as_deref())?;

    let mut builder = Builder::new(&source_str)?
        .compression(compress)
        .cache_dir(&build_cache);
    if let Some(p) = &args.platform {
        builder = builder.platform(Platform::parse(p)?);
    }
    builder = with_registry_args(builder, &args.registry)?;

    // 1. Resolve, verify and recompress here, where progress and errors can be shown plainly.
    let mut bar = None;
    let mut layer_count = 0;
    let mut pulls = PullProgress::new(mode);
    if let ImageSource::Registry(r) = &source {
        if !args.registry.offline {
            mode.line(&format!("Pulling {r}"));
        }
    }
    let (resolved, layers) = builder
        .prepare(&target, &mut |ev| match ev {
            Event::Download(d) => pulls.event(d),
            Event::Resolved { image, total_bytes } => {
                layer_count = image.layers.len();
                mode.line(&format!(
                    "Image {} ({}) from {}, {} layers, {:.1} MB",
                    image.reference,
                    image.platform,
                    image.source_desc,
                    image.layers.len(),
                    total_bytes as f64 / 1e6
                ));
                match (&image.index_digest, &image.manifest_digest) {
                    (Some(i), Some(m)) => mode.line(&format!("  index {i}, manifest {m}")),
                    (None, Some(m)) => mode.line(&format!("  manifest {m}")),
                    _ => {}
                }
            }
            Event::LayerStart { index, size } => {
                bar = Some(mode.bytes_bar(size, format!("layer {}/{layer_count}", index + 1)));
            }
            Event::Bytes(n) => {
                if let Some(b) = &bar {
                    b.inc(n)
                }
            }
            Event::LayerDone { index, layer } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                mode.line(&format!(
                    "  layer {}/{layer_count}: {} ({}, {:.1} MB)",
                    index + 1,
                    layer.digest,
                    layer.codec,
                    layer.size as f64 / 1e6
                ));
            }
        })
        .with_context(|| format!("preparing image {image}"))?;

    let output = match &args.output {
        Some(o) => o.clone(),
        None => PathBuf::from(resolved.reference.file_stem()),
    };
    let plan = oci2bin_build::payload::plan(&resolved, &layers, compress)
        .with_context(|| format!("laying out the payload of {image}"))?;

    // 2. The runtime for this target and decoder: compiled once, then fresh for every image.
    let runtime = runtime(&home, &target, compress, mode, args.verbose)?;

    // 3. Runtime + payload, written to a temporary file and renamed: a failed build leaves no
    //    output file.
    let out_dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".oci2bin-")
        .tempfile_in(out_dir)
        .with_context(|| format!("creating a temporary file in {}", out_dir.display()))?;
    let spinner = mode.spinner(&format!(
        "Writing {} ({:.1} MB)",
        output.display(),
        plan.len() as f64 / 1e6
    ));
    let attached = crate::attach::attach(&runtime, &plan, !args.no_polyglot, tmp.as_file_mut())
        .with_context(|| format!("writing {}", output.display()));
    spinner.finish_and_clear();
    let attached = attached?;
    crate::attach::check(tmp.path(), &attached, !args.no_polyglot).with_context(|| {
        format!(
            "checking {} (written for {})",
            tmp.path().display(),
            output.display()
        )
    })?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&output)
        .with_context(|| format!("writing {}", output.display()))?;
    let size = std::fs::metadata(&output)?.len();
    let payload: u64 = layers.iter().map(|l| l.size).sum();
    mode.line(&format!(
        "Wrote {} ({:.1} MB; image {}, config {}, {:.1} MB of layers as {})",
        output.display(),
        size as f64 / 1e6,
        resolved.reference,
        resolved.config_digest,
        payload as f64 / 1e6,
        compress
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_from_stdin_lose_only_the_trailing_newline() {
        assert_eq!(read_password(&b"s3cret\n"[..]).unwrap(), "s3cret");
        assert_eq!(read_password(&b"a b \r\n"[..]).unwrap(), "a b ");
        assert!(read_password(&b"\n"[..]).is_err());
    }
}
