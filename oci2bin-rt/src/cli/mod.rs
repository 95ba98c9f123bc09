//! The command line of a generated executable: `./IMAGE_BINARY [OPTIONS] [--] [ARGS...]`.
//!
//! The options are the `docker run` ones that make sense for one image. The first argument
//! that is not an option starts `ARGS`, and everything from there on goes to the container
//! verbatim, so `./busybox_latest ls -la` passes `-la` to `ls`, as `docker run busybox ls
//! -la` does. Before that, a word that looks like an option must be one of ours: anything
//! else is an error (exit 125) that names it, and says so when it is a `docker run` option
//! this runtime lacks, rather than becoming the container's command or reaching the image's
//! entrypoint. `--` ends the options, so `./redis_latest -- --port 6380` hands `--port 6380`
//! to redis (where `docker run redis --port 6380` relies on the image name as the end).
//!
//! `-h` is docker's `--hostname` when a name follows it, and `--help` when nothing or another
//! option follows (`./app -h`); a hostname is checked, so neither reading can silently take
//! the place of the other. `--help` and `-V`/`--version` describe the embedded image.
//!
//! The options are one table (`OPTIONS`) read by the parser and by `--help`, which keeps
//! clap's layout and its wording for the one usage error that can occur (an option without
//! its value). A hand-written parser instead of clap keeps every output binary 135 KB
//! smaller, room the seccomp filter and the confinement code need under the 1 MiB budget.

mod docker;

use crate::confine::policy::SecurityOptions;
use crate::payload::Payload;
use crate::process::ProcessOverrides;
use std::ffi::OsString;
use std::path::PathBuf;

/// The options, as parsed from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cli {
    /// Overwrite the image's ENTRYPOINT (also drops its CMD unless a COMMAND is given)
    pub entrypoint: Option<String>,
    /// Set an environment variable; KEY alone copies it from your environment
    pub env: Vec<OsString>,
    /// Read environment variables from a file (KEY=VALUE per line, # comments)
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (created if missing)
    pub workdir: Option<String>,
    /// User to run as: name, uid, name:group or uid:gid (from the image's /etc/passwd)
    pub user: Option<String>,
    /// Bind mounts and named volumes: `HOST:CONTAINER[:ro|rw]`, `NAME:CONTAINER[:ro|rw]`
    pub volume: Vec<String>,
    /// Mounts in docker's `--mount` syntax (`type=bind|volume|tmpfs,src=,dst=,readonly`)
    pub mount: Vec<String>,
    /// A tmpfs: `PATH[:size=N,mode=M]`
    pub tmpfs: Vec<String>,
    /// The container's hostname (default: its random id)
    pub hostname: Option<String>,
    /// The container's name; without `--rm` its writable layer is kept between runs
    pub name: Option<String>,
    /// Discard the container's writable layer at the end (the default without `--name`)
    pub rm: bool,
    /// Resource limits: `TYPE=SOFT[:HARD]` (nofile, nproc, core, stack, ...)
    pub ulimit: Vec<String>,
    /// The signal `docker stop` would send (SIGTERM to the runtime sends it)
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL
    pub stop_timeout: Option<String>,
    /// Accepted for docker's `--init`: the runtime's init is always pid 1
    pub init: bool,
    /// Show where the cache is and how large its parts are, then exit
    pub cache: bool,
    /// Remove this image's unpacked root from the cache, then exit
    pub prune: bool,
    /// With `--prune`: also the kept containers made from this image
    pub volumes: bool,
    /// Run in the background (with `--name`, or a random one), logging to a file
    pub detach: bool,
    /// List the background containers and exit
    pub ps: bool,
    /// Print the log of this background container and exit
    pub logs: Option<String>,
    /// Stop this background container (as `docker stop`) and exit
    pub stop: Option<String>,
    /// Remove this container's kept layer and background state, then exit
    pub rm_container: Option<String>,
    /// With `--logs`: only the last N lines
    pub tail: Option<String>,
    /// With `--logs`: keep printing while the container runs
    pub follow: bool,
    /// With `--ps`: JSON
    pub json: bool,
    /// Add a capability to the default set (docker's names, e.g. NET_ADMIN; ALL for all)
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (ALL: keep only those added)
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges
    pub security_opt: Vec<String>,
    /// Every capability, no seccomp filter, no masked paths (still in your user namespace)
    pub privileged: bool,
    /// Mount the container's root read-only (with tmpfs on /tmp, /run and /var/tmp)
    pub read_only: bool,
    /// Give the container a terminal of its own (default when stdin and stdout are terminals)
    pub tty: bool,
    /// No terminal for the container even on a terminal (stdin is still passed on)
    pub no_tty: bool,
    /// Keep stdin open (it always is; accepted for docker's -i and -it)
    pub interactive: bool,
    /// Explain on stderr what the runtime does (cache, user mapping, mounts, confinement)
    pub debug: bool,
    /// Print the runtime's and the image's version
    pub version: bool,
    /// Print help
    pub help: bool,
    /// Command and arguments: replace the image's CMD; everything from the first
    /// non-option on is passed to the container unchanged
    pub args: Vec<OsString>,
}

