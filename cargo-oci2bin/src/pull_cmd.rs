//! `cargo oci2bin pull SOURCE`: fill the build cache without building.
//!
//! Useful before going offline, to warm a CI cache, or to see which digests a tag resolves to:
//! the image is pulled and verified exactly as a build would, and printed pinned by digest on
//! stdout, ready for a reproducible `--image`.

use crate::build_cmd::{build_cache_dir, default_target, with_registry_args};
use crate::cli::PullArgs;
use crate::progress::Mode;
use crate::pull_progress::PullProgress;
use anyhow::{Context, Result};
use oci2bin_build::Builder;
use oci2bin_rt::oci::Platform;

/// Runs the pull.
pub fn run(args: &PullArgs) -> Result<()> {
    let mode = Mode::detect(args.quiet);
    let target = args.target.clone().unwrap_or_else(default_target);
    let mut builder =
        Builder::new(&args.image)?.cache_dir(build_cache_dir(args.cache_dir.as_deref())?);
    if let Some(p) = &args.platform {
        builder = builder.platform(Platform::parse(p)?);
    }
    builder = with_registry_args(builder, &args.registry)?;
    let mut pulls = PullProgress::new(mode);
    let image = builder
        .resolve(&target, &mut |d| pulls.event(d))
        .with_context(|| format!("pulling {}", args.image))?;
    let bytes: u64 = image.layers.iter().map(|l| l.location.len).sum();
    mode.line(&format!(
        "Pulled {} ({}): {} layers, {:.1} MB; config {}",
        image.reference,
        image.platform,
        image.layers.len(),
        bytes as f64 / 1e6,
        image.config_digest
    ));
    println!("{}", builder.pinned_source(&image)?);
    Ok(())
}
