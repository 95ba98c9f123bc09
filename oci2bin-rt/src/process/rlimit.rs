//! `--ulimit TYPE=SOFT[:HARD]`, as docker reads it: the limits are checked on the host
//! before anything starts (an unprivileged caller cannot raise a hard limit, not even as
//! root of its user namespace), and set by the container's init just before it starts the
//! workload, which inherits them.

use nix::errno::Errno;

/// One resource limit to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_*`.
    pub resource: i32,
    /// The soft limit (`RLIM_INFINITY` for unlimited).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// docker's names for the limits.
const NAMES: [(&str, i32); 16] = [
    ("as", libc::RLIMIT_AS as i32),
    ("core", libc::RLIMIT_CORE as i32),
    ("cpu", libc::RLIMIT_CPU as i32),
    ("data", libc::RLIMIT_DATA as i32),
    ("fsize", libc::RLIMIT_FSIZE as i32),
    ("locks", libc::RLIMIT_LOCKS as i32),
    ("memlock", libc::RLIMIT_MEMLOCK as i32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as i32),
    ("nice", libc::RLIMIT_NICE as i32),
    ("nofile", libc::RLIMIT_NOFILE as i32),
    ("nproc", libc::RLIMIT_NPROC as i32),
    ("rss", libc::RLIMIT_RSS as i32),
    ("rtprio", libc::RLIMIT_RTPRIO as i32),
    ("rttime", libc::RLIMIT_RTTIME as i32),
    ("sigpending", libc::RLIMIT_SIGPENDING as i32),
    ("stack", libc::RLIMIT_STACK as i32),
];

/// A `--ulimit` value that is wrong or cannot be granted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --ulimit {spec:?}: {reason}")]
pub struct RlimitError {
    /// The value as given.
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

/// A limit's value: a number, or `unlimited`/`-1`.
fn value(text: &str) -> Option<u64> {
    match text {
        "unlimited" | "-1" => Some(libc::RLIM_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Shows a limit as `ulimit` does.
fn show(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// Parses `TYPE=SOFT[:HARD]` (a missing HARD is SOFT, as in docker).
pub fn parse_ulimit(spec: &str) -> Result<Rlimit, RlimitError> {
    let err = |reason: String| RlimitError {
        spec: spec.to_string(),
        reason,
    };
    let (name, values) = spec
        .split_once('=')
        .ok_or_else(|| err("use TYPE=SOFT[:HARD], e.g. nofile=1024:4096".into()))?;
    let resource = NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            err(format!(
                "unknown type {name:?} (known: {})",
                known.join(", ")
            ))
        })?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let number = |v: &str| value(v).ok_or_else(|| err(format!("{v:?} is not a number")));
    let (soft, hard) = (number(soft)?, number(hard)?);
    if soft > hard {
        return Err(err(format!(
            "the soft limit {} is above the hard limit {}",
            show(soft),
            show(hard)
        )));
    }
    Ok(Rlimit {
        resource,
        soft,
        hard,
    })
}

/// The limit's current values for the calling process.
fn current(resource: i32) -> nix::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write; the resource number comes from NAMES.
    let res = unsafe { libc::getrlimit(resource as _, &mut lim) };
    Errno::result(res).map(|_| (lim.rlim_cur, lim.rlim_max))
}

/// Parses every `--ulimit` and checks, for a caller that is not root, that no hard limit is
/// raised above the current one (which only host root may do).
pub fn parse_all(specs: &[String]) -> Result<Vec<Rlimit>, RlimitError> {
    let root = nix::unistd::geteuid().is_root();
    specs
        .iter()
        .map(|spec| {
            let limit = parse_ulimit(spec)?;
            let (_, hard) = current(limit.resource).unwrap_or((0, libc::RLIM_INFINITY));
            if !root && limit.hard > hard {
                return Err(RlimitError {
                    spec: spec.clone(),
                    reason: format!(
                        "the hard limit cannot be raised above this session's {} without host root",
                        show(hard)
                    ),
                });
            }
            Ok(limit)
        })
        .collect()
}

/// Sets the limits on the calling process (the container's init, before it forks the
/// workload).
pub fn apply(limits: &[Rlimit]) -> nix::Result<()> {
    for limit in limits {
        let lim = libc::rlimit {
            rlim_cur: limit.soft as _,
            rlim_max: limit.hard as _,
        };
        // SAFETY: `lim` is a valid rlimit; the resource number comes from NAMES.
        Errno::result(unsafe { libc::setrlimit(limit.resource as _, &lim) })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax() {
        let l = parse_ulimit("nofile=1024:4096").unwrap();
        assert_eq!(
            (l.resource, l.soft, l.hard),
            (libc::RLIMIT_NOFILE as i32, 1024, 4096)
        );
        let l = parse_ulimit("core=0").unwrap();
        assert_eq!((l.soft, l.hard), (0, 0));
        let l = parse_ulimit("stack=8192:unlimited").unwrap();
        assert_eq!(l.hard, libc::RLIM_INFINITY);
        for bad in [
            "nofile",
            "nofiles=1",
            "nofile=x",
            "nofile=10:5",
            "nofile=1:2:3",
        ] {
            assert!(parse_ulimit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hard_limit_above_the_sessions_is_refused_unless_root() {
        let (_, hard) = current(libc::RLIMIT_NOFILE as i32).unwrap();
        let spec = vec![format!("nofile=1:{}", hard.saturating_add(1))];
        let got = parse_all(&spec);
        if nix::unistd::geteuid().is_root() || hard == libc::RLIM_INFINITY {
            assert!(got.is_ok());
        } else {
            assert!(got.unwrap_err().reason.contains("cannot be raised"));
        }
        assert!(parse_all(&["nofile=64:64".to_string()]).is_ok());
    }
}
