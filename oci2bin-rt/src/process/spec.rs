//! What the workload runs as: command line, environment, working directory and ids, resolved
//! once on the host from the image config, the image's files and the user's options.

use crate::layer::resolve::read_in_root;
use crate::oci::spec::Config;
use crate::process::command::{build_argv, NoCommand};
use crate::process::env::{build_environment, EnvError, EnvSources};
use crate::process::user::{resolve_user, UserError};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The user's overrides of the image's defaults (the `docker run` options we support).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessOverrides {
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// Arguments after the options: they replace `Cmd`.
    pub args: Vec<OsString>,
    /// `-e KEY=VAL` / `-e KEY`, in order.
    pub env: Vec<OsString>,
    /// `--env-file`, in order.
    pub env_files: Vec<PathBuf>,
    /// `-w` / `--workdir`.
    pub workdir: Option<String>,
    /// `-u` / `--user`.
    pub user: Option<String>,
}

/// Why the workload's process could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Nothing to run.
    #[error(transparent)]
    NoCommand(#[from] NoCommand),
    /// Unknown user or group.
    #[error(transparent)]
    User(#[from] UserError),
    /// Bad `-e` or env file.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `-w` is not absolute.
    #[error("the working directory {0:?} is invalid: it needs to be an absolute path")]
    RelativeWorkdir(String),
    /// The image's `/etc/passwd` or `/etc/group` exists but cannot be read.
    #[error("cannot read {path} in the image at {root}: {source}")]
    ImageFile {
        /// Path inside the image.
        path: &'static str,
        /// The image's root on the host.
        root: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The fully resolved workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in the container's `PATH` if it has no `/`.
    pub args: Vec<OsString>,
    /// `KEY=VALUE` entries.
    pub env: Vec<OsString>,
    /// Working directory inside the container (created if missing, like docker).
    pub cwd: PathBuf,
    /// User id inside the container.
    pub uid: u32,
    /// Group id inside the container.
    pub gid: u32,
    /// Supplementary groups (applied only when many ids are mapped).
    pub additional_gids: Vec<u32>,
}

/// Reads a small file of the image, `None` when it does not exist.
fn read_optional(root: &Path, path: &'static str) -> Result<Option<String>, ProcessError> {
    match read_in_root(root, Path::new(path)) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(source) => Err(ProcessError::ImageFile {
            path,
            root: root.into(),
            source,
        }),
    }
}

impl ProcessSpec {
    /// Resolves the workload from the image `config` (absent in some minimal images), the
    /// user's `overrides`, the image's root `rootfs` (for `/etc/passwd` and `/etc/group`),
    /// the container's `hostname` and the host environment `host_env`.
    pub fn resolve(
        config: Option<&Config>,
        overrides: &ProcessOverrides,
        rootfs: &Path,
        hostname: &str,
        host_env: &dyn Fn(&OsStr) -> Option<OsString>,
    ) -> Result<Self, ProcessError> {
        let empty = Vec::new();
        let image_entrypoint = config
            .and_then(|c| c.entrypoint().as_ref())
            .unwrap_or(&empty);
        let image_cmd = config.and_then(|c| c.cmd().as_ref()).unwrap_or(&empty);
        let image_env = config.and_then(|c| c.env().as_ref()).unwrap_or(&empty);
        let args = build_argv(
            image_entrypoint,
            image_cmd,
            overrides.entrypoint.as_deref(),
            &overrides.args,
        )?;

        let user = overrides
            .user
            .as_deref()
            .or_else(|| config.and_then(|c| c.user().as_deref()))
            .unwrap_or("");
        let passwd = read_optional(rootfs, "/etc/passwd")?;
        let group = read_optional(rootfs, "/etc/group")?;
        let exec_user = resolve_user(user, passwd.as_deref(), group.as_deref())?;

        let cwd = match &overrides.workdir {
            Some(w) if !w.starts_with('/') => {
                return Err(ProcessError::RelativeWorkdir(w.clone()));
            }
            Some(w) => PathBuf::from(w),
            None => {
                let image_dir = config
                    .and_then(|c| c.working_dir().as_deref())
                    .unwrap_or("");
                Path::new("/").join(image_dir)
            }
        };

        let mut env_files = Vec::new();
        for path in &overrides.env_files {
            let contents = std::fs::read(path).map_err(|source| EnvError::Read {
                path: path.clone(),
                source,
            })?;
            env_files.push((path.clone(), contents));
        }
        let env = build_environment(&EnvSources {
            image: image_env,
            env_files: &env_files,
            cli: &overrides.env,
            hostname,
            home: &exec_user.home,
            host_env,
        })?;

        Ok(ProcessSpec {
            args,
            env: env.to_entries(),
            cwd,
            uid: exec_user.uid,
            gid: exec_user.gid,
            additional_gids: exec_user.additional_gids,
        })
    }

    /// The container's `PATH` (for looking up `args[0]`).
    pub fn path_env(&self) -> Option<&OsStr> {
        use std::os::unix::ffi::OsStrExt;
        self.env
            .iter()
            .find_map(|e| e.as_bytes().strip_prefix(b"PATH=").map(OsStr::from_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::spec::ConfigBuilder;

    fn no_host(_: &OsStr) -> Option<OsString> {
        None
    }

    fn image_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nredis:x:999:999::/data:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nredis:x:999:\n").unwrap();
        root
    }

    fn redis_config() -> Config {
        ConfigBuilder::default()
            .entrypoint(vec!["docker-entrypoint.sh".to_string()])
            .cmd(vec!["redis-server".to_string()])
            .env(vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()])
            .working_dir("/data".to_string())
            .build()
            .unwrap()
    }

    #[test]
    fn resolves_an_image_config() {
        let root = image_root();
        let spec = ProcessSpec::resolve(
            Some(&redis_config()),
            &ProcessOverrides::default(),
            root.path(),
            "abcdef012345",
            &no_host,
        )
        .unwrap();
        assert_eq!(spec.args, vec!["docker-entrypoint.sh", "redis-server"]);
        assert_eq!(spec.cwd, Path::new("/data"));
        assert_eq!((spec.uid, spec.gid), (0, 0));
        assert_eq!(
            spec.path_env(),
            Some(OsStr::new("/usr/local/bin:/usr/bin:/bin"))
        );
        assert!(spec.env.contains(&"HOME=/root".into()));
        assert!(spec.env.contains(&"HOSTNAME=abcdef012345".into()));
    }

    #[test]
    fn overrides_apply() {
        let root = image_root();
        let overrides = ProcessOverrides {
            entrypoint: Some("/bin/sh".into()),
            args: vec!["-c".into(), "id".into()],
            env: vec!["A=1".into()],
            workdir: Some("/tmp/work".into()),
            user: Some("redis".into()),
            ..Default::default()
        };
        let spec = ProcessSpec::resolve(
            Some(&redis_config()),
            &overrides,
            root.path(),
            "h",
            &no_host,
        )
        .unwrap();
        assert_eq!(spec.args, vec!["/bin/sh", "-c", "id"]);
        assert_eq!(spec.cwd, Path::new("/tmp/work"));
        assert_eq!((spec.uid, spec.gid), (999, 999));
        assert!(spec.env.contains(&"HOME=/data".into()));
        assert!(spec.env.contains(&"A=1".into()));
    }

    #[test]
    fn rejects_relative_workdir_and_missing_env_file() {
        let root = image_root();
        let overrides = ProcessOverrides {
            workdir: Some("rel".into()),
            ..Default::default()
        };
        let err = ProcessSpec::resolve(
            Some(&redis_config()),
            &overrides,
            root.path(),
            "h",
            &no_host,
        )
        .unwrap_err();
        assert!(matches!(err, ProcessError::RelativeWorkdir(_)));
        let overrides = ProcessOverrides {
            env_files: vec!["/nonexistent/x.env".into()],
            ..Default::default()
        };
        let err = ProcessSpec::resolve(
            Some(&redis_config()),
            &overrides,
            root.path(),
            "h",
            &no_host,
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.env"), "{err}");
    }

    #[test]
    fn scratch_image_without_config_or_etc() {
        let root = tempfile::tempdir().unwrap();
        let overrides = ProcessOverrides {
            args: vec!["/hello".into()],
            ..Default::default()
        };
        let spec = ProcessSpec::resolve(None, &overrides, root.path(), "h", &no_host).unwrap();
        assert_eq!(spec.args, vec!["/hello"]);
        assert_eq!(spec.cwd, Path::new("/"));
        assert_eq!(
            spec.path_env(),
            Some(OsStr::new(crate::process::env::DEFAULT_PATH))
        );
    }
}
