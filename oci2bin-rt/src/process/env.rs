//! The workload's environment: the image's `Env`, then `--env-file` and `-e` overrides, plus
//! the variables docker always sets (`PATH`, `HOSTNAME`, `HOME`).
//!
//! The host environment never leaks in, except `TERM` (so terminal programs draw correctly)
//! and variables the user names explicitly with `-e KEY` or in an env file.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `PATH` when the image sets none: docker's default for Linux containers.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A malformed `-e` value or env file.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The env file cannot be read.
    #[error("cannot read env file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line or `-e` value has no variable name or a name with whitespace.
    #[error("invalid environment variable {entry:?} in {origin}: {reason}")]
    Invalid {
        /// `-e` or `FILE line N`.
        origin: String,
        /// The offending text.
        entry: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// An ordered environment where setting an existing key replaces it in place (docker's
/// `ReplaceOrAppendEnvValues`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Vec<(OsString, OsString)>,
}

impl Environment {
    /// Sets `key` to `value`, replacing an earlier value in place.
    pub fn set(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        let (key, value) = (key.into(), value.into());
        match self.vars.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((key, value)),
        }
    }

    /// Sets a `KEY=VALUE` entry (an entry without `=` sets an empty value).
    pub fn set_entry(&mut self, entry: &OsStr) {
        let bytes = entry.as_bytes();
        match bytes.iter().position(|&b| b == b'=') {
            Some(i) => self.set(
                OsStr::from_bytes(&bytes[..i]),
                OsStr::from_bytes(&bytes[i + 1..]),
            ),
            None => self.set(entry, ""),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&OsStr> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_os_str())
    }

    /// The `KEY=VALUE` strings for `execve`.
    pub fn to_entries(&self) -> Vec<OsString> {
        self.vars
            .iter()
            .map(|(k, v)| {
                let mut e = k.clone().into_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                OsString::from_vec(e)
            })
            .collect()
    }
}

/// Applies one `-e`/env-file entry: `KEY=VALUE` sets, `KEY` copies the host's value if the
/// host has one (and is skipped otherwise, as docker does).
fn apply_user_entry(
    env: &mut Environment,
    entry: &OsStr,
    origin: &str,
    host_env: &dyn Fn(&OsStr) -> Option<OsString>,
) -> Result<(), EnvError> {
    let bytes = entry.as_bytes();
    let name = match bytes.iter().position(|&b| b == b'=') {
        Some(i) => &bytes[..i],
        None => bytes,
    };
    let invalid = |reason| EnvError::Invalid {
        origin: origin.to_string(),
        entry: entry.to_string_lossy().into_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("no variable name"));
    }
    if name.iter().any(u8::is_ascii_whitespace) {
        return Err(invalid("the variable name contains whitespace"));
    }
    if name.len() < bytes.len() {
        env.set_entry(entry);
    } else if let Some(value) = host_env(entry) {
        env.set(entry, value);
    }
    Ok(())
}

/// Parses an env file in docker's format: one `KEY=VALUE` or `KEY` per line, `#` comments
/// and blank lines ignored, leading whitespace trimmed, values taken verbatim.
pub fn apply_env_file(
    env: &mut Environment,
    path: &Path,
    contents: &[u8],
    host_env: &dyn Fn(&OsStr) -> Option<OsString>,
) -> Result<(), EnvError> {
    for (n, line) in contents.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(line.len());
        let line = &line[start..];
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let origin = format!("{} line {}", path.display(), n + 1);
        apply_user_entry(env, OsStr::from_bytes(line), &origin, host_env)?;
    }
    Ok(())
}

/// Everything the environment is built from.
pub struct EnvSources<'a> {
    /// The image config's `Env`.
    pub image: &'a [String],
    /// Env files in command-line order: path and contents.
    pub env_files: &'a [(PathBuf, Vec<u8>)],
    /// `-e` values in command-line order.
    pub cli: &'a [OsString],
    /// The container's hostname.
    pub hostname: &'a str,
    /// The workload user's home, used when nothing sets `HOME`.
    pub home: &'a str,
    /// Looks up a host variable (only `TERM` and explicitly named ones are asked for).
    pub host_env: &'a dyn Fn(&OsStr) -> Option<OsString>,
}

