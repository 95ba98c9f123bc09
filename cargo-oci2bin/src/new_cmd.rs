//! `cargo oci2bin new DIR --image SRC`: a crate of your own that builds an oci2bin executable
//! with plain cargo.
//!
//! `cargo oci2bin` is the quick path; some users want the executable to be *their* program:
//! print a banner, check a licence or an environment, then hand over to the container. The
//! crate written here does that in the poCo manner: its `build.rs` fetches, verifies and embeds
//! the image with `oci2bin-build`, its `main.rs` runs first and then calls the runtime. The
//! oci2bin sources are vendored under `vendor/` (at this cargo-oci2bin's version), so the crate
//! builds anywhere, offline for local images, and can be kept in version control as it is.

use crate::cli::NewArgs;
use anyhow::{bail, Context, Result};
use oci2bin_build::{CompressSpec, ImageSource};
use std::path::{Path, PathBuf};

/// The package name for `dir`: its file name, made a valid crate name.
fn package_name(dir: &Path) -> Result<String> {
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: cannot name a crate after it", dir.display()))?;
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        bail!(
            "{}: not usable as a crate name; pass --name NAME",
            dir.display()
        );
    }
    Ok(name)
}

/// The image string build.rs embeds: a local path relative to the crate when it lies inside
/// it (so the crate can be moved and checked in), else absolute; registry references as given.
fn image_for_crate(source: &ImageSource, input: &str, dir: &Path) -> Result<String> {
    let rel = |p: &Path| -> Result<PathBuf> {
        let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
        Ok(abs.strip_prefix(dir).map(Path::to_path_buf).unwrap_or(abs))
    };
    Ok(match source {
        ImageSource::OciLayout { dir: d, tag } => ImageSource::OciLayout {
            dir: rel(d)?,
            tag: tag.clone(),
        }
        .to_string(),
        ImageSource::DockerArchive { file, reference } => ImageSource::DockerArchive {
            file: rel(file)?,
            reference: reference.clone(),
        }
        .to_string(),
        _ => input.to_string(),
    })
}

