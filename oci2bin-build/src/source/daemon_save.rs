//! `docker-daemon:NAME` and `podman:NAME`: images held by a local docker or podman.
//!
//! Neither has an API worth linking against for this; both can write a docker-archive. So the
//! image is exported with `docker save` or `podman save --format docker-archive` into the build
//! cache (`exports/`, one file per tool and name, replaced on every export because the local
//! image may have changed) and read as a docker-archive; [`crate::Builder::pinned_source`]
//! names that archive, so a later build reads the same export.

use crate::cache::BuildCache;
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::Digest;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program that holds the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `docker-daemon:NAME`.
    Docker,
    /// `podman:NAME`.
    Podman,
}

impl Tool {
    /// Refuses an empty image name, naming `input` (the source as the user wrote it).
    pub fn check_name(self, name: &str, input: &str) -> Result<()> {
        if name.is_empty() {
            return Err(BuildError::BadSource {
                input: input.into(),
                reason: format!("needs an image name: {}NAME[:TAG]", self.transport()),
            });
        }
        Ok(())
    }

    /// The program run.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Podman => "podman",
        }
    }

    /// The transport prefix, as in skopeo (`docker-daemon:`) or as podman users write it.
    pub fn transport(self) -> &'static str {
        match self {
            Tool::Docker => "docker-daemon:",
            Tool::Podman => "podman:",
        }
    }

    fn save_args(self, name: &str, out: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["save".into()];
        if self == Tool::Podman {
            args.extend(["--format".into(), "docker-archive".into()]);
        }
        args.extend(["-o".into(), out.into(), name.into()]);
        args
    }
}

/// Where the export of `name` by `tool` is kept.
pub fn export_path(cache: &BuildCache, tool: Tool, name: &str) -> PathBuf {
    let key = Digest::of(format!("{}{name}", tool.transport()).as_bytes());
    cache
        .root()
        .join("exports")
        .join(format!("{}-{}.tar", tool.program(), &key.hex()[..16]))
}

/// Finds `program` in the directories of `path` (a `PATH` value), as the shell would.
pub fn find_on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Exports `name` with `tool` (found on `PATH`) into the cache; returns the archive.
pub fn export(tool: Tool, name: &str, cache: &BuildCache) -> Result<PathBuf> {
    let path_var = std::env::var_os("PATH");
    let program = find_on_path(tool.program(), path_var.as_deref()).ok_or_else(|| {
        BuildError::Export {
            name: name.into(),
            command: format!("{} save", tool.program()),
            detail: format!(
                "`{}` is not on PATH ({}); save the image where it is installed (`{} save -o FILE {name}`) and use --image docker-archive:FILE",
                tool.program(),
                path_var
                    .as_deref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "PATH is not set".into()),
                tool.program()
            ),
        }
    })?;
    export_with(&program, tool, name, cache)
}

/// Exports with a given program (the one found on `PATH`, or a stand-in in tests).
pub fn export_with(program: &Path, tool: Tool, name: &str, cache: &BuildCache) -> Result<PathBuf> {
    tool.check_name(name, tool.transport())?;
    let dest = export_path(cache, tool, name);
    let tmp = tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(cache.tmp_dir())
        .map_err(BuildError::io(
            "creating a temporary directory in",
            cache.tmp_dir(),
        ))?;
    let out = tmp.path().join("image.tar");
    let args = tool.save_args(name, &out);
    let command = format!(
        "{} {}",
        program.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let result = Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| BuildError::Export {
            name: name.into(),
            command: command.clone(),
            detail: format!("cannot run it: {e}"),
        })?;
    if !result.status.success() {
        return Err(BuildError::Export {
            name: name.into(),
            command,
            detail: format!(
                "{}: {}",
                result.status,
                String::from_utf8_lossy(&result.stderr).trim()
            ),
        });
    }
    if !out.is_file() {
        return Err(BuildError::Export {
            name: name.into(),
            command,
            detail: "it succeeded but wrote no archive".into(),
        });
    }
    let dir = dest.parent().unwrap_or(cache.root());
    std::fs::create_dir_all(dir).map_err(BuildError::io("creating", dir))?;
    std::fs::rename(&out, &dest).map_err(BuildError::io("renaming into", &dest))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn finds_programs_on_path_and_says_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let docker = script(dir.path(), "docker", "exit 0");
        std::fs::write(dir.path().join("podman"), "not executable").unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(find_on_path("docker", Some(&path)), Some(docker));
        assert_eq!(find_on_path("podman", Some(&path)), None);
        assert_eq!(find_on_path("docker", None), None);
    }

    #[test]
    fn runs_save_with_the_right_arguments_and_keeps_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::open(dir.path().join("cache")).unwrap();
        // A stand-in that records its arguments and writes them as the "archive".
        let podman = script(
            dir.path(),
            "podman",
            r#"out=""; prev=""; for a; do [ "$prev" = "-o" ] && out=$a; prev=$a; done; echo "$@" > "$out""#,
        );
        let got = export_with(&podman, Tool::Podman, "nginx:1", &cache).unwrap();
        assert_eq!(got, export_path(&cache, Tool::Podman, "nginx:1"));
        let args = std::fs::read_to_string(&got).unwrap();
        assert!(
            args.starts_with("save --format docker-archive -o "),
            "{args}"
        );
        assert!(args.trim_end().ends_with(" nginx:1"), "{args}");
        assert_ne!(got, export_path(&cache, Tool::Docker, "nginx:1"));

        let failing = script(
            dir.path(),
            "docker",
            "echo 'No such image: nope' >&2; exit 1",
        );
        let e = export_with(&failing, Tool::Docker, "nope", &cache)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("No such image: nope") && e.contains("save -o"),
            "{e}"
        );
        assert!(!export_path(&cache, Tool::Docker, "nope").exists());
    }
}
