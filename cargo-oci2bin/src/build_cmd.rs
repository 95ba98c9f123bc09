//! `cargo oci2bin --image SRC`: the whole build.

use crate::cargo_build::{self, CargoBuild};
use crate::cli::{BuildArgs, MessageFormat, RegistryArgs};
use crate::output::Input;
use crate::progress::Mode;
use crate::pull_progress::PullProgress;
use anyhow::{bail, Context, Result};
use oci2bin_build::cache::write_atomic;
use oci2bin_build::{Builder, CompressSpec, Event, ImageSource};
use oci2bin_rt::oci::{Digest, Platform};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The oci2bin cache root: `--cache-dir` (clap reads `$OCI2BIN_CACHE_DIR` into it), else
/// `$XDG_CACHE_HOME/oci2bin`, else `~/.cache/oci2bin` (see `oci2bin_rt::location`), made
/// absolute (cargo runs in the generated crate's directory).
pub fn home(explicit: Option<&Path>) -> Result<PathBuf> {
    oci2bin_build::cache::check_renamed_variables()?;
    let home = match explicit {
        Some(p) => p.to_path_buf(),
        None => oci2bin_rt::location::cache_root().context(
            "no cache directory: set OCI2BIN_CACHE_DIR, XDG_CACHE_HOME or HOME (or pass --cache-dir)",
        )?,
    };
    std::path::absolute(&home).with_context(|| format!("resolving {}", home.display()))
}

/// The build cache: `build/` under the cache root, the directory a build script's
/// `oci2bin-build` reads by default too.
pub fn build_cache_dir(explicit_home: Option<&Path>) -> Result<PathBuf> {
    Ok(home(explicit_home)?.join("build"))
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
    let what = format!(
        "Building the runtime for {target} with the {} decoder (cargo build --release; once per target and codec, about a minute)",
        compress.codec.name()
    );
    let bar = mode.count_bar(&what);
    let mut last_line = std::time::Instant::now();
    let built = cargo_build::build(
        &CargoBuild {
            manifest: &manifest,
            target_dir: &home.join("target"),
            target,
            bin: &bin,
            verbose,
        },
        &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(format!("compiling {}", p.name));
            // Without a terminal: a line every few seconds, so logs show it is moving.
            if mode == Mode::Lines && last_line.elapsed().as_secs() >= 5 {
                last_line = std::time::Instant::now();
                eprintln!("  compiled {}/{} crates ({})", p.done, p.total, p.name);
            }
        },
    );
    bar.finish_and_clear();
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

/// The files and directories a build of `source` reads, which its output must not replace.
fn inputs(source: &ImageSource, home: &Path) -> Vec<Input> {
    let mut inputs = vec![Input {
        what: "the oci2bin cache",
        path: home.to_path_buf(),
    }];
    match source {
        ImageSource::OciLayout { dir, .. } => inputs.push(Input {
            what: "the OCI layout",
            path: dir.clone(),
        }),
        ImageSource::DockerArchive { file, .. } => inputs.push(Input {
            what: "the archive",
            path: file.clone(),
        }),
        _ => {}
    }
    inputs
}

