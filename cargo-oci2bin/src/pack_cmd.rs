//! `cargo oci2bin pack DIR -o LAYOUT`: a root filesystem directory to an OCI layout.

use crate::cli::PackArgs;
use anyhow::{Context, Result};
use oci2bin_build::pack::{exec_form, pack, platform_for_arch, PackOptions};
use oci2bin_build::CompressSpec;

/// Runs `pack`.
pub fn run(args: &PackArgs) -> Result<()> {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .context("SOURCE_DATE_EPOCH is not a number of seconds")
        })
        .transpose()?
        .unwrap_or(0);
    let opts = PackOptions {
        rootfs: args.rootfs.clone(),
        output: args.output.clone(),
        tag: args.tag.clone(),
        entrypoint: args.entrypoint.as_deref().map(exec_form).transpose()?,
        cmd: args.cmd.as_deref().map(exec_form).transpose()?,
        env: args.env.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        exposed_ports: args.expose.clone(),
        platform: platform_for_arch(&args.arch)?,
        compression: CompressSpec::parse(&args.compress)?,
        source_date_epoch: epoch,
    };
    let out = pack(&opts).with_context(|| format!("packing {}", args.rootfs.display()))?;
    if out.skipped_devices + out.skipped_sockets > 0 {
        eprintln!(
            "warning: skipped {} device node(s) and {} socket(s): images cannot carry them usefully",
            out.skipped_devices, out.skipped_sockets
        );
    }
    eprintln!(
        "Packed {} ({} entries) into {}:{} as {} (manifest {}, layer {} bytes)",
        args.rootfs.display(),
        out.entries,
        args.output.display(),
        args.tag,
        opts.platform,
        out.manifest,
        out.layer_size
    );
    Ok(())
}