fn cargo_toml(name: &str, codec: &str, registry: bool) -> String {
    let rt_features = if codec == "none" {
        r#"["runtime"]"#.to_string()
    } else {
        format!(r#"["runtime", "{codec}"]"#)
    };
    let build_features = if registry {
        r#", features = ["registry"]"#
    } else {
        ""
    };
    format!(
        r#"# An oci2bin executable of your own, written by `cargo oci2bin new`.
#
#   cargo build --release --target x86_64-unknown-linux-musl
#
# gives target/x86_64-unknown-linux-musl/release/{name}: one static file that runs the image as
# a rootless container. build.rs fetches, verifies and embeds the image (change it there);
# src/main.rs runs first, then hands over to the runtime. To make the file a tar archive that
# `docker load` and `podman load` accept too, run `cargo oci2bin polyglot FILE` on it.
# vendor/ holds the oci2bin sources this crate was written with.
[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false
# The runtime's static-PIE start-up needs Rust 1.90's musl.
rust-version = "1.90"

[dependencies]
oci2bin-rt = {{ path = "vendor/oci2bin-rt", default-features = false, features = {rt_features} }}

[build-dependencies]
oci2bin-build = {{ path = "vendor/oci2bin-build"{build_features} }}

# Small and fast, as `cargo oci2bin` builds its runtime.
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true

[profile.release.package.zstd-sys]
opt-level = 3
[profile.release.package.liblzma-sys]
opt-level = 3
[profile.release.package.zlib-rs]
opt-level = 3

[workspace]
"#
    )
}

fn build_rs(image: &str, compress: &str) -> String {
    format!(
        r#"//! Fetches the image, verifies every digest and embeds it into this crate's binary
//! (oci2bin-build). `OCI2BIN_IMAGE` overrides the image for one build; a relative local path
//! is relative to this crate.

/// The image this crate embeds: a registry reference, oci:DIR[:TAG] or docker-archive:FILE.
const IMAGE: &str = {image:?};
/// The layer compression (the runtime's decoder feature in Cargo.toml must match).
const COMPRESS: &str = {compress:?};

fn main() {{
    println!("cargo:rerun-if-env-changed=OCI2BIN_IMAGE");
    let image = std::env::var("OCI2BIN_IMAGE").unwrap_or_else(|_| IMAGE.to_string());
    let image = relative_to_crate(&image);
    let embedded = oci2bin_build::CompressSpec::parse(COMPRESS)
        .and_then(|c| Ok(oci2bin_build::Builder::new(&image)?.compression(c)))
        .and_then(|b| b.embed());
    match embedded {{
        Ok(e) => println!("cargo:rustc-env=OCI2BIN_IMAGE_NAME={{}}", e.image.reference),
        Err(e) => {{
            eprintln!("cannot embed {{image}}: {{e}}");
            std::process::exit(1);
        }}
    }}
}}

/// `oci:DIR` and `docker-archive:FILE` with a relative path, resolved against this crate.
fn relative_to_crate(image: &str) -> String {{
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    for transport in ["oci:", "docker-archive:"] {{
        if let Some(path) = image.strip_prefix(transport) {{
            if !path.starts_with('/') {{
                return format!("{{transport}}{{dir}}/{{path}}");
            }}
        }}
    }}
    image.to_string()
}}
"#
    )
}

const MAIN_RS: &str = r#"//! Runs before the container starts: put your own start-up here (a banner, a licence or
//! environment check, ...), then hand over to the runtime, which runs the embedded image with
//! the same options and confinement as every `cargo oci2bin` executable.

fn main() {
    let payload = oci2bin_rt::payload!();
    // For example:
    // eprintln!("{} (payload {} KiB)", env!("OCI2BIN_IMAGE_NAME"), payload.len() / 1024);
    oci2bin_rt::run::main(payload)
}
"#;

/// Writes the crate.
pub fn run(args: &NewArgs) -> Result<()> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty; `cargo oci2bin new` writes a new crate into an empty or missing directory",
            dir.display()
        );
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => package_name(&dir)?,
    };
    let source = ImageSource::parse(&args.image)?;
    let compress = CompressSpec::parse(&args.compress)?;
    let image = image_for_crate(&source, &args.image, &dir)?;
    let registry = matches!(source, ImageSource::Registry(_));

    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            "Cargo.toml".into(),
            cargo_toml(&name, compress.codec.name(), registry).into_bytes(),
        ),
        (
            "build.rs".into(),
            build_rs(&image, &compress.to_string()).into_bytes(),
        ),
        ("src/main.rs".into(), MAIN_RS.as_bytes().to_vec()),
        (".gitignore".into(), b"/target\n".to_vec()),
    ];
    if let Some(bytes) = crate::bundle::file("template/.cargo/config.toml") {
        // A crate kept in version control cannot name this machine's directories: its
        // build paths stay unmapped (the generated runtime crate maps them).
        let config = String::from_utf8_lossy(bytes).replace(", @REMAP@", "");
        files.push((".cargo/config.toml".into(), config.into_bytes()));
    }
    if let Some(bytes) = crate::bundle::file("Cargo.lock") {
        files.push(("Cargo.lock".into(), bytes.to_vec()));
    }
    for prefix in ["oci2bin-rt/", "oci2bin-build/"] {
        for (path, bytes) in crate::bundle::files_under(prefix) {
            files.push((Path::new("vendor").join(path), bytes.to_vec()));
        }
    }
    // Written beside the destination and renamed, so a failure leaves no half crate.
    let parent = dir.parent().context("the crate directory has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".oci2bin-new-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    for (rel, bytes) in &files {
        let p = tmp.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    if dir.exists() {
        std::fs::remove_dir(&dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &dir)
        .with_context(|| format!("renaming {} to {}", kept.display(), dir.display()))?;
    eprintln!(
        "Created {} (package {name}, image {image}).\n  cd {} && cargo build --release --target {}-unknown-linux-musl\n  then optionally: cargo oci2bin polyglot target/{}-unknown-linux-musl/release/{name}",
        dir.display(),
        args.dir.display(),
        std::env::consts::ARCH,
        std::env::consts::ARCH
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_come_from_the_directory() {
        assert_eq!(package_name(Path::new("/x/My App")).unwrap(), "my-app");
        assert!(package_name(Path::new("/x/1st")).is_err());
    }

    #[test]
    fn local_images_inside_the_crate_become_relative() {
        let src = ImageSource::parse("oci:/work/app/images/bb:latest").unwrap();
        let got = image_for_crate(&src, "", Path::new("/work/app")).unwrap();
        assert_eq!(got, "oci:images/bb:latest");
        let got = image_for_crate(&src, "", Path::new("/elsewhere")).unwrap();
        assert_eq!(got, "oci:/work/app/images/bb:latest");
        let reg = ImageSource::parse("nginx:1").unwrap();
        assert_eq!(
            image_for_crate(&reg, "nginx:1", Path::new("/")).unwrap(),
            "nginx:1"
        );
    }
}
