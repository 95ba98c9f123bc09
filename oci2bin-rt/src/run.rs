//! The `main` of every generated executable: parse the command line, read the embedded
//! image, make sure its root is unpacked in the cache, resolve the workload, run the
//! container, and exit with its code.
//!
//! Errors of the runtime itself are printed as `IMAGE_BINARY: error: ...` with their causes
//! and exit with 125, like `docker run`; 126 and 127 come from a command that cannot be
//! executed or found inside the container.

use crate::cache::housekeeping;
use crate::cache::runs::RunDir;
use crate::cache::{cache_root, ensure_rootfs, CacheError, CacheOptions};
use crate::cli::{self, Cli, ImageInfo, Invocation};
use crate::confine::policy::{Confinement, PolicyError};
use crate::confine::seccomp::Filters;
use crate::ns::ident::random_id;
use crate::ns::report::Reporter;
use crate::ns::userns::detect_mapping;
use crate::ns::{run_container, ContainerError, ContainerSpec, LinuxSyscall};
use crate::oci::spec::Config;
use crate::payload::{Payload, PayloadError};
use crate::process::detach::{self, DetachError};
use crate::process::exit::RUNTIME_ERROR;
use crate::process::rlimit::{self, Rlimit, RlimitError};
use crate::process::signals::{parse_signal, StopPolicy};
use crate::process::{ProcessError, ProcessSpec};
use crate::volume::host::{prepare_mounts, ContainerMount, HostMountError};
use crate::volume::spec::{parse_all, MountSpecError};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Why a run failed before the workload could start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The embedded payload does not parse.
    #[error("the embedded image cannot be read (is this binary truncated?): {0}")]
    Payload(#[from] PayloadError),
    /// The command line is wrong; the text starts with `error:`.
    #[error("{0}")]
    Usage(String),
    /// The image could not be unpacked into the cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The workload could not be resolved (user, environment, command).
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The container could not be created.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A security option cannot be honoured.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A `-v`, `--mount` or `--tmpfs` value is wrong.
    #[error(transparent)]
    MountSpec(#[from] MountSpecError),
    /// A volume's host path or directory cannot be used.
    #[error(transparent)]
    HostMount(#[from] HostMountError),
    /// A `--ulimit` is wrong or cannot be granted.
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    /// A background container cannot be started or managed.
    #[error(transparent)]
    Detach(#[from] DetachError),
}

/// The executable's name for messages: the file name of `argv[0]`.
pub fn program_name(argv0: Option<&OsString>) -> String {
    argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oci2bin".to_string())
}

/// Runs the image embedded as `payload` with this process's arguments and exits with the
/// container's code. Called by the `main!` macro of a generated executable.
pub fn main(payload: &'static [u8]) -> ! {
    crate::process::fds::close_inherited();
    let args: Vec<OsString> = std::env::args_os().collect();
    let program = program_name(args.first());
    let code = match run_payload(&program, args, payload, true) {
        Ok(code) => code,
        Err(RunError::Usage(text)) => {
            eprint!("{program}: {text}");
            RUNTIME_ERROR
        }
        Err(e) => {
            Reporter::new(program, false).error(&e);
            RUNTIME_ERROR
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Runs the image attached to this executable after linking (how `cargo oci2bin` builds
/// them; see [`crate::payload::attached`]) and exits with the container's code.
///
/// `src/main.rs` of the crate `cargo oci2bin` generates is one call:
///
/// ```no_run
/// oci2bin_rt::run::main_attached()
/// ```
pub fn main_attached() -> ! {
    crate::process::fds::close_inherited();
    match crate::payload::attached::payload() {
        Ok(payload) => main(payload),
        Err(e) => {
            let program = program_name(std::env::args_os().next().as_ref());
            Reporter::new(program, false).error(&e);
            std::process::exit(RUNTIME_ERROR)
        }
    }
}

/// [`main`] without the exit: returns the container's exit code.
pub fn run(program: &str, args: Vec<OsString>, payload: &[u8]) -> Result<i32, RunError> {
    run_payload(program, args, payload, false)
}

/// [`run`], told whether `payload` is the executable's own file-backed mapping (whose pages
/// may be released after unpacking; see [`CacheOptions::payload_is_mapped_file`]).
fn run_payload(
    program: &str,
    args: Vec<OsString>,
    payload: &[u8],
    mapped_file: bool,
) -> Result<i32, RunError> {
    let payload = Payload::parse(payload)?;
    let cli = match cli::parse(program, &|| ImageInfo::from_payload(&payload), args) {
        Ok(Invocation::Print(text)) => {
            print!("{text}");
            return Ok(0);
        }
        Ok(Invocation::Run(cli)) => cli,
        Err(e) => return Err(RunError::Usage(e.to_string())),
    };
    let reporter = Reporter::new(program, cli.debug);
    let confinement = Confinement::resolve(&cli.security())?;
    let seccomp = confinement.seccomp_filters()?.map(Arc::new);
    let requests = parse_all(&cli.volume, &cli.mount, &cli.tmpfs)?;
    let config = payload.config.config().as_ref();
    let options = RunOptions {
        mounts: Vec::new(),
        rlimits: rlimit::parse_all(&cli.ulimit)?,
        stop: stop_policy(&cli, config)?,
        detach: None,
    };
    // One cache root for the image, the run's directory and the volumes, looked up once.
    let root = cache_root()?;
    // Only the management options and -d need it: a plain start looks up nothing more.
    let state = || detach::state_root(&root);
    if cli.ps {
        print!("{}", detach::ps(&state(), cli.json));
        return Ok(0);
    }
    if let Some(name) = &cli.logs {
        let tail = match cli.tail.as_deref().map(str::parse::<usize>) {
            Some(Err(_)) => {
                return Err(RunError::Usage(
                    "error: --tail wants a number of lines\n".into(),
                ))
            }
            other => other.map(Result::unwrap),
        };
        detach::logs(&state(), name, tail, cli.follow)?;
        return Ok(0);
    }
    if let Some(name) = &cli.stop {
        let after = options.stop.timeout.filter(|_| cli.stop_timeout.is_some());
        detach::stop(&state(), name, after)?;
        println!("{name}");
        return Ok(0);
    }
    if let Some(name) = &cli.rm_container {
        let had_state = detach::forget(&state(), name)?;
        let text = housekeeping::remove_container(&root, name)?;
        if !had_state && text.is_empty() {
            return Err(DetachError::Unknown(name.clone()).into());
        }
        print!(
            "{text}{}",
            if had_state {
                format!("{name}\n")
            } else {
                String::new()
            }
        );
        return Ok(0);
    }
    if cli.cache || cli.prune {
        let digest = payload.config_digest.to_string();
        print!(
            "{}",
            match cli.prune {
                true => housekeeping::prune(&root, &digest, cli.volumes)?,
                false => housekeeping::describe(&root, payload.config_digest.hex()),
            }
        );
        return Ok(0);
    }
    let cache = CacheOptions {
        debug: cli.debug,
        payload_is_mapped_file: mapped_file,
        dir: Some(root.clone()),
    };
    let rootfs = ensure_rootfs(&payload, &cache)?;
    if cli.detach && cli.tty {
        return Err(RunError::Usage(
            "error: -d runs in the background, where there is no terminal: leave -t out\n".into(),
        ));
    }
    let options = RunOptions {
        mounts: prepare_mounts(&requests, &root)?,
        detach: cli
            .detach
            .then(|| (state(), cli.name.clone().unwrap_or_else(random_id))),
        ..options
    };
    let run = match (&cli.name, cli.rm) {
        (Some(name), false) => {
            let run = RunDir::open_named(&root, name, &payload.config_digest.to_string())?;
            reporter.debug(format_args!(
                "container {name}: kept in {} (its changes stay for the next run with --name {name}; --rm discards them)",
                run.path.display()
            ));
            run
        }
        (Some(name), true) if root.join("containers").join(name).exists() => {
            return Err(RunError::Usage(format!(
                "error: a kept container named {name} exists (from a run without --rm); run \
                 without --rm to continue it, or choose another --name\n"
            )))
        }
        _ => RunDir::create(&root)?,
    };
    let identity = rootfs.identity()?;
    run_image(
        config,
        &cli,
        (&rootfs.path, Some(identity)),
        (confinement, seccomp),
        (run, options),
        reporter,
    )
}

/// What a run needs besides the image and the confinement: the user's mounts, resource
/// limits and stop policy, all checked on the host before anything starts.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Volumes, bind mounts and tmpfs mounts, prepared on the host.
    pub mounts: Vec<ContainerMount>,
    /// `--ulimit`.
    pub rlimits: Vec<Rlimit>,
    /// `--stop-signal` (else the image's `StopSignal`) and `--stop-timeout`.
    pub stop: StopPolicy,
    /// `-d`: the state directory of background containers and this one's name.
    pub detach: Option<(std::path::PathBuf, String)>,
}

/// The stop signal and timeout: the options, else the image's `StopSignal`, else docker's
/// SIGTERM and 10 seconds.
fn stop_policy(cli: &Cli, config: Option<&Config>) -> Result<StopPolicy, RunError> {
    let usage = |text: String| RunError::Usage(format!("error: {text}\n"));
    let mut policy = StopPolicy::default();
    let image_signal = config.and_then(|c| c.stop_signal().clone());
    if let Some(text) = cli.stop_signal.as_deref().or(image_signal.as_deref()) {
        policy.signal = parse_signal(text).ok_or_else(|| {
            usage(format!(
                "invalid stop signal {text:?}: use a name such as SIGTERM, SIGQUIT or SIGINT, or its number"
            ))
        })?;
    }
    if let Some(text) = &cli.stop_timeout {
        policy.timeout = match text.parse::<i64>() {
            Ok(-1) => None,
            Ok(secs) if secs >= 0 => Some(std::time::Duration::from_secs(secs as u64)),
            _ => {
                return Err(usage(format!(
                    "invalid --stop-timeout {text:?}: give whole seconds, or -1 to never kill"
                )))
            }
        };
    }
    Ok(policy)
}

/// Whether the container gets a terminal: `-t` (which needs one on stdin, as docker's
/// `-it` does), never with `--no-tty`, and by default when stdin and stdout are both
/// terminals, so an interactive `./busybox` feels like `docker run -it busybox` while
/// pipes, files and services get plain stdio as with `docker run`.
fn wants_tty(cli: &Cli) -> Result<bool, RunError> {
    let stdin = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    if cli.no_tty {
        return Ok(false);
    }
    if cli.tty {
        if !stdin {
            return Err(RunError::Usage(
                "error: -t needs a terminal on stdin (the input device is not a TTY); leave -t out for pipes and files\n".into(),
            ));
        }
        return Ok(true);
    }
    Ok(stdin && nix::unistd::isatty(std::io::stdout()).unwrap_or(false))
}

/// Runs an image whose root is already unpacked at `rootfs` (with the (device, inode) the
/// container must find there, if known), with the image `config`, the
/// parsed options `cli` and the resolved `confinement` with its compiled seccomp filters,
/// in the run directory `run` (removed afterwards unless it is a kept container's), with
/// the prepared `options`; returns the container's exit code.
///
/// Separate from [`run`] so that the container can be driven with any root directory.
pub fn run_image(
    config: Option<&Config>,
    cli: &Cli,
    (rootfs, identity): (&Path, Option<(u64, u64)>),
    (confinement, seccomp): (Confinement, Option<Arc<Filters>>),
    (run, options): (RunDir, RunOptions),
    reporter: Reporter,
) -> Result<i32, RunError> {
    let hostname = cli.hostname.clone().unwrap_or_else(random_id);
    let host_env = |key: &std::ffi::OsStr| std::env::var_os(key);
    let process = ProcessSpec::resolve(config, &cli.overrides(), rootfs, &hostname, &host_env)?;
    let mapping = detect_mapping(process.uid, process.gid);
    reporter.debug(mapping.describe());
    if nix::unistd::geteuid().is_root() {
        // Files in the cache are host root's, so the container keeps host uid 0; what makes
        // it not host root is the rest of the confinement.
        reporter.debug(
            "caller is root: container root is host uid 0 in its own user namespace, held by \
             the capability set (none of them valid outside the namespace), the seccomp \
             filter and read-only /proc/sys, /sys and /proc/sysrq-trigger",
        );
    }
    reporter.debug(format_args!(
        "process: {:?} in {} as {}:{} (groups {:?})",
        process.args,
        process.cwd.display(),
        process.uid,
        process.gid,
        process.additional_gids
    ));
    if run.stale_count() > 0 {
        reporter.debug(format_args!(
            "run directory: removing {} left by killed runs when this one ends",
            run.stale_count()
        ));
    }
    let detached = match &options.detach {
        Some((dir, name)) => {
            let words: Vec<_> = process.args.iter().map(|a| a.to_string_lossy()).collect();
            Some(detach::detach(dir, name, &words.join(" "))?)
        }
        None => None,
    };
    let tty = wants_tty(cli)?;
    if let Some(filters) = &seccomp {
        reporter.debug(format_args!("seccomp: {filters:?}"));
    }
    let spec = ContainerSpec {
        rootfs: rootfs.to_path_buf(),
        rootfs_identity: identity,
        process,
        mapping,
        hostname,
        reporter: reporter.clone(),
        sysctl_root: "/proc/sys".into(),
        confinement,
        run_dir: run.path.clone(),
        cleanup: Some(run.cleanup()),
        tty,
        seccomp,
        mounts: options.mounts,
        rlimits: options.rlimits,
        stop: options.stop,
    };
    let result = run_container(&spec, &LinuxSyscall);
    for failure in run.finish() {
        reporter.debug(format_args!("run directory: cannot remove {failure}"));
    }
    if let Some(base) = &detached {
        detach::record_exit(base, *result.as_ref().unwrap_or(&RUNTIME_ERROR));
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_name_is_the_file_name() {
        assert_eq!(
            program_name(Some(&OsString::from("./out/redis_latest"))),
            "redis_latest"
        );
        assert_eq!(program_name(None), "oci2bin");
    }

    #[test]
    fn garbage_payload_is_a_clear_error() {
        let err = run("img", vec!["img".into()], b"not a tar at all").unwrap_err();
        assert!(matches!(err, RunError::Payload(_)));
        assert!(err.to_string().contains("embedded image"), "{err}");
    }
}