impl Cli {
    /// The security options, for [`crate::confine::policy::Confinement::resolve`].
    pub fn security(&self) -> SecurityOptions {
        SecurityOptions {
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            privileged: self.privileged,
            read_only: self.read_only,
        }
    }

    /// The process overrides these options ask for.
    pub fn overrides(&self) -> ProcessOverrides {
        ProcessOverrides {
            entrypoint: self.entrypoint.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
        }
    }
}

/// What `--help` and `--version` say about the embedded image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image name (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// Manifest digest: what `docker pull NAME@DIGEST` would fetch.
    pub manifest_digest: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Default command: entrypoint and cmd, shell-quoted.
    pub default_command: String,
    /// Version of oci2bin that built the binary.
    pub built_by: String,
}

/// Quotes a word for display if it has characters a shell would split or expand.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

impl ImageInfo {
    /// Collects the information from a parsed payload.
    pub fn from_payload(payload: &Payload<'_>) -> Self {
        let config = payload.config.config().as_ref();
        let words: Vec<String> = config
            .into_iter()
            .flat_map(|c| {
                c.entrypoint()
                    .iter()
                    .flatten()
                    .chain(c.cmd().iter().flatten())
            })
            .map(|w| quote(w))
            .collect();
        let platform = if payload.metadata.platform.is_empty() {
            let c = &payload.config;
            match c.variant() {
                Some(v) => format!("{}/{}/{v}", c.os(), c.architecture()),
                None => format!("{}/{}", c.os(), c.architecture()),
            }
        } else {
            payload.metadata.platform.clone()
        };
        ImageInfo {
            reference: payload.metadata.reference.clone(),
            manifest_digest: payload.manifest_digest.to_string(),
            platform,
            default_command: words.join(" "),
            built_by: payload.metadata.oci2bin_version.clone(),
        }
    }

    /// The `--version` text.
    pub fn version_text(&self, program: &str) -> String {
        format!(
            "{program}: oci2bin runtime {}, image {}@{} ({}), built by oci2bin {}",
            env!("CARGO_PKG_VERSION"),
            self.reference,
            self.manifest_digest,
            self.platform,
            self.built_by
        )
    }
}

/// What an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    /// Nothing: a flag.
    Nothing,
    /// One value (`--opt V`, `--opt=V`, `-oV`); may repeat where the field is a list.
    Value(&'static str),
}

/// Which field of [`Cli`] an option sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Entrypoint,
    Env,
    EnvFile,
    Workdir,
    User,
    Volume,
    Mount,
    Tmpfs,
    Hostname,
    Name,
    Rm,
    Ulimit,
    StopSignal,
    StopTimeout,
    Init,
    Cache,
    Prune,
    Volumes,
    Detach,
    Ps,
    Logs,
    Stop,
    RmContainer,
    Tail,
    Follow,
    Json,
    CapAdd,
    CapDrop,
    SecurityOpt,
    Privileged,
    ReadOnly,
    Tty,
    NoTty,
    Interactive,
    Debug,
    Version,
    Help,
}

/// One option of the runtime: its spellings, its value and its line in `--help`.
struct Opt {
    long: &'static str,
    short: Option<char>,
    takes: Takes,
    help: &'static str,
    field: Field,
}

