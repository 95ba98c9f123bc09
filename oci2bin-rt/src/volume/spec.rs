//! Reading `-v`, `--mount` and `--tmpfs` with docker's syntax and rules into one list of
//! [`MountRequest`]s, before anything starts, so that a typo is an error naming the option
//! rather than a half-started container.

use std::path::{Component, Path, PathBuf};

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A host path (absolute); `create` says whether a missing one becomes a directory
    /// (`-v`), or is an error (`--mount type=bind`), as docker does.
    Host {
        /// The host path.
        path: PathBuf,
        /// Create it as a directory if missing.
        create: bool,
    },
    /// A named volume, kept under the cache's `volumes/NAME/_data`; `copy` says whether a new
    /// (empty) volume is first filled with what the image has at the target, as docker does
    /// unless `nocopy` is given.
    Volume {
        /// The volume's name.
        name: String,
        /// Copy the image's files into an empty volume.
        copy: bool,
    },
    /// A fresh tmpfs with these `mount(2)` data options (`size=..,mode=..`) and flags.
    Tmpfs {
        /// `size=`, `mode=`, `nr_inodes=`.
        data: String,
        /// Allow executables (docker's tmpfs mounts are `noexec` unless `exec` is given).
        exec: bool,
    },
}

/// One mount the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountRequest {
    /// What to mount.
    pub source: Source,
    /// Where, inside the container (absolute).
    pub target: PathBuf,
    /// Mount it read-only.
    pub read_only: bool,
}

/// A mount option that cannot be honoured, with the option it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {option} {spec:?}: {reason}")]
pub struct MountSpecError {
    /// `-v`, `--mount` or `--tmpfs`.
    pub option: &'static str,
    /// The value as given.
    pub spec: String,
    /// What is wrong and what to do.
    pub reason: String,
}

/// docker's rule for a named volume: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_volume_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The container path `target`, checked: absolute, not `/` itself.
fn check_target(target: &str) -> Result<PathBuf, String> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return Err(format!(
            "the mount point {target:?} must be an absolute path"
        ));
    }
    if path.components().all(|c| matches!(c, Component::RootDir)) {
        return Err("the mount point cannot be '/'".into());
    }
    Ok(path.to_path_buf())
}

/// The source of `-v` or `--mount type=volume` as docker reads it: an absolute path is a
/// host path; a volume name is a named volume; anything else is docker's error.
fn host_or_volume(source: &str, create: bool, copy: bool) -> Result<Source, String> {
    if source.starts_with('/') {
        return Ok(Source::Host {
            path: PathBuf::from(source),
            create,
        });
    }
    if is_volume_name(source) {
        return Ok(Source::Volume {
            name: source.to_string(),
            copy,
        });
    }
    Err(format!(
        "create {source}: \"{source}\" includes invalid characters for a local volume name, \
         only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
         directory, use absolute path"
    ))
}

/// Options every kind of mount accepts and ignores: SELinux relabelling (no SELinux
/// labels are applied) and private propagation (every mount is private).
fn ignorable(option: &str) -> bool {
    matches!(
        option,
        "z" | "Z" | "private" | "rprivate" | "consistent" | "cached" | "delegated"
    )
}

/// Parses `-v SRC:DST[:OPTS]`.
pub fn parse_volume(spec: &str) -> Result<MountRequest, MountSpecError> {
    let err = |reason: String| MountSpecError {
        option: "-v",
        spec: spec.to_string(),
        reason,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => {
            return Err(err(format!(
                "anonymous volumes are not supported: name it (-v NAME:{target}) to keep its \
                 data, or use --tmpfs {target} for scratch space"
            )))
        }
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => return Err(err("use SRC:DST or SRC:DST:OPTIONS".into())),
    };
    let mut read_only = false;
    let mut copy = true;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => copy = false,
            o if ignorable(o) => {}
            o => {
                return Err(err(format!(
                    "unknown option {o:?} (known: ro, rw, nocopy, z, Z; mounts are private)"
                )))
            }
        }
    }
    Ok(MountRequest {
        source: host_or_volume(source, true, copy).map_err(err)?,
        target: check_target(target).map_err(err)?,
        read_only,
    })
}

/// Checks a tmpfs `size=` value: bytes, or a number with k, m, g or % (tmpfs's own syntax).
fn check_size(size: &str) -> Result<(), String> {
    let digits = size.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
    let suffix = size.len() - digits.len();
    if digits.is_empty() || suffix > 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "size {size:?} is not a size (bytes, or with k, m, g or %)"
        ));
    }
    Ok(())
}

