//! Command-line interface of `cargo oci2bin`.

use clap::{Args, Parser, Subcommand, ValueEnum};
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
$REGISTRY_AUTH_FILE and podman's auth.json, or --username with --password-stdin.\n\
Caches: everything goes under one root, --cache-dir or $OCI2BIN_CACHE_DIR (default \
$XDG_CACHE_HOME/oci2bin, else ~/.cache/oci2bin): build/ (verified layers), runtimes/ and target/ \
(the runtime, compiled once per target and codec), work/ (its generated crate); the output binaries \
unpack their images under the same root on the machine they run on (images/, runs/). \
`cargo oci2bin cache` shows them, `cargo oci2bin cache prune` empties them."
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
    /// Write a crate of your own that builds an oci2bin executable with plain cargo: its
    /// build.rs embeds the image, its main.rs runs before the container.
    New(NewArgs),
    /// Make an oci2bin executable built another way (a crate from `new`, a --no-polyglot
    /// build) also a tar archive for docker load / podman load.
    Polyglot {
        /// The executable (rewritten in place unless -o is given).
        file: PathBuf,
        /// Write the result here instead.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show the caches (paths and sizes), or prune them.
    Cache(CacheArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), as kept in doc/cargo-oci2bin.1.
    #[command(hide = true)]
    Man,
}

/// Options for `new`.
#[derive(Args, Debug, Clone)]
pub struct NewArgs {
    /// Directory of the new crate (missing or empty).
    pub dir: PathBuf,
    /// The image to embed, as for --image of a build.
    #[arg(long, value_name = "SOURCE")]
    pub image: String,
    /// Package name [default: from the directory name].
    #[arg(long)]
    pub name: Option<String>,
    /// Layer compression: zstd[:1-22] | xz[:0-9] | gzip[:1-9] | none.
    #[arg(long, default_value = "zstd:3", value_name = "CODEC[:LEVEL]")]
    pub compress: String,
}

/// Options for `cache`.
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// What to do (without one: show the caches).
    #[command(subcommand)]
    pub action: Option<CacheAction>,
    /// The cache root [default: $OCI2BIN_CACHE_DIR, else ~/.cache/oci2bin].
    #[arg(long, env = "OCI2BIN_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `cache` actions.
#[derive(Subcommand, Debug, Clone)]
pub enum CacheAction {
    /// Remove cached entries: everything (--all) or what has not been used for a while
    /// (--older-than). Images in use by a running container are kept.
    Prune {
        /// Remove every entry.
        #[arg(
            long,
            conflicts_with = "older_than",
            required_unless_present = "older_than"
        )]
        all: bool,
        /// Remove entries not used for this long: 30s, 90m, 12h, 7d.
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// How a build reports its result.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// Progress and a summary for people, on stderr.
    #[default]
    Human,
    /// One JSON object on stdout when the build succeeds (output path, digests, sizes),
    /// progress on stderr as usual.
    Json,
}

/// Options for building an executable.
#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The image: a registry reference (nginx, host:5000/i:t, ...@sha256:...), oci:DIR[:TAG],
    /// docker-archive:FILE[:NAME:TAG], docker-daemon:NAME or podman:NAME.
    #[arg(long, value_name = "SOURCE")]
    pub image: Option<String>,
    /// The image, as for --image (`cargo oci2bin nginx`).
    #[arg(value_name = "IMAGE", conflicts_with = "image")]
    pub image_arg: Option<String>,
    /// Registry options.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output file [default: derived from the image name, e.g. busybox_latest]. An existing
    /// file is replaced only if an earlier build wrote it (or with --force); directories,
    /// devices and the build's own inputs are refused.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace an existing output file even if it is not an oci2bin executable.
    #[arg(long)]
    pub force: bool,
    /// Allow a dynamically linked runtime (a *-gnu target): the output then needs a
    /// compatible glibc on every machine it runs on.
    #[arg(long)]
    pub allow_dynamic: bool,
    /// Rust target triple [default: the host's *-unknown-linux-musl].
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Image platform os/arch[/variant] [default: from the target].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Layer compression: zstd[:1-22] | xz[:0-9] | gzip[:1-9] | none.
    #[arg(long, default_value = "zstd:3", value_name = "CODEC[:LEVEL]")]
    pub compress: String,
    /// The cache root for layers, runtimes and the shared target directory [default:
    /// $XDG_CACHE_HOME/oci2bin, else ~/.cache/oci2bin].
    #[arg(long, env = "OCI2BIN_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Report the result as JSON on stdout (for scripts), or for people.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, value_name = "FORMAT")]
    pub message_format: MessageFormat,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show cargo's output.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write a plain ELF executable, not the ELF+tar polyglot.
    #[arg(long)]
    pub no_polyglot: bool,
    /// Image edits.
    #[command(flatten)]
    pub edits: Box<crate::edit_args::EditArgs>,
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
    /// The cache root (as for a build).
    #[arg(long, env = "OCI2BIN_CACHE_DIR", value_name = "DIR")]
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

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn the_man_page_in_the_repository_is_up_to_date() {
        let mut page = Vec::new();
        clap_mangen::Man::new(command()).render(&mut page).unwrap();
        let kept = include_str!("../../doc/cargo-oci2bin.1");
        assert!(
            String::from_utf8(page).unwrap() == kept,
            "doc/cargo-oci2bin.1 is stale: regenerate it with `cargo run -p cargo-oci2bin -- oci2bin man > doc/cargo-oci2bin.1`"
        );
    }

    #[test]
    fn the_bash_completion_names_the_subcommands() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command(),
            "cargo-oci2bin",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for sub in ["inspect", "pull", "pack", "cache", "completions"] {
            assert!(script.contains(sub), "no {sub} in the bash completion");
        }
    }

    #[test]
    fn an_image_can_be_given_without_image_and_subcommands_still_win() {
        let cli = Cli::try_parse_from(["cargo-oci2bin", "nginx", "-o", "x"]).unwrap();
        assert_eq!(cli.build.image_arg.as_deref(), Some("nginx"));
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["cargo-oci2bin", "inspect", "file"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Inspect { .. })));
        assert!(Cli::try_parse_from(["cargo-oci2bin", "nginx", "--image", "redis"]).is_err());
    }
}
