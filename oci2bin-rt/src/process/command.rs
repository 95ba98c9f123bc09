//! The command line of the workload: the image's `Entrypoint` and `Cmd` with the user's
//! overrides, combined exactly as `docker run` combines them.

use std::ffi::OsString;

/// The image has neither an entrypoint nor a command, and none was given.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "no command specified: the image has no Entrypoint or Cmd; \
     give one after the options, e.g. `IMAGE_BINARY /bin/sh`"
)]
pub struct NoCommand;

/// Builds argv from the image's `entrypoint` and `cmd` and the user's overrides.
///
/// `args` (everything after the options) replace `Cmd`; `--entrypoint` replaces
/// `Entrypoint` with one word, and also drops the image's `Cmd` unless `args` are given
/// (docker's rule: a new entrypoint does not inherit arguments meant for the old one).
/// `--entrypoint ""` clears the entrypoint.
pub fn build_argv(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint_override: Option<&str>,
    args: &[OsString],
) -> Result<Vec<OsString>, NoCommand> {
    let entrypoint: Vec<OsString> = match entrypoint_override {
        Some("") => Vec::new(),
        Some(word) => vec![word.into()],
        None => image_entrypoint.iter().map(OsString::from).collect(),
    };
    let cmd: Vec<OsString> = if !args.is_empty() {
        args.to_vec()
    } else if entrypoint_override.is_some() {
        Vec::new()
    } else {
        image_cmd.iter().map(OsString::from).collect()
    };
    let argv: Vec<OsString> = entrypoint.into_iter().chain(cmd).collect();
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(NoCommand);
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn o(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn image_defaults() {
        let argv = build_argv(
            &s(&["docker-entrypoint.sh"]),
            &s(&["redis-server"]),
            None,
            &[],
        );
        assert_eq!(argv.unwrap(), o(&["docker-entrypoint.sh", "redis-server"]));
    }

    #[test]
    fn args_replace_cmd_only() {
        let argv = build_argv(&s(&["ep"]), &s(&["cmd", "x"]), None, &o(&["ls", "-la"]));
        assert_eq!(argv.unwrap(), o(&["ep", "ls", "-la"]));
        let argv = build_argv(&[], &s(&["sh"]), None, &o(&["ls", "-la"]));
        assert_eq!(argv.unwrap(), o(&["ls", "-la"]));
    }

    #[test]
    fn entrypoint_override_clears_cmd_unless_args() {
        let argv = build_argv(&s(&["ep"]), &s(&["cmd"]), Some("/bin/sh"), &[]);
        assert_eq!(argv.unwrap(), o(&["/bin/sh"]));
        let argv = build_argv(
            &s(&["ep"]),
            &s(&["cmd"]),
            Some("/bin/sh"),
            &o(&["-c", "id"]),
        );
        assert_eq!(argv.unwrap(), o(&["/bin/sh", "-c", "id"]));
        let argv = build_argv(&s(&["ep"]), &s(&["cmd"]), Some(""), &o(&["id"]));
        assert_eq!(argv.unwrap(), o(&["id"]));
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        assert_eq!(build_argv(&[], &[], None, &[]), Err(NoCommand));
        assert_eq!(build_argv(&s(&["ep"]), &[], Some(""), &[]), Err(NoCommand));
    }
}