/// Every option, in `--help` order. The table is the one definition of the command line:
/// the parser, the splitter that finds where the container's arguments start, and `--help`
/// all read it (a hand-written parser keeps clap's 135 KB out of every output binary).
const OPTIONS: [Opt; 37] = [
    Opt {
        long: "entrypoint",
        short: None,
        takes: Takes::Value("COMMAND"),
        field: Field::Entrypoint,
        help: "Overwrite the image's ENTRYPOINT (also drops its CMD unless a COMMAND is given)",
    },
    Opt {
        long: "env",
        short: Some('e'),
        takes: Takes::Value("KEY[=VALUE]"),
        field: Field::Env,
        help: "Set an environment variable; KEY alone copies it from your environment",
    },
    Opt {
        long: "env-file",
        short: None,
        takes: Takes::Value("FILE"),
        field: Field::EnvFile,
        help: "Read environment variables from a file (KEY=VALUE per line, # comments)",
    },
    Opt {
        long: "workdir",
        short: Some('w'),
        takes: Takes::Value("DIR"),
        field: Field::Workdir,
        help: "Working directory inside the container (created if missing)",
    },
    Opt {
        long: "user",
        short: Some('u'),
        takes: Takes::Value("USER[:GROUP]"),
        field: Field::User,
        help: "User to run as: name, uid, name:group or uid:gid (from the image's /etc/passwd)",
    },
    Opt {
        long: "volume",
        short: Some('v'),
        takes: Takes::Value("SRC:DST[:ro]"),
        field: Field::Volume,
        help: "Bind-mount the host path SRC (absolute; created if missing) or the named volume SRC on DST",
    },
    Opt {
        long: "mount",
        short: None,
        takes: Takes::Value("SPEC"),
        field: Field::Mount,
        help: "type=bind|volume|tmpfs,src=SRC,dst=DST[,readonly] (a bind's SRC must exist)",
    },
    Opt {
        long: "tmpfs",
        short: None,
        takes: Takes::Value("PATH[:OPTS]"),
        field: Field::Tmpfs,
        help: "Mount a tmpfs on PATH (OPTS: size=64m,mode=1777; default size 25% of RAM)",
    },
    Opt {
        long: "read-only",
        short: None,
        takes: Takes::Nothing,
        field: Field::ReadOnly,
        help: "Mount the container's root read-only (with tmpfs on /tmp, /run and /var/tmp)",
    },
    Opt {
        long: "hostname",
        short: Some('h'),
        takes: Takes::Value("NAME"),
        field: Field::Hostname,
        help: "The container's hostname (default: its random id); -h alone prints this help",
    },
    Opt {
        long: "name",
        short: None,
        takes: Takes::Value("NAME"),
        field: Field::Name,
        help: "Name the container: without --rm its changes are kept for the next run with NAME",
    },
    Opt {
        long: "rm",
        short: None,
        takes: Takes::Nothing,
        field: Field::Rm,
        help: "Discard the container's changes when it ends (the default without --name)",
    },
    Opt {
        long: "ulimit",
        short: None,
        takes: Takes::Value("TYPE=SOFT[:HARD]"),
        field: Field::Ulimit,
        help: "Set a resource limit: nofile, nproc, core, stack, memlock, fsize, cpu, ...",
    },
    Opt {
        long: "stop-signal",
        short: None,
        takes: Takes::Value("SIGNAL"),
        field: Field::StopSignal,
        help: "Signal the workload gets when the runtime gets SIGTERM (default: the image's, else SIGTERM)",
    },
    Opt {
        long: "stop-timeout",
        short: None,
        takes: Takes::Value("SECONDS"),
        field: Field::StopTimeout,
        help: "Seconds after the stop signal before SIGKILL (default 10; -1: never)",
    },
    Opt {
        long: "init",
        short: None,
        takes: Takes::Nothing,
        field: Field::Init,
        help: "Accepted for docker: an init that forwards signals and reaps is always pid 1",
    },
    Opt {
        long: "cap-add",
        short: None,
        takes: Takes::Value("CAP"),
        field: Field::CapAdd,
        help: "Add a capability to the default set (docker's names, e.g. NET_ADMIN; ALL for all)",
    },
    Opt {
        long: "cap-drop",
        short: None,
        takes: Takes::Value("CAP"),
        field: Field::CapDrop,
        help: "Drop a capability from the default set (ALL: keep only those added)",
    },
    Opt {
        long: "security-opt",
        short: None,
        takes: Takes::Value("OPT"),
        field: Field::SecurityOpt,
        help: "seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges",
    },
    Opt {
        long: "privileged",
        short: None,
        takes: Takes::Nothing,
        field: Field::Privileged,
        help: "Every capability, no seccomp filter, no masked paths (still in your user namespace)",
    },
    Opt {
        long: "tty",
        short: Some('t'),
        takes: Takes::Nothing,
        field: Field::Tty,
        help:
            "Give the container a terminal of its own (default when stdin and stdout are terminals)",
    },
    Opt {
        long: "no-tty",
        short: None,
        takes: Takes::Nothing,
        field: Field::NoTty,
        help: "No terminal for the container even on a terminal (stdin is still passed on)",
    },
    Opt {
        long: "interactive",
        short: Some('i'),
        takes: Takes::Nothing,
        field: Field::Interactive,
        help: "Keep stdin open (it always is; accepted for docker's -i and -it)",
    },
    Opt {
        long: "detach",
        short: Some('d'),
        takes: Takes::Nothing,
        field: Field::Detach,
        help: "Run in the background: prints the name (--name, else a random one), logs to a file",
    },
    Opt {
        long: "ps",
        short: None,
        takes: Takes::Nothing,
        field: Field::Ps,
        help: "List the background containers: name, status, pid, uptime, command (--json)",
    },
    Opt {
        long: "logs",
        short: None,
        takes: Takes::Value("NAME"),
        field: Field::Logs,
        help: "Print a background container's stdout and stderr (--tail N, -f to follow)",
    },
    Opt {
        long: "stop",
        short: None,
        takes: Takes::Value("NAME"),
        field: Field::Stop,
        help: "Stop a background container as docker stop does (--stop-timeout N: SIGKILL after N s)",
    },
    Opt {
        long: "rm-container",
        short: None,
        takes: Takes::Value("NAME"),
        field: Field::RmContainer,
        help: "Remove a stopped container: its kept changes (--name) and its background state",
    },
    Opt {
        long: "tail",
        short: None,
        takes: Takes::Value("N"),
        field: Field::Tail,
        help: "With --logs: only the last N lines",
    },
    Opt {
        long: "follow",
        short: Some('f'),
        takes: Takes::Nothing,
        field: Field::Follow,
        help: "With --logs: keep printing while the container runs",
    },
    Opt {
        long: "json",
        short: None,
        takes: Takes::Nothing,
        field: Field::Json,
        help: "With --ps: one JSON array",
    },
    Opt {
        long: "cache",
        short: None,
        takes: Takes::Nothing,
        field: Field::Cache,
        help: "Show where the cache is and the size of its parts (images, runs, containers, volumes)",
    },
    Opt {
        long: "prune",
        short: None,
        takes: Takes::Nothing,
        field: Field::Prune,
        help: "Remove this image's unpacked root from the cache (named volumes are never removed)",
    },
    Opt {
        long: "volumes",
        short: None,
        takes: Takes::Nothing,
        field: Field::Volumes,
        help: "With --prune: also remove the kept containers (--name) made from this image",
    },
    Opt {
        long: "debug",
        short: None,
        takes: Takes::Nothing,
        field: Field::Debug,
        help: "Explain on stderr what the runtime does (cache, user mapping, mounts, confinement)",
    },
    Opt {
        long: "version",
        short: Some('V'),
        takes: Takes::Nothing,
        field: Field::Version,
        help: "Print the runtime's and the image's version",
    },
    Opt {
        long: "help",
        short: None,
        takes: Takes::Nothing,
        field: Field::Help,
        help: "Print help",
    },
];