/// Builds the workload's environment in docker's order of precedence (later wins): default
/// `PATH` if the image has none, `HOSTNAME`, the host's `TERM`, the image's `Env`, env
/// files, `-e`; then `HOME` if still unset.
pub fn build_environment(src: &EnvSources<'_>) -> Result<Environment, EnvError> {
    let mut env = Environment::default();
    let image_has_path = src.image.iter().any(|e| e.starts_with("PATH="));
    if !image_has_path {
        env.set("PATH", DEFAULT_PATH);
    }
    env.set("HOSTNAME", src.hostname);
    if let Some(term) = (src.host_env)(OsStr::new("TERM")) {
        env.set("TERM", term);
    }
    for entry in src.image {
        env.set_entry(OsStr::new(entry));
    }
    for (path, contents) in src.env_files {
        apply_env_file(&mut env, path, contents, src.host_env)?;
    }
    for entry in src.cli {
        apply_user_entry(&mut env, entry, "-e", src.host_env)?;
    }
    if env.get("HOME").is_none() {
        env.set("HOME", src.home);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(key: &OsStr) -> Option<OsString> {
        match key.to_str()? {
            "TERM" => Some("xterm-256color".into()),
            "SECRET" => Some("s3cr3t".into()),
            _ => None,
        }
    }

    fn strings(env: &Environment) -> Vec<String> {
        env.to_entries()
            .into_iter()
            .map(|e| e.into_string().unwrap())
            .collect()
    }

    fn build(
        image: &[&str],
        files: &[(&str, &str)],
        cli: &[&str],
    ) -> Result<Vec<String>, EnvError> {
        let image: Vec<String> = image.iter().map(|s| s.to_string()).collect();
        let files: Vec<(PathBuf, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
            .collect();
        let cli: Vec<OsString> = cli.iter().map(OsString::from).collect();
        let env = build_environment(&EnvSources {
            image: &image,
            env_files: &files,
            cli: &cli,
            hostname: "0123456789ab",
            home: "/root",
            host_env: &host,
        })?;
        Ok(strings(&env))
    }

    #[test]
    fn defaults_for_an_image_without_env() {
        assert_eq!(
            build(&[], &[], &[]).unwrap(),
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=0123456789ab".into(),
                "TERM=xterm-256color".into(),
                "HOME=/root".into(),
            ]
        );
    }

    #[test]
    fn image_then_files_then_cli_later_wins() {
        let env = build(
            &["PATH=/opt/bin", "A=image", "B=image", "HOME=/data"],
            &[(
                "/e.env",
                "# comment\n\n  B=file\nC=file with spaces \r\nSECRET\nUNSET\n",
            )],
            &["C=cli", "D", "SECRET", "E="],
        )
        .unwrap();
        assert_eq!(
            env,
            vec![
                "HOSTNAME=0123456789ab",
                "TERM=xterm-256color",
                "PATH=/opt/bin",
                "A=image",
                "B=file",
                "HOME=/data",
                "C=cli",
                "SECRET=s3cr3t",
                "E=",
            ]
        );
    }

    #[test]
    fn host_variables_do_not_leak() {
        let env = build(&[], &[], &[]).unwrap();
        assert!(!env.iter().any(|e| e.starts_with("SECRET")));
    }

    #[test]
    fn rejects_bad_names() {
        let err = build(&[], &[], &["=x"]).unwrap_err();
        assert!(err.to_string().contains("no variable name"), "{err}");
        let err = build(&[], &[("/f.env", "OK=1\nBAD KEY=1\n")], &[]).unwrap_err();
        assert!(err.to_string().contains("/f.env line 2"), "{err}");
    }
}
