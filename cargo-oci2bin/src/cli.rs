//! Command-line interface of `cargo oci2bin`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Turn an OCI/Docker image into one static Linux executable.
#[derive(Parser, Debug)]
#[command(
    name = "cargo oci2bin",
    bin_name = "cargo oci2bin",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Image sources: a registry reference (nginx, ghcr.io/o/i:tag, host:5000/i@sha256:..., docker://...), \
oci:DIR[:TAG] (OCI image layout), docker-archive:FILE[:NAME:TAG] (docker/podman save), \
docker-daemon:NAME and podman:NAME (exported with docker/podman save).\n\
Registry credentials come from docker's config.json (auths, credsStore, credHelpers), \
$REGISTRY_AUTH_FILE and podman's auth.json, or --username with --password-stdin."
)]
pub struct Cli {
    /// Subcommand; without one, builds an executable.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Build options.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an executable from an image (the default).
    Build(BuildArgs),
    /// Download an image into the build cache without building, and print it pinned by
    /// digest (a later build, or one with --offline, uses the cached copy).
    Pull(PullArgs),
    /// Turn a root filesystem directory into an OCI image layout (one reproducible layer).
    Pack(PackArgs),
    /// Show what an oci2bin executable holds, without running it.
    Inspect {
        /// The executable.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options for building an executable.
#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The image: a registry reference (nginx, host:5000/i:t, ...@sha256:...), oci:DIR[:TAG],
    /// docker-archive:FILE[:NAME:TAG], docker-daemon:NAME or podman:NAME.
    #[arg(long, value_name = "SOURCE")]
    pub image: Option<String>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output file [default: derived from the image name, e.g. busybox_latest].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rust target triple [default: the host's *-unknown-linux-musl].
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Image platform os/arch[/variant] [default: from the target].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Layer compression: zstd[:1-22] | xz[:0-9] | gzip[:1-9] | none.
    #[arg(long, default_value = "zstd:3", value_name = "CODEC[:LEVEL]")]
    pub compress: String,
    /// Cache directory for sources, layers and the shared target directory.
    #[arg(long, env = "OCI2BIN_HOME", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show cargo's output.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write a plain ELF executable, not the ELF+tar polyglot.
    #[arg(long)]
    pub no_polyglot: bool,
}

/// How to reach registries (for registry images).
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Build from the cache only: pull nothing, and say what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Reach this registry over plain HTTP (repeatable); localhost, 127.0.0.0/8 and [::1]
    /// always are.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Registry user name (the password is read with --password-stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// Options for `pull`.
#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// The image, as for --image of a build (a registry reference, docker-daemon:NAME, ...).
    #[arg(value_name = "SOURCE")]
    pub image: String,
    /// Rust target triple whose platform to pull [default: the host's *-unknown-linux-musl].
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Image platform os/arch[/variant] [default: from the target].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Cache directory (as for a build).
    #[arg(long, env = "OCI2BIN_HOME", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print nothing but errors (and the pinned reference, on stdout).
    #[arg(short, long)]
    pub quiet: bool,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Options for `pack`.
#[derive(Args, Debug, Clone)]
pub struct PackArgs {
    /// Root filesystem directory.
    pub rootfs: PathBuf,
    /// OCI layout directory to create or add to.
    #[arg(short, long, value_name = "LAYOUT")]
    pub output: PathBuf,
    /// Tag (org.opencontainers.image.ref.name).
    #[arg(long, default_value = "latest")]
    pub tag: String,
    /// Entrypoint: a JSON array or one word.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Cmd: a JSON array or one word.
    #[arg(long)]
    pub cmd: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    pub workdir: Option<String>,
    /// User (name, uid, uid:gid).
    #[arg(long)]
    pub user: Option<String>,
    /// Exposed port, e.g. 6379/tcp (repeatable).
    #[arg(long = "expose", value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Architecture: amd64, arm64, ... or os/arch[/variant].
    #[arg(long, default_value = "amd64")]
    pub arch: String,
    /// Layer compression: gzip | zstd | xz | none.
    #[arg(long, default_value = "gzip")]
    pub compress: String,
}

/// Parses the arguments, accepting both `cargo oci2bin ...` (cargo passes `oci2bin` as the
/// first argument) and a direct `cargo-oci2bin ...`.
pub fn parse() -> Cli {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "oci2bin") {
        args.remove(1);
    }
    Cli::parse_from(args)
}