/// `--env <KEY[=VALUE]>`: the long spelling with its value, as in help and errors.
fn long_label(opt: &Opt) -> String {
    match opt.takes {
        Takes::Nothing => format!("--{}", opt.long),
        Takes::Value(name) => format!("--{} <{name}>", opt.long),
    }
}

/// The left column of an option's help line.
fn opt_label(opt: &Opt) -> String {
    match opt.short {
        Some(c) => format!("-{c}, {}", long_label(opt)),
        None => format!("    {}", long_label(opt)),
    }
}

/// The help line of the container's arguments.
const ARGS_LABEL: &str = "[COMMAND]...";
/// What the container's arguments do.
const ARGS_HELP: &str = "Command and arguments: replace the image's CMD; everything from the first non-option on is passed to the container unchanged";

/// The `--help` text: clap's layout, plus the embedded image's details.
pub fn help_text(program: &str, image: &ImageInfo) -> String {
    let width = OPTIONS
        .iter()
        .map(|o| opt_label(o).len())
        .max()
        .unwrap_or(0);
    let mut options = String::from("Options:\n");
    for opt in &OPTIONS {
        options.push_str(&format!("  {:width$}  {}\n", opt_label(opt), opt.help));
    }
    let mut out = format!(
        "Runs the container image {} like `docker run`, rootless, with the host's network\n\n\
         Usage: {program} [OPTIONS] [--] [COMMAND [ARG...]]\n\nArguments:\n  {ARGS_LABEL}  {ARGS_HELP}\n\n{options}",
        image.reference,
    );
    let default = if image.default_command.is_empty() {
        "(none: give a COMMAND)"
    } else {
        &image.default_command
    };
    out.push_str(&format!(
        "\nImage:\n  name:      {}\n  digest:    {}\n  platform:  {}\n  command:   {default}\n  \
         built by:  oci2bin {}\n",
        image.reference, image.manifest_digest, image.platform, image.built_by
    ));
    out
}

/// A command-line mistake, worded as clap words its own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("error: {0}\n\nFor more information, try '--help'.\n")]
pub struct UsageError(pub String);

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run the container (boxed: the options are large, the text is not).
    Run(Box<Cli>),
    /// Print this text on stdout and exit 0 (`--help`, `--version`).
    Print(String),
}

/// The option `word` spells, and the value attached to it (`--env=A`, `-eA`), if any.
fn our_option(word: &str) -> Option<(&'static Opt, Option<&str>)> {
    if let Some(rest) = word.strip_prefix("--") {
        let (name, value) = match rest.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        let opt = OPTIONS.iter().find(|o| o.long == name)?;
        // `--debug=x` is not ours: a flag takes no value.
        return (value.is_none() || opt.takes != Takes::Nothing).then_some((opt, value));
    }
    let mut chars = word.strip_prefix('-')?.chars();
    let c = chars.next()?;
    let rest = chars.as_str();
    let opt = OPTIONS.iter().find(|o| o.short == Some(c))?;
    match (rest.is_empty(), opt.takes) {
        (true, _) => Some((opt, None)),
        (false, Takes::Value(_)) => Some((opt, Some(rest))),
        (false, Takes::Nothing) => None,
    }
}

