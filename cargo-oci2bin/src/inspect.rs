//! `cargo oci2bin inspect FILE [--json]`: what an oci2bin executable holds, without running it.
//!
//! Works on outputs for any architecture: it reads the ELF headers to find the payload
//! (attached after the runtime, or linked into an `.oci2bin` section) and parses it with the
//! runtime's own reader.

use crate::elf::{elf_layout, PayloadKind};
use crate::mapped::Mapped;
use crate::polyglot::{is_polyglot, verify, PolyglotCheck};
use anyhow::{Context, Result};
use oci2bin_rt::payload::Payload;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Layer {
    digest: String,
    diff_id: String,
    media_type: String,
    size: u64,
}

#[derive(Serialize)]
struct ImageConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Report {
    file: String,
    arch: &'static str,
    file_size: u64,
    payload_size: u64,
    /// `attached` (`cargo oci2bin`) or `linked` (a build script's `Builder::embed`).
    payload_kind: &'static str,
    runtime_size: u64,
    polyglot: PolyglotCheck,
    polyglot_valid: bool,
    oci2bin_version: String,
    reference: String,
    source: String,
    platform: String,
    compression: String,
    manifest_digest: String,
    config_digest: String,
    source_index_digest: Option<String>,
    source_manifest_digest: Option<String>,
    layers: Vec<Layer>,
    config: ImageConfig,
}

fn report(path: &Path) -> Result<Report> {
    let data = Mapped::open(path)?;
    if !data.starts_with(b"\x7fELF") {
        anyhow::bail!(
            "{} is not an oci2bin executable: it is not an ELF file",
            path.display()
        );
    }
    let layout = elf_layout(&data).with_context(|| {
        if is_polyglot(&data) {
            // Only oci2bin writes an ELF header inside a tar header.
            format!(
                "{} starts like an oci2bin executable but cannot be read: it is truncated or damaged",
                path.display()
            )
        } else {
            format!("{} is not an oci2bin executable", path.display())
        }
    })?;
    if layout.payload_len == 0 {
        anyhow::bail!(
            "{} is the bare oci2bin runtime: no image is attached to it",
            path.display()
        );
    }
    let start = layout.payload_offset as usize;
    let end = start
        .checked_add(layout.payload_len as usize)
        .filter(|e| *e <= data.len())
        .with_context(|| {
            format!(
                "{} is truncated: its payload runs past the end of the file",
                path.display()
            )
        })?;
    let payload = Payload::parse(&data[start..end])
        .with_context(|| format!("reading the payload of {}", path.display()))?;
    let polyglot = verify(&data, &layout);
    let cfg = payload.config.config().clone().unwrap_or_default();
    let m = &payload.metadata;
    Ok(Report {
        file: path.display().to_string(),
        arch: layout.arch,
        file_size: data.len() as u64,
        payload_size: layout.payload_len,
        payload_kind: match layout.kind {
            PayloadKind::Attached => "attached",
            PayloadKind::Linked => "linked",
        },
        runtime_size: data.len() as u64 - layout.payload_len,
        polyglot_valid: polyglot.valid(),
        polyglot,
        oci2bin_version: m.oci2bin_version.clone(),
        reference: m.reference.clone(),
        source: m.source.clone(),
        platform: m.platform.clone(),
        compression: m.compression.clone(),
        manifest_digest: payload.manifest_digest.to_string(),
        config_digest: payload.config_digest.to_string(),
        source_index_digest: m.source_index_digest.clone(),
        source_manifest_digest: m.source_manifest_digest.clone(),
        layers: payload
            .layers
            .iter()
            .map(|l| Layer {
                digest: l.digest.to_string(),
                diff_id: l.diff_id.to_string(),
                media_type: l.media_type.clone(),
                size: l.bytes.len() as u64,
            })
            .collect(),
        config: ImageConfig {
            entrypoint: cfg.entrypoint().clone(),
            cmd: cfg.cmd().clone(),
            env: cfg.env().clone(),
            working_dir: cfg.working_dir().clone(),
            user: cfg.user().clone(),
            exposed_ports: cfg.exposed_ports().clone(),
        },
    })
}

/// Runs `inspect`.
pub fn run(file: &Path, json: bool) -> Result<()> {
    let r = report(file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let opt = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "File:          {} ({} bytes, {})",
        r.file, r.file_size, r.arch
    );
    println!("Image:         {}", r.reference);
    println!("Source:        {}", r.source);
    println!("Platform:      {}", r.platform);
    println!("Image ID:      {}", r.config_digest);
    println!("Manifest:      {}", r.manifest_digest);
    if let Some(d) = &r.source_index_digest {
        println!("Source index:  {d}");
    }
    if let Some(d) = &r.source_manifest_digest {
        println!("Source manif.: {d}");
    }
    println!("Compression:   {}", r.compression);
    println!("Built by:      oci2bin {}", r.oci2bin_version);
    println!(
        "Sizes:         payload {} bytes ({}), runtime {} bytes",
        r.payload_size, r.payload_kind, r.runtime_size
    );
    println!(
        "Polyglot:      {}",
        if r.polyglot_valid {
            "valid (docker load / podman load / tar accept it)".to_string()
        } else {
            format!("no ({:?})", r.polyglot)
        }
    );
    println!("Entrypoint:    {}", opt(&r.config.entrypoint));
    println!("Cmd:           {}", opt(&r.config.cmd));
    println!("Env:           {}", opt(&r.config.env));
    println!(
        "WorkingDir:    {}",
        r.config.working_dir.as_deref().unwrap_or("-")
    );
    println!("User:          {}", r.config.user.as_deref().unwrap_or("-"));
    println!("ExposedPorts:  {}", opt(&r.config.exposed_ports));
    println!("Layers:");
    for (i, l) in r.layers.iter().enumerate() {
        println!(
            "  {:>2}. {} {:>12} bytes  {}",
            i + 1,
            l.digest,
            l.size,
            l.media_type
        );
    }
    Ok(())
}
