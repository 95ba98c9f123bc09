//! The host side of the mounts, done by the runtime before the container exists: host
//! paths are checked (or created, for `-v`), named volumes are found or made in the cache,
//! and each request becomes a [`ContainerMount`] that the container's init can carry out
//! with nothing left to decide.
//!
//! Nothing here, nor anywhere else in the runtime, deletes or rewrites what is in a volume or
//! a bind-mounted host directory: the runtime only creates missing directories, and the
//! run's cleanup works on the run's own directories, which hold no mounts (see
//! [`crate::layer::remove`]).

use crate::cache::trust::{caller_uid, open_dir_at, open_root, TrustError};
use crate::volume::spec::{MountRequest, Source};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// What the init mounts, fully decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host directory or file.
    Bind {
        /// The host path (symlinks resolved).
        source: PathBuf,
        /// The source is not a directory: the mount point is a file.
        file: bool,
        /// A named volume that is empty: fill it with what the image has at the target
        /// first (docker's copy-up for new volumes).
        copy_up: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// `mount(2)` data (`mode=,size=`).
        data: String,
        /// Without `noexec`.
        exec: bool,
    },
}

/// One mount for the container's init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerMount {
    /// What to mount.
    pub kind: MountKind,
    /// Where, inside the container.
    pub target: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

/// A host path or named volume that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostMountError {
    /// `--mount type=bind` names a path that does not exist (docker's wording).
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {}", .0.display())]
    Missing(PathBuf),
    /// The host path cannot be read or created.
    #[error("cannot use {} as a mount source: {source}", path.display())]
    Io {
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The volume directory in the cache is not trustworthy or cannot be made.
    #[error("cannot use the volume {name}: {source}")]
    Volume {
        /// The volume's name.
        name: String,
        /// The cause.
        #[source]
        source: TrustError,
    },
}

/// Where named volumes live: `<cache>/volumes/NAME/_data` (docker's layout, so `_data` can
/// later hold metadata beside it). `cargo oci2bin cache prune` never touches `volumes/`.
pub fn volume_dir(cache_root: &Path, name: &str) -> PathBuf {
    cache_root.join("volumes").join(name).join("_data")
}

/// Opens (creating when missing) the named volume's `_data` directory; returns its path
/// and whether it is empty.
fn open_volume(cache_root: &Path, name: &str) -> Result<(PathBuf, bool), HostMountError> {
    let err = |source| HostMountError::Volume {
        name: name.to_string(),
        source,
    };
    let uid = caller_uid();
    let root = open_root(cache_root, uid).map_err(err)?;
    let volumes = cache_root.join("volumes");
    let dir = open_dir_at(root.as_fd(), cache_root, "volumes".as_ref(), true, uid)
        .map_err(err)?
        .expect("created when missing");
    let volume = open_dir_at(dir.as_fd(), &volumes, name.as_ref(), true, uid)
        .map_err(err)?
        .expect("created when missing");
    let path = volumes.join(name).join("_data");
    // `_data` itself is not checked for ownership: after a copy-up it belongs to whoever
    // owns the image's directory (postgres's data directory is uid 999's), as in docker.
    let io = |e: nix::errno::Errno| HostMountError::Io {
        path: path.clone(),
        source: e.into(),
    };
    match nix::sys::stat::mkdirat(volume.as_fd(), "_data", Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(io(e)),
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // Unreadable (owned by a container user after a copy-up): it has data; never copy into
    // it again.
    let empty = match nix::fcntl::openat(volume.as_fd(), "_data", flags, Mode::empty()) {
        Ok(data) => crate::layer::remove::list_dir(data.as_fd()).is_ok_and(|n| n.is_empty()),
        Err(nix::errno::Errno::EACCES) => false,
        Err(e) => return Err(io(e)),
    };
    Ok((path, empty))
}

/// Prepares every requested mount on the host, in order; `cache_root` holds named volumes.
pub fn prepare_mounts(
    requests: &[MountRequest],
    cache_root: &Path,
) -> Result<Vec<ContainerMount>, HostMountError> {
    requests
        .iter()
        .map(|request| {
            let kind = match &request.source {
                Source::Host { path, create } => {
                    let io = |source| HostMountError::Io {
                        path: path.clone(),
                        source,
                    };
                    let meta = match std::fs::metadata(path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound && *create => {
                            std::fs::create_dir_all(path).map_err(io)?;
                            std::fs::metadata(path).map_err(io)?
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Err(HostMountError::Missing(path.clone()))
                        }
                        other => other.map_err(io)?,
                    };
                    MountKind::Bind {
                        source: std::fs::canonicalize(path).map_err(io)?,
                        file: !meta.is_dir(),
                        copy_up: false,
                    }
                }
                Source::Volume { name, copy } => {
                    let (source, empty) = open_volume(cache_root, name)?;
                    MountKind::Bind {
                        source,
                        file: false,
                        copy_up: *copy && empty,
                    }
                }
                Source::Tmpfs { data, exec } => MountKind::Tmpfs {
                    data: data.clone(),
                    exec: *exec,
                },
            };
            Ok(ContainerMount {
                kind,
                target: request.target.clone(),
                read_only: request.read_only,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::spec::parse_all;

    #[test]
    fn host_paths_volumes_and_tmpfs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let made = dir.path().join("made/by/v");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let volumes = vec![
            format!("{}:/a", made.display()),
            "data1:/b".to_string(),
            format!("{}:/c:ro", file.display()),
        ];
        let requests = parse_all(&volumes, &[], &["/t".to_string()]).unwrap();
        let mounts = prepare_mounts(&requests, &cache).unwrap();
        assert!(made.is_dir(), "-v creates a missing host directory");
        assert_eq!(
            mounts[0].kind,
            MountKind::Bind {
                source: made.canonicalize().unwrap(),
                file: false,
                copy_up: false
            }
        );
        let data = volume_dir(&cache, "data1");
        assert!(data.is_dir());
        assert_eq!(
            mounts[1].kind,
            MountKind::Bind {
                source: data.clone(),
                file: false,
                copy_up: true
            }
        );
        assert!(matches!(mounts[2].kind, MountKind::Bind { file: true, .. }));
        assert!(mounts[2].read_only);
        assert!(matches!(mounts[3].kind, MountKind::Tmpfs { .. }));
        // A volume with data is not copied into again.
        std::fs::write(data.join("kept"), "1").unwrap();
        let mounts = prepare_mounts(&requests[1..2], &cache).unwrap();
        assert!(matches!(
            mounts[0].kind,
            MountKind::Bind { copy_up: false, .. }
        ));
        assert_eq!(std::fs::read(data.join("kept")).unwrap(), b"1");
    }

    #[test]
    fn a_missing_mount_source_is_docker_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let spec = format!("type=bind,src={},dst=/x", missing.display());
        let requests = parse_all(&[], &[spec], &[]).unwrap();
        let err = prepare_mounts(&requests, dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("bind source path does not exist"),
            "{err}"
        );
        assert!(!missing.exists());
    }
}