/// Checks an octal file mode such as `1777`.
fn check_mode(mode: &str) -> Result<(), String> {
    if mode.is_empty() || mode.len() > 4 || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("mode {mode:?} is not an octal mode such as 1777"));
    }
    Ok(())
}

/// A tmpfs source from its size, mode and exec choice; mode 1777 and a quarter of RAM
/// unless given (a tmpfs is RAM: the kernel's default, half of it, is too generous).
fn tmpfs(size: Option<&str>, mode: Option<&str>, exec: bool) -> Source {
    Source::Tmpfs {
        data: format!(
            "mode={},size={}",
            mode.unwrap_or("1777"),
            size.unwrap_or("25%")
        ),
        exec,
    }
}

/// Parses `--tmpfs PATH[:OPTS]` (OPTS: `size=`, `mode=`, `ro`, `rw`, `exec`, `noexec`,
/// `nosuid`, `nodev`).
pub fn parse_tmpfs(spec: &str) -> Result<MountRequest, MountSpecError> {
    let err = |reason: String| MountSpecError {
        option: "--tmpfs",
        spec: spec.to_string(),
        reason,
    };
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let (mut size, mut mode, mut exec, mut read_only) = (None, None, false, false);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", v)) => {
                check_size(v).map_err(err)?;
                size = Some(v);
            }
            Some(("mode", v)) => {
                check_mode(v).map_err(err)?;
                mode = Some(v);
            }
            None if option == "exec" => exec = true,
            None if option == "noexec" => exec = false,
            None if option == "ro" => read_only = true,
            None if option == "rw" => read_only = false,
            None if matches!(option, "nosuid" | "nodev") => {}
            _ => {
                return Err(err(format!(
                    "unknown option {option:?} (known: size=, mode=, ro, rw, exec, noexec, nosuid, nodev)"
                )))
            }
        }
    }
    Ok(MountRequest {
        source: tmpfs(size, mode, exec),
        target: check_target(target).map_err(err)?,
        read_only,
    })
}