/// Runs the build.
pub fn run(args: &BuildArgs) -> Result<()> {
    let json = args.message_format == MessageFormat::Json;
    let mode = Mode::detect(args.quiet);
    let Some(image) = args.image.as_ref().or(args.image_arg.as_ref()) else {
        bail!("no image given: pass --image NAME (a registry reference), --image oci:DIR[:TAG] or --image docker-archive:FILE (see --help)");
    };
    let source = ImageSource::parse(image)?;
    let source_str = absolute_source(&source)?;
    let target = args.target.clone().unwrap_or_else(default_target);
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    crate::target_check::check(&target, platform.as_ref(), args.allow_dynamic)?;
    let compress = CompressSpec::parse(&args.compress)?;
    let edits = args.edits.to_edits()?;
    let home = home(args.cache_dir.as_deref())?;
    let build_cache = home.join("build");
    let inputs = inputs(&ImageSource::parse(&source_str)?, &home);

    let mut builder = Builder::new(&source_str)?
        .compression(compress)
        .cache_dir(&build_cache)
        .edits(edits);
    if let Some(p) = platform {
        builder = builder.platform(p);
    }
    builder = with_registry_args(builder, &args.registry)?;

    // The output is checked before any work: named by -o, by a registry reference, or (for a
    // local image) by the name its index gives, read here without touching the layers.
    let output_for = |name: PathBuf| crate::output::check(&name, &inputs, args.force);
    let mut output = match (&args.output, &source) {
        (Some(o), _) => Some(output_for(o.clone())?),
        (None, ImageSource::Registry(r)) => Some(output_for(PathBuf::from(r.file_stem()))?),
        (None, ImageSource::OciLayout { .. } | ImageSource::DockerArchive { .. }) => {
            let image = builder
                .resolve(&target, &mut |_| {})
                .with_context(|| format!("reading image {image}"))?;
            Some(output_for(PathBuf::from(image.reference.file_stem()))?)
        }
        (None, ImageSource::Daemon { .. }) => None,
    };

    // 1. Resolve, verify and recompress here, where progress and errors can be shown plainly.
    let mut bar = None;
    let mut layer_count = 0;
    let mut pulls = PullProgress::new(mode);
    let mut edit_report = None;
    let mut edit_spinner = None;
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
            Event::EditStart { .. } => {
                edit_spinner = Some(mode.spinner("Editing the image"));
            }
            Event::Edited { report } => {
                if let Some(s) = edit_spinner.take() {
                    s.finish_and_clear();
                }
                for line in edit_summary(report) {
                    mode.line(&line);
                }
                edit_report = Some(report.clone());
            }
        })
        .with_context(|| format!("preparing image {image}"))?;

    let output = match output.take() {
        Some(o) => o,
        None => output_for(PathBuf::from(resolved.reference.file_stem()))?,
    };
    let plan = oci2bin_build::payload::plan(&resolved, &layers, compress)
        .with_context(|| format!("laying out the payload of {image}"))?;

    // 2. The runtime for this target and decoder: compiled once, then fresh for every image.
    let runtime = runtime(&home, &target, compress, mode, args.verbose)?;

    // 3. Runtime + payload, written to a temporary file and renamed: a failed or interrupted
    //    build leaves no output file and no temporary one.
    let shown = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(output.path.file_name().unwrap_or_default()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".oci2bin-")
        .tempfile_in(&output.dir)
        .with_context(|| format!("creating a temporary file in {}", output.dir.display()))?;
    let _registered = crate::interrupt::register(tmp.path().to_path_buf());
    let spinner = mode.spinner(&format!(
        "Writing {} ({:.1} MB)",
        shown.display(),
        plan.len() as f64 / 1e6
    ));
    let attached = crate::attach::attach(&runtime, &plan, !args.no_polyglot, tmp.as_file_mut())
        .with_context(|| format!("writing {}", shown.display()));
    spinner.finish_and_clear();
    let attached = attached?;
    crate::attach::check(tmp.path(), &attached, !args.no_polyglot).with_context(|| {
        format!(
            "checking {} (written for {})",
            tmp.path().display(),
            shown.display()
        )
    })?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&output.path)
        .with_context(|| format!("writing {}", shown.display()))?;
    let size = std::fs::metadata(&output.path)?.len();
    let payload: u64 = layers.iter().map(|l| l.size).sum();
    mode.line(&format!(
        "Wrote {} ({:.1} MB; image {}, config {}, {:.1} MB of layers as {})",
        shown.display(),
        size as f64 / 1e6,
        resolved.reference,
        resolved.config_digest,
        payload as f64 / 1e6,
        compress
    ));
    if json {
        let report = serde_json::json!({
            "output": output.path,
            "size": size,
            "runtime_size": attached.payload_offset,
            "payload_size": attached.payload_len,
            "target": target,
            "platform": resolved.platform.to_string(),
            "compression": compress.to_string(),
            "polyglot": !args.no_polyglot,
            "reference": resolved.reference.to_string(),
            "source": resolved.recorded_source,
            "config_digest": resolved.config_digest.to_string(),
            "manifest_digest": plan.manifest_digest.to_string(),
            "source_index_digest": resolved.index_digest.as_ref().map(|d| d.to_string()),
            "source_manifest_digest": resolved.manifest_digest.as_ref().map(|d| d.to_string()),
            "layers": layers.iter().map(|l| serde_json::json!({
                "digest": l.digest,
                "diff_id": l.diff_id,
                "size": l.size,
                "codec": l.codec,
            })).collect::<Vec<_>>(),
            "edits": edit_report,
        });
        println!("{report}");
    }
    Ok(())
}

/// The lines a build prints about its edits.
fn edit_summary(r: &oci2bin_build::EditReport) -> Vec<String> {
    let mb = |b: u64| b as f64 / 1e6;
    let mut lines = vec![format!(
        "Edited the image: {} -> {} layers, {:.1} -> {:.1} MB (was config {})",
        r.layers_before,
        r.layers_after,
        mb(r.layer_bytes_before),
        mb(r.layer_bytes_after),
        r.source_config_digest
    )];
    if r.stripped_entries > 0 || r.stripped_bytes > 0 {
        lines.push(format!(
            "  stripped {} entries, {:.1} MB of files saved ({} bytes)",
            r.stripped_entries,
            mb(r.stripped_bytes),
            r.stripped_bytes
        ));
    }
    if r.added_entries > 0 {
        lines.push(format!("  added a layer of {} entries", r.added_entries));
    }
    if r.squashed {
        lines.push(format!(
            "  squashed into one layer ({} hardlinks copied)",
            r.materialized_links
        ));
    }
    lines
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