/// `-it` as `-i -t`: a word of two or more short options that all take no value.
fn combined_flags(word: &str) -> Option<Vec<&'static Opt>> {
    let shorts = word
        .strip_prefix('-')
        .filter(|r| r.len() > 1 && !r.starts_with('-'))?;
    shorts
        .chars()
        .map(|c| {
            OPTIONS
                .iter()
                .find(|o| o.short == Some(c) && o.takes == Takes::Nothing)
        })
        .collect()
}

/// Sets `field` of `cli` from an option (with its value for those that take one).
fn set(cli: &mut Cli, field: Field, value: Option<OsString>) -> Result<(), UsageError> {
    let raw = value.unwrap_or_default();
    match field {
        Field::Env => cli.env.push(raw),
        Field::EnvFile => cli.env_file.push(PathBuf::from(raw)),
        // One conversion for every option whose value is text (flags have an empty one).
        _ => set_text(
            cli,
            field,
            raw.into_string()
                .map_err(|v| UsageError(format!("invalid UTF-8 in the value {v:?}")))?,
        )?,
    }
    Ok(())
}

/// [`set`] for the options whose value is text.
fn set_text(cli: &mut Cli, field: Field, text: String) -> Result<(), UsageError> {
    match field {
        Field::Entrypoint => cli.entrypoint = Some(text),
        Field::Workdir => cli.workdir = Some(text),
        Field::User => cli.user = Some(text),
        Field::Volume => cli.volume.push(text),
        Field::Mount => cli.mount.push(text),
        Field::Tmpfs => cli.tmpfs.push(text),
        Field::Hostname => cli.hostname = Some(check_hostname(text)?),
        Field::Name => cli.name = Some(check_name(text)?),
        Field::Rm => cli.rm = true,
        Field::Ulimit => cli.ulimit.push(text),
        Field::StopSignal => cli.stop_signal = Some(text),
        Field::StopTimeout => cli.stop_timeout = Some(text),
        Field::Init => cli.init = true,
        Field::Cache => cli.cache = true,
        Field::Prune => cli.prune = true,
        Field::Volumes => cli.volumes = true,
        Field::Detach => cli.detach = true,
        Field::Ps => cli.ps = true,
        Field::Logs => cli.logs = Some(check_name(text)?),
        Field::Stop => cli.stop = Some(check_name(text)?),
        Field::RmContainer => cli.rm_container = Some(check_name(text)?),
        Field::Tail => cli.tail = Some(text),
        Field::Follow => cli.follow = true,
        Field::Json => cli.json = true,
        Field::CapAdd => cli.cap_add.push(text),
        Field::CapDrop => cli.cap_drop.push(text),
        Field::SecurityOpt => cli.security_opt.push(text),
        Field::Privileged => cli.privileged = true,
        Field::ReadOnly => cli.read_only = true,
        Field::Tty => cli.tty = true,
        Field::NoTty => cli.no_tty = true,
        Field::Interactive => cli.interactive = true,
        Field::Debug => cli.debug = true,
        Field::Version => cli.version = true,
        Field::Help => cli.help = true,
        Field::Env | Field::EnvFile => {}
    }
    Ok(())
}

/// A hostname as the kernel and resolvers accept it: 1 to 63 letters, digits, `-` and `.`,
/// not starting with `-` (so `-h --debug` is never a hostname).
fn check_hostname(name: String) -> Result<String, UsageError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(name)
    } else {
        Err(UsageError(format!(
            "invalid hostname {name:?}: use 1 to 63 letters, digits, '-' and '.' (not first)"
        )))
    }
}

