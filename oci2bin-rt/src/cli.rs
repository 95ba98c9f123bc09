//! The command line of a generated executable: `./IMAGE_BINARY [OPTIONS] [--] [ARGS...]`.
//!
//! The options are the `docker run` ones that make sense for one image. The first argument
//! that is not one of them starts `ARGS`, and everything from there on goes to the container
//! verbatim, so `./busybox_latest ls -la` passes `-la` to `ls`, as `docker run busybox ls
//! -la` does, and `./redis_latest --port 6380` passes `--port 6380` to redis, as `docker run
//! redis --port 6380` does. `--help` and `--version` describe the embedded image.
//!
//! clap parses (the options are declared once, with derive); `--help` is rendered here from
//! clap's own argument metadata. clap's generic help, usage and error-context renderers are
//! left out of the runtime (about 45 KB of every binary), and the one usage error that
//! can occur, an option without its value, is reported here with clap's wording.

use crate::confine::policy::SecurityOptions;
use crate::payload::Payload;
use crate::process::ProcessOverrides;
use clap::{CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

/// The options, as clap parses them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Parser)]
#[command(disable_version_flag = true, disable_help_flag = true)]
pub struct Cli {
    /// Overwrite the image's ENTRYPOINT (also drops its CMD unless a COMMAND is given)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// Set an environment variable; KEY alone copies it from your environment
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<OsString>,
    /// Read environment variables from a file (KEY=VALUE per line, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (created if missing)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name, uid, name:group or uid:gid (from the image's /etc/passwd)
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Add a capability to the default set (docker's names, e.g. NET_ADMIN; ALL for all)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (ALL: keep only those added)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Every capability, no seccomp filter, no masked paths (still in your user namespace)
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root read-only (with tmpfs on /tmp, /run and /var/tmp)
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give the container a terminal of its own (default when stdin and stdout are terminals)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// No terminal for the container even on a terminal (stdin is still passed on)
    #[arg(long = "no-tty")]
    pub no_tty: bool,
    /// Keep stdin open (it always is; accepted for docker's -i and -it)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Explain on stderr what the runtime does (cache, user mapping, mounts, confinement)
    #[arg(long)]
    pub debug: bool,
    /// Print the runtime's and the image's version
    #[arg(long)]
    pub version: bool,
    /// Print help
    #[arg(short = 'h', long)]
    pub help: bool,
    /// Command and arguments: replace the image's CMD; everything from the first
    /// non-option on is passed to the container unchanged
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
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

/// An option as clap names it in messages: `--env <KEY[=VALUE]>`, `--debug`.
fn long_label(arg: &clap::Arg) -> String {
    let mut label = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
    let value_names = arg.get_value_names().filter(|_| takes_value(arg));
    for name in value_names.into_iter().flatten() {
        label.push_str(&format!(" <{name}>"));
    }
    label
}

/// The left column of `--help` for `arg`: `-e, --env <KEY[=VALUE]>`, `    --debug`,
/// `[COMMAND]...`.
fn arg_label(arg: &clap::Arg) -> String {
    if arg.is_positional() {
        let name = arg
            .get_value_names()
            .and_then(|n| n.first())
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        return format!("[{name}]...");
    }
    match arg.get_short() {
        Some(c) => format!("-{c}, {}", long_label(arg)),
        None => format!("    {}", long_label(arg)),
    }
}

/// The `--help` text: what the image is, the usage line, every option (from the same clap
/// definitions that parse them) and the image's details.
pub fn help_text(program: &str, image: &ImageInfo) -> String {
    let cmd = Cli::command();
    // One section each for positionals and options, each aligned on its own, as clap does.
    let section = |title: &str, positional: bool| {
        let args: Vec<&clap::Arg> = cmd
            .get_arguments()
            .filter(|a| a.is_positional() == positional)
            .collect();
        let width = args.iter().map(|a| arg_label(a).len()).max().unwrap_or(0);
        let mut out = format!("{title}:\n");
        for a in args {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            out.push_str(&format!("  {:width$}  {help}\n", arg_label(a)));
        }
        out
    };
    let mut out = format!(
        "Runs the container image {} like `docker run --rm`, rootless, with the host's network\n\n\
         Usage: {program} [OPTIONS] [--] [COMMAND [ARG...]]\n\n{}\n{}",
        image.reference,
        section("Arguments", true),
        section("Options", false)
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
    /// Run the container.
    Run(Cli),
    /// Print this text on stdout and exit 0 (`--help`, `--version`).
    Print(String),
}

/// Whether `arg` takes a value (as opposed to a flag).
fn takes_value(arg: &clap::Arg) -> bool {
    !matches!(
        arg.get_action(),
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
    )
}

/// The option of `cmd` that `word` is (`--env`, `-e`) or starts with its value attached
/// (`--env=X`, `-eX`), and whether the value is attached.
fn our_option<'c>(cmd: &'c clap::Command, word: &str) -> Option<(&'c clap::Arg, bool)> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional())
        .find_map(|a| {
            let long = a
                .get_long()
                .and_then(|l| word.strip_prefix("--")?.strip_prefix(l));
            if let Some(rest) = long {
                return match rest {
                    "" => Some((a, false)),
                    _ => (rest.starts_with('=') && takes_value(a)).then_some((a, true)),
                };
            }
            let rest = word.strip_prefix('-')?.strip_prefix(a.get_short()?)?;
            match rest {
                "" => Some((a, false)),
                // -eA=1, -w/dir, -u1000
                _ => takes_value(a).then_some((a, true)),
            }
        })
}

/// Splits the arguments where the container's start: at `--`, at the first non-option, or
/// at the first option that is not one of `cmd`'s, and puts a `--` there for clap. An option
/// that needs a value and is last is an error.
/// `-it` as `-i -t`: a word of two or more short options that all take no value.
fn combined_flags(cmd: &clap::Command, word: &str) -> Option<Vec<String>> {
    let shorts = word
        .strip_prefix('-')
        .filter(|r| r.len() > 1 && !r.starts_with('-'))?;
    shorts
        .chars()
        .map(|c| {
            cmd.get_arguments()
                .find(|a| a.get_short() == Some(c) && !takes_value(a))
                .map(|_| format!("-{c}"))
        })
        .collect()
}

fn split_container_args(
    cmd: &clap::Command,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, UsageError> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut it = args.into_iter();
    if let Some(program) = it.next() {
        out.push(program);
    }
    while let Some(arg) = it.next() {
        let text = arg.to_str().unwrap_or("");
        if text == "--" {
            out.push(arg);
            break;
        }
        if let Some(flags) = combined_flags(cmd, text) {
            out.extend(flags.into_iter().map(OsString::from));
            continue;
        }
        let Some((option, attached)) = our_option(cmd, text) else {
            out.push("--".into());
            out.push(arg);
            break;
        };
        if attached || !takes_value(option) {
            out.push(arg);
            continue;
        }
        // Hand clap `--long=VALUE`, so a value that starts with `-` stays a value.
        let Some(value) = it.next() else {
            return Err(UsageError(format!(
                "a value is required for '{}' but none was supplied",
                long_label(option)
            )));
        };
        let long = option.get_long().unwrap_or_default();
        let mut joined = OsString::from(format!("--{long}="));
        joined.push(value);
        out.push(joined);
    }
    out.extend(it);
    Ok(out)
}

/// Parses the command line (`args[0]` is the executable).
///
/// `image` describes the embedded image for `--help` and `--version`; it is only called for
/// those, so an ordinary start does not pay for it.
pub fn parse(
    program: &str,
    image: &dyn Fn() -> ImageInfo,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Invocation, UsageError> {
    let mut cmd = Cli::command();
    let args = split_container_args(&cmd, args.into_iter().collect())?;
    // Left: invalid UTF-8 in an option's value.
    let clap_error = |e: clap::Error| UsageError(format!("{}", e.kind()));
    let matches = cmd.try_get_matches_from_mut(args).map_err(clap_error)?;
    let cli = Cli::from_arg_matches(&matches).map_err(clap_error)?;
    if cli.help {
        return Ok(Invocation::Print(help_text(program, &image())));
    }
    if cli.version {
        return Ok(Invocation::Print(format!(
            "{}\n",
            image().version_text(program)
        )));
    }
    Ok(Invocation::Run(cli))
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
            Invocation::Run(cli) => cli,
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

    #[test]
    fn options_that_are_not_ours_go_to_the_container() {
        let cli = run(&["--port", "6380"]);
        assert_eq!(cli.args, os(&["--port", "6380"]));
        let cli = run(&[
            "--debug",
            "-eA=1",
            "--user=redis",
            "--appendonly",
            "yes",
            "--debug",
        ]);
        assert!(cli.debug);
        assert_eq!(cli.env, os(&["A=1"]));
        assert_eq!(cli.user.as_deref(), Some("redis"));
        assert_eq!(cli.args, os(&["--appendonly", "yes", "--debug"]));
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
    fn help_reads_like_clap_help() {
        let expected = "\
Runs the container image docker.io/library/busybox:latest like `docker run --rm`, rootless, with the host's network

Usage: bb [OPTIONS] [--] [COMMAND [ARG...]]

Arguments:
  [COMMAND]...  Command and arguments: replace the image's CMD; everything from the first non-option on is passed to the container unchanged

Options:
      --entrypoint <COMMAND>  Overwrite the image's ENTRYPOINT (also drops its CMD unless a COMMAND is given)
  -e, --env <KEY[=VALUE]>     Set an environment variable; KEY alone copies it from your environment
      --env-file <FILE>       Read environment variables from a file (KEY=VALUE per line, # comments)
  -w, --workdir <DIR>         Working directory inside the container (created if missing)
  -u, --user <USER[:GROUP]>   User to run as: name, uid, name:group or uid:gid (from the image's /etc/passwd)
      --cap-add <CAP>         Add a capability to the default set (docker's names, e.g. NET_ADMIN; ALL for all)
      --cap-drop <CAP>        Drop a capability from the default set (ALL: keep only those added)
      --security-opt <OPT>    seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges
      --privileged            Every capability, no seccomp filter, no masked paths (still in your user namespace)
      --read-only             Mount the container's root read-only (with tmpfs on /tmp, /run and /var/tmp)
  -t, --tty                   Give the container a terminal of its own (default when stdin and stdout are terminals)
      --no-tty                No terminal for the container even on a terminal (stdin is still passed on)
  -i, --interactive           Keep stdin open (it always is; accepted for docker's -i and -it)
      --debug                 Explain on stderr what the runtime does (cache, user mapping, mounts, confinement)
      --version               Print the runtime's and the image's version
  -h, --help                  Print help

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
        // Not all ours: the word is the container's command.
        let cli = run(&["-ix", "sh"]);
        assert_eq!(cli.args, os(&["-ix", "sh"]));
    }
}