/// Parses `--mount type=bind|volume|tmpfs,source=,target=[,readonly]` (docker's keys and
/// their short spellings `src`, `dst`, `destination`, `ro`), by way of the `-v` and
/// `--tmpfs` syntax, whose rules it shares.
pub fn parse_mount(spec: &str) -> Result<MountRequest, MountSpecError> {
    let err = |reason: &str| MountSpecError {
        option: "--mount",
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (mut kind, mut source, mut target, mut options) = ("volume", "", "", Vec::new());
    for field in spec.split(',') {
        match field.split_once('=').unwrap_or((field, "true")) {
            ("type", v) => kind = v,
            ("source" | "src", v) => source = v,
            ("target" | "destination" | "dst", v) => target = v,
            ("readonly" | "ro", "true" | "1") => options.push("ro".to_string()),
            ("readonly" | "ro", "false" | "0") => {}
            ("volume-nocopy", "true" | "1") => options.push("nocopy".to_string()),
            ("volume-nocopy", "false" | "0") => {}
            ("tmpfs-size", v) => options.push(format!("size={v}")),
            ("tmpfs-mode", v) => options.push(format!("mode={v}")),
            ("bind-propagation", v) if ignorable(v) => {}
            ("consistency", _) => {}
            _ => return Err(err(&format!("unknown or invalid field {field:?}"))),
        }
    }
    let options = options.join(",");
    let from = |r: Result<MountRequest, MountSpecError>| r.map_err(|e| err(&e.reason));
    match (kind, source.starts_with('/')) {
        ("bind", true) | ("volume", false) if !source.is_empty() && !target.is_empty() => {
            let mut request = from(parse_volume(&format!("{source}:{target}:{options}")))?;
            if let Source::Host { create, .. } = &mut request.source {
                // A missing bind source is an error for --mount, as in docker.
                *create = false;
            }
            Ok(request)
        }
        ("tmpfs", _) if source.is_empty() => from(parse_tmpfs(&format!("{target}:{options}"))),
        _ => Err(err(
            "use type=bind with an absolute src=, type=volume with a volume name, or type=tmpfs \
             without src=; dst= is required",
        )),
    }
}

/// All of a run's mounts, in the order given (`-v`, then `--mount`, then `--tmpfs`), with
/// docker's check that no two share a mount point.
pub fn parse_all(
    volumes: &[String],
    mounts: &[String],
    tmpfs: &[String],
) -> Result<Vec<MountRequest>, MountSpecError> {
    let mut all = Vec::new();
    for (specs, parse) in [
        (
            volumes,
            parse_volume as fn(&str) -> Result<MountRequest, MountSpecError>,
        ),
        (mounts, parse_mount),
        (tmpfs, parse_tmpfs),
    ] {
        for spec in specs {
            let request = parse(spec)?;
            // `Path` equality compares components: `/data/` is `/data`.
            if all
                .iter()
                .any(|r: &MountRequest| r.target == request.target)
            {
                return Err(MountSpecError {
                    option: "mount",
                    spec: spec.clone(),
                    reason: format!("duplicate mount point: {}", request.target.display()),
                });
            }
            all.push(request);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(path: &str, create: bool) -> Source {
        Source::Host {
            path: path.into(),
            create,
        }
    }

    #[test]
    fn volume_syntax_as_docker() {
        let r = parse_volume("/srv/data:/data").unwrap();
        assert_eq!(r.source, host("/srv/data", true));
        assert_eq!(r.target, Path::new("/data"));
        assert!(!r.read_only);
        assert!(parse_volume("/a:/b:ro").unwrap().read_only);
        assert!(!parse_volume("/a:/b:ro,rw").unwrap().read_only);
        assert!(parse_volume("/a:/b:Z,ro").unwrap().read_only);
        let r = parse_volume("pgdata:/var/lib/postgresql/data:nocopy").unwrap();
        assert_eq!(
            r.source,
            Source::Volume {
                name: "pgdata".into(),
                copy: false
            }
        );
        let e = parse_volume("./data:/data").unwrap_err().to_string();
        assert!(
            e.contains("\"./data\" includes invalid characters for a local volume name")
                && e.contains("use absolute path"),
            "{e}"
        );
        for bad in ["/a:b", "/a:/", "/a:/b:shared", "/data", "a:b:c:d"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_syntax_as_docker() {
        let r = parse_mount("type=bind,src=/etc/hosts,dst=/h,readonly").unwrap();
        assert_eq!(r.source, host("/etc/hosts", false));
        assert!(r.read_only);
        let r = parse_mount("type=volume,source=v1,target=/v,ro=false").unwrap();
        assert!(matches!(r.source, Source::Volume { ref name, copy: true } if name == "v1"));
        assert!(!r.read_only);
        let r = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=700").unwrap();
        assert_eq!(
            r.source,
            Source::Tmpfs {
                data: "mode=700,size=1048576".into(),
                exec: false
            }
        );
        for bad in [
            "type=bind,src=rel,dst=/x",
            "type=bind,dst=/x",
            "type=npipe,src=/a,dst=/x",
            "src=/a,dst=/x",
            "type=bind,src=/a",
            "type=bind,src=/a,dst=/x,colour=red",
            "type=tmpfs,dst=/t,tmpfs-size=lots",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_syntax() {
        let r = parse_tmpfs("/run").unwrap();
        assert_eq!(
            r.source,
            Source::Tmpfs {
                data: "mode=1777,size=25%".into(),
                exec: false
            }
        );
        let r = parse_tmpfs("/cache:size=64m,mode=0700,exec,ro").unwrap();
        assert_eq!(
            r.source,
            Source::Tmpfs {
                data: "mode=0700,size=64m".into(),
                exec: true
            }
        );
        assert!(r.read_only);
        for bad in ["run", "/x:size=", "/x:size=1q", "/x:mode=999", "/x:uid=0"] {
            assert!(parse_tmpfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_targets_are_refused() {
        let v = vec!["/a:/data".to_string()];
        let t = vec!["/data/".to_string()];
        let e = parse_all(&v, &[], &t).unwrap_err();
        assert!(e.reason.contains("duplicate mount point: /data"), "{e}");
        assert_eq!(parse_all(&v, &[], &[]).unwrap().len(), 1);
    }

    #[test]
    fn volume_names() {
        assert!(is_volume_name("pgdata"));
        assert!(is_volume_name("a.b-c_d"));
        for bad in ["a", "-a", ".a", "a/b", "a b", ""] {
            assert!(!is_volume_name(bad), "{bad}");
        }
    }
}