/// A container name as docker accepts it (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), which also makes
/// it a safe directory name in the cache.
pub fn check_name(name: String) -> Result<String, UsageError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= 128
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(UsageError(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// The error for a word before the command that looks like an option but is not one of ours.
fn unknown_option(word: &str) -> UsageError {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    let ours = OPTIONS
        .iter()
        .any(|o| name.strip_prefix("--") == Some(o.long));
    let what = match docker::unsupported_docker_option(word) {
        _ if ours => format!("option '{name}' takes no value"),
        Some(long) => format!(
            "'{name}' is a `docker run` option (--{long}) that this runtime does not support"
        ),
        None => format!("unknown option '{name}'"),
    };
    UsageError(format!(
        "{what}\n\n  Options must be the runtime's (see --help). To pass '{name}' to the \
         container's command or entrypoint, put it after --: [OPTIONS] -- {word} ..."
    ))
}

/// Whether `word` is an option-like word: `-x`, `--xyz` (but not `-` alone).
fn looks_like_option(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-')
}

/// Parses the runtime's options up to the first argument that is not an option (or `--`);
/// that argument and everything after it are the container's command, verbatim.
fn parse_options(args: Vec<OsString>) -> Result<Cli, UsageError> {
    let mut cli = Cli::default();
    let mut it = args.into_iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let Some(word) = arg.to_str() else {
            if arg.as_encoded_bytes().starts_with(b"-") {
                return Err(UsageError(format!("unknown option {arg:?}")));
            }
            cli.args.push(arg);
            break;
        };
        if word == "--" {
            break;
        }
        if !looks_like_option(word) {
            cli.args.push(arg);
            break;
        }
        // `-h` with no name after it asks for help (a name never starts with `-`).
        if word == "-h"
            && it
                .peek()
                .and_then(|n| n.to_str())
                .is_none_or(looks_like_option)
        {
            cli.help = true;
            continue;
        }
        if let Some(flags) = combined_flags(word) {
            for opt in flags {
                set(&mut cli, opt.field, None)?;
            }
            continue;
        }
        let Some((opt, attached)) = our_option(word) else {
            return Err(unknown_option(word));
        };
        let value = match (opt.takes, attached) {
            (Takes::Nothing, _) => None,
            (Takes::Value(_), Some(v)) => Some(OsString::from(v)),
            // The next word is the value, even if it looks like an option (`-e --x`).
            (Takes::Value(_), None) => Some(it.next().ok_or_else(|| {
                UsageError(format!(
                    "a value is required for '{}' but none was supplied",
                    long_label(opt)
                ))
            })?),
        };
        set(&mut cli, opt.field, value)?;
    }
    cli.args.extend(it);
    Ok(cli)
}

/// Parses `args` (including `argv[0]`): the options to run with, or the text `--help` or
/// `--version` print. `image` is only called for those two (reading the image's metadata
/// is wasted work on every normal start).
pub fn parse(
    program: &str,
    image: &dyn Fn() -> ImageInfo,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Invocation, UsageError> {
    let cli = parse_options(args.into_iter().collect())?;
    if cli.help {
        return Ok(Invocation::Print(help_text(program, &image())));
    }
    if cli.version {
        return Ok(Invocation::Print(format!(
            "{}\n",
            image().version_text(program)
        )));
    }
    Ok(Invocation::Run(Box::new(cli)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageInfo {
        ImageInfo {
            reference: "docker.io/library/busybox:latest".into(),
            manifest_digest: "sha256:abc".into(),
            platform: "linux/amd64".into(),
            default_command: "sh".into(),
            built_by: "0.1.0".into(),
        }
    }

    fn run(args: &[&str]) -> Cli {
        let args = std::iter::once("busybox_latest")
            .chain(args.iter().copied())
            .map(OsString::from);
        match parse("busybox_latest", &image, args).unwrap() {
            Invocation::Run(cli) => *cli,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn first_non_option_starts_verbatim_args() {
        let cli = run(&["ls", "-la"]);
        assert_eq!(cli.args, os(&["ls", "-la"]));
        let cli = run(&["-e", "A=1", "--debug", "sh", "-c", "echo --help -e x"]);
        assert_eq!(cli.env, os(&["A=1"]));
        assert!(cli.debug);
        assert_eq!(cli.args, os(&["sh", "-c", "echo --help -e x"]));
        let cli = run(&["--", "--weird", "-x"]);
        assert_eq!(cli.args, os(&["--weird", "-x"]));
        let cli = run(&["ls", "--", "x"]);
        assert_eq!(cli.args, os(&["ls", "--", "x"]));
    }

    #[test]
    fn all_options() {
        let cli = run(&[
            "--entrypoint",
            "/bin/sh",
            "-e",
            "A=1",
            "--env=B",
            "--env-file",
            "/e1",
            "--env-file=/e2",
            "-w",
            "/work",
            "-u",
            "1000:1000",
        ]);
        let o = cli.overrides();
        assert_eq!(o.entrypoint.as_deref(), Some("/bin/sh"));
        assert_eq!(o.env, os(&["A=1", "B"]));
        assert_eq!(
            o.env_files,
            vec![PathBuf::from("/e1"), PathBuf::from("/e2")]
        );
        assert_eq!(o.workdir.as_deref(), Some("/work"));
        assert_eq!(o.user.as_deref(), Some("1000:1000"));
        assert!(o.args.is_empty());
        let cli = run(&["--workdir=/w", "--user", "redis"]);
        assert_eq!(cli.workdir.as_deref(), Some("/w"));
        assert_eq!(cli.user.as_deref(), Some("redis"));
    }

    #[test]
    fn help_and_version_describe_the_image() {
        let args = os(&["busybox_latest", "--help"]);
        let Invocation::Print(help) = parse("busybox_latest", &image, args).unwrap() else {
            panic!("help expected")
        };
        assert!(help.contains("docker.io/library/busybox:latest"), "{help}");
        assert!(help.contains("sha256:abc"), "{help}");
        assert!(help.contains("linux/amd64"), "{help}");
        assert!(help.contains("Usage: busybox_latest [OPTIONS]"), "{help}");
        let args = os(&["busybox_latest", "--version"]);
        let Invocation::Print(version) = parse("busybox_latest", &image, args).unwrap() else {
            panic!("version expected")
        };
        assert!(
            version.contains("docker.io/library/busybox:latest@sha256:abc"),
            "{version}"
        );
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    }

    fn usage_error(args: &[&str]) -> String {
        let args = std::iter::once("bb").chain(args.iter().copied());
        parse("bb", &image, args.map(OsString::from))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn options_that_are_not_ours_are_errors_before_the_command() {
        let err = usage_error(&["--port", "6380"]);
        assert!(err.starts_with("error: unknown option '--port'\n"), "{err}");
        assert!(err.contains("-- --port ..."), "{err}");
        let err = usage_error(&["--network=none", "ls"]);
        assert!(
            err.contains("'--network' is a `docker run` option (--network) that this runtime does not support"),
            "{err}"
        );
        let err = usage_error(&["-p", "80:80"]);
        assert!(err.contains("(--publish)"), "{err}");
        let err = usage_error(&["--debug=yes"]);
        assert!(err.contains("option '--debug' takes no value"), "{err}");
        // After the command or `--`, everything is the container's.
        let cli = run(&["--debug", "-eA=1", "--", "--appendonly", "yes", "--debug"]);
        assert!(cli.debug);
        assert_eq!(cli.env, os(&["A=1"]));
        assert_eq!(cli.args, os(&["--appendonly", "yes", "--debug"]));
        let cli = run(&["redis-server", "--port", "1"]);
        assert_eq!(cli.args, os(&["redis-server", "--port", "1"]));
        // `-` alone is a word, not an option.
        assert_eq!(run(&["-"]).args, os(&["-"]));
        // A value that looks like an option stays a value.
        let cli = run(&["-e", "--x", "ls"]);
        assert_eq!(cli.env, os(&["--x"]));
        assert_eq!(cli.args, os(&["ls"]));
        // A missing value is an error worded as clap's.
        for (arg, label) in [
            ("--workdir", "--workdir <DIR>"),
            ("-e", "--env <KEY[=VALUE]>"),
        ] {
            let args = os(&["busybox_latest", "--debug", arg]);
            let err = parse("busybox_latest", &image, args).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("error: a value is required for '{label}' but none was supplied\n\nFor more information, try '--help'.\n")
            );
        }
    }

    #[test]
    fn dash_h_is_the_hostname_with_a_name_and_help_without() {
        let cli = run(&["-h", "web1", "hostname"]);
        assert_eq!(cli.hostname.as_deref(), Some("web1"));
        assert_eq!(cli.args, os(&["hostname"]));
        assert_eq!(
            run(&["--hostname=db.local"]).hostname.as_deref(),
            Some("db.local")
        );
        for args in [&["-h"][..], &["-e", "A", "-h"], &["-h", "--debug"]] {
            let all = std::iter::once("bb").chain(args.iter().copied());
            let got = parse("bb", &image, all.map(OsString::from)).unwrap();
            assert!(
                matches!(got, Invocation::Print(ref t) if t.contains("Usage: bb")),
                "{args:?}"
            );
        }
        let err = usage_error(&["--hostname", "a b"]);
        assert!(err.contains("invalid hostname \"a b\""), "{err}");
        let err = usage_error(&["--name", "../x"]);
        assert!(err.contains("invalid container name"), "{err}");
        let args = os(&["bb", "-V"]);
        assert!(
            matches!(parse("bb", &image, args).unwrap(), Invocation::Print(t) if t.contains("oci2bin runtime"))
        );
    }

    #[test]
    fn new_docker_options() {
        let cli = run(&[
            "-v",
            "/a:/b:ro",
            "--volume=data:/d",
            "--mount",
            "type=bind,src=/x,dst=/y",
            "--tmpfs",
            "/t:size=1m",
            "--name",
            "web",
            "--rm",
            "--ulimit",
            "nofile=10:20",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout=3",
            "--init",
            "true",
        ]);
        assert_eq!(cli.volume, ["/a:/b:ro", "data:/d"]);
        assert_eq!(cli.mount, ["type=bind,src=/x,dst=/y"]);
        assert_eq!(cli.tmpfs, ["/t:size=1m"]);
        assert_eq!(cli.name.as_deref(), Some("web"));
        assert!(cli.rm && cli.init);
        assert_eq!(cli.ulimit, ["nofile=10:20"]);
        assert_eq!(cli.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(cli.stop_timeout.as_deref(), Some("3"));
        assert_eq!(cli.args, os(&["true"]));
    }

    #[test]
    fn help_reads_like_clap_help() {
        let expected = "\
Runs the container image docker.io/library/busybox:latest like `docker run`, rootless, with the host's network

Usage: bb [OPTIONS] [--] [COMMAND [ARG...]]

Arguments:
  [COMMAND]...  Command and arguments: replace the image's CMD; everything from the first non-option on is passed to the container unchanged

Options:
      --entrypoint <COMMAND>       Overwrite the image's ENTRYPOINT (also drops its CMD unless a COMMAND is given)
  -e, --env <KEY[=VALUE]>          Set an environment variable; KEY alone copies it from your environment
      --env-file <FILE>            Read environment variables from a file (KEY=VALUE per line, # comments)
  -w, --workdir <DIR>              Working directory inside the container (created if missing)
  -u, --user <USER[:GROUP]>        User to run as: name, uid, name:group or uid:gid (from the image's /etc/passwd)
  -v, --volume <SRC:DST[:ro]>      Bind-mount the host path SRC (absolute; created if missing) or the named volume SRC on DST
      --mount <SPEC>               type=bind|volume|tmpfs,src=SRC,dst=DST[,readonly] (a bind's SRC must exist)
      --tmpfs <PATH[:OPTS]>        Mount a tmpfs on PATH (OPTS: size=64m,mode=1777; default size 25% of RAM)
      --read-only                  Mount the container's root read-only (with tmpfs on /tmp, /run and /var/tmp)
  -h, --hostname <NAME>            The container's hostname (default: its random id); -h alone prints this help
      --name <NAME>                Name the container: without --rm its changes are kept for the next run with NAME
      --rm                         Discard the container's changes when it ends (the default without --name)
      --ulimit <TYPE=SOFT[:HARD]>  Set a resource limit: nofile, nproc, core, stack, memlock, fsize, cpu, ...
      --stop-signal <SIGNAL>       Signal the workload gets when the runtime gets SIGTERM (default: the image's, else SIGTERM)
      --stop-timeout <SECONDS>     Seconds after the stop signal before SIGKILL (default 10; -1: never)
      --init                       Accepted for docker: an init that forwards signals and reaps is always pid 1
      --cap-add <CAP>              Add a capability to the default set (docker's names, e.g. NET_ADMIN; ALL for all)
      --cap-drop <CAP>             Drop a capability from the default set (ALL: keep only those added)
      --security-opt <OPT>         seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges
      --privileged                 Every capability, no seccomp filter, no masked paths (still in your user namespace)
  -t, --tty                        Give the container a terminal of its own (default when stdin and stdout are terminals)
      --no-tty                     No terminal for the container even on a terminal (stdin is still passed on)
  -i, --interactive                Keep stdin open (it always is; accepted for docker's -i and -it)
  -d, --detach                     Run in the background: prints the name (--name, else a random one), logs to a file
      --ps                         List the background containers: name, status, pid, uptime, command (--json)
      --logs <NAME>                Print a background container's stdout and stderr (--tail N, -f to follow)
      --stop <NAME>                Stop a background container as docker stop does (--stop-timeout N: SIGKILL after N s)
      --rm-container <NAME>        Remove a stopped container: its kept changes (--name) and its background state
      --tail <N>                   With --logs: only the last N lines
  -f, --follow                     With --logs: keep printing while the container runs
      --json                       With --ps: one JSON array
      --cache                      Show where the cache is and the size of its parts (images, runs, containers, volumes)
      --prune                      Remove this image's unpacked root from the cache (named volumes are never removed)
      --volumes                    With --prune: also remove the kept containers (--name) made from this image
      --debug                      Explain on stderr what the runtime does (cache, user mapping, mounts, confinement)
  -V, --version                    Print the runtime's and the image's version
      --help                       Print help

Image:
  name:      docker.io/library/busybox:latest
  digest:    sha256:abc
  platform:  linux/amd64
  command:   sh
  built by:  oci2bin 0.1.0
";
        assert_eq!(help_text("bb", &image()), expected);
        let args = os(&["bb", "-e", "A=1", "-h"]);
        assert_eq!(
            parse("bb", &image, args).unwrap(),
            Invocation::Print(expected.into())
        );
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(quote("redis-server"), "redis-server");
        assert_eq!(quote("echo hi"), "'echo hi'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn combined_short_flags_like_docker_it() {
        let cli = run(&["-it", "sh"]);
        assert!(cli.tty && cli.interactive);
        assert_eq!(cli.args, os(&["sh"]));
        // Not all ours: an unknown option, not the container's command.
        let err = usage_error(&["-ix", "sh"]);
        assert!(err.contains("unknown option '-ix'"), "{err}");
    }
}
