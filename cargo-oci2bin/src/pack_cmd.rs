//! `cargo oci2bin pack DIR -o LAYOUT`: a root filesystem directory to an OCI layout.

use crate::cli::PackArgs;
use anyhow::{Context, Result};
use oci2bin_build::pack::{pack, PackOptions};
use oci2bin_build::CompressSpec;
use oci2bin_rt::oci::Platform;

/// `--entrypoint '["a","b"]'` or `--entrypoint a`.
fn words(s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        serde_json::from_str(s).with_context(|| format!("{s:?} is not a JSON array of strings"))
    } else {
        Ok(vec![s.to_string()])
    }
}

/// Runs `pack`.
pub fn run(args: &PackArgs) -> Result<()> {
    let platform = if args.arch.contains('/') {
        Platform::parse(&args.arch)?
    } else {
        let triple = match args.arch.as_str() {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            "arm" => "armv7",
            other => other,
        };
        Platform::for_target(&format!("{triple}-unknown-linux-musl"))
            .with_context(|| format!("unknown --arch {:?}", args.arch))?
    };
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|v| v.parse::<u64>().context("SOURCE_DATE_EPOCH is not a number"))
        .transpose()?
        .unwrap_or(0);
    let opts = PackOptions {
        rootfs: args.rootfs.clone(),
        output: args.output.clone(),
        tag: args.tag.clone(),
        entrypoint: args.entrypoint.as_deref().map(words).transpose()?,
        cmd: args.cmd.as_deref().map(words).transpose()?,
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        exposed_ports: args.expose.clone(),
        platform,
        compression: CompressSpec::parse(&args.compress)?.codec,
        source_date_epoch: epoch,
    };
    let out = pack(&opts).with_context(|| format!("packing {}", args.rootfs.display()))?;
    eprintln!("Packed {} into {}:{} ({out:?})", args.rootfs.display(), args.output.display(), args.tag);
    Ok(())
}
