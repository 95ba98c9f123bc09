//! The `/etc` files docker writes into every container: `hostname`, `hosts` and
//! `resolv.conf`.
//!
//! They are written into the run's throwaway layer (never the cache), resolving the paths
//! inside the image, where `/etc/resolv.conf` is sometimes a symlink.

use crate::ns::error::ContainerError;
use crate::ns::syscall::Syscall;
use std::path::Path;

/// Where systemd-resolved keeps the real upstream servers when `/etc/resolv.conf` points at
/// its local stub.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// The contents of `/etc/hosts`: localhost and the container's hostname. We share the host's
/// network, so the hostname resolves to loopback.
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n\
         127.0.0.1\t{hostname}\n"
    )
}

/// Whether every `nameserver` in a resolv.conf is systemd-resolved's stub 127.0.0.53.
fn only_resolved_stub(resolv_conf: &str) -> bool {
    let mut servers = resolv_conf.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next().unwrap_or(""))
    });
    let mut any = false;
    let all_stub = servers.all(|s| {
        any = true;
        s == "127.0.0.53"
    });
    any && all_stub
}

/// Chooses the container's resolv.conf: the host's, unless it lists only systemd-resolved's
/// stub and the upstream list `resolved` (read lazily) exists, which is what docker does.
pub fn choose_resolv_conf(
    host: Option<Vec<u8>>,
    resolved: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let host = host?;
    if only_resolved_stub(&String::from_utf8_lossy(&host)) {
        if let Some(upstream) = resolved() {
            return Some(upstream);
        }
    }
    Some(host)
}

/// Reads the host's resolver configuration for the container (see [`choose_resolv_conf`]).
pub fn host_resolv_conf() -> Option<Vec<u8>> {
    choose_resolv_conf(std::fs::read("/etc/resolv.conf").ok(), || {
        std::fs::read(SYSTEMD_RESOLV_CONF).ok()
    })
}

/// Writes `/etc/hostname`, `/etc/hosts` and (when the host has one) `/etc/resolv.conf` into
/// the container's root.
pub fn write_etc_files(
    sys: &dyn Syscall,
    root: &Path,
    hostname: &str,
    resolv_conf: Option<&[u8]>,
) -> Result<(), ContainerError> {
    let hostname_file = format!("{hostname}\n");
    let hosts = hosts_file(hostname);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("/etc/hostname", hostname_file.as_bytes()),
        ("/etc/hosts", hosts.as_bytes()),
    ];
    if let Some(resolv) = resolv_conf {
        files.push(("/etc/resolv.conf", resolv));
    }
    for (path, contents) in files {
        sys.write_in_root(root, Path::new(path), contents)
            .map_err(|errno| ContainerError::WriteFile {
                path: path.into(),
                errno,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::recording::{Call, RecordingSyscall};

    #[test]
    fn hosts_maps_localhost_and_hostname() {
        let hosts = hosts_file("0123456789ab");
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.ends_with("127.0.0.1\t0123456789ab\n"));
    }

    #[test]
    fn resolved_stub_is_replaced_by_upstream_when_available() {
        let stub = b"# stub\nnameserver 127.0.0.53\noptions edns0\n".to_vec();
        let upstream = b"nameserver 192.0.2.1\n".to_vec();
        assert_eq!(
            choose_resolv_conf(Some(stub.clone()), || Some(upstream.clone())),
            Some(upstream)
        );
        assert_eq!(choose_resolv_conf(Some(stub.clone()), || None), Some(stub));
        let mixed = b"nameserver 127.0.0.53\nnameserver 192.0.2.9\n".to_vec();
        assert_eq!(
            choose_resolv_conf(Some(mixed.clone()), || panic!("not read")),
            Some(mixed)
        );
        let none = b"search example\n".to_vec();
        assert_eq!(
            choose_resolv_conf(Some(none.clone()), || panic!("not read")),
            Some(none)
        );
        assert_eq!(choose_resolv_conf(None, || panic!("not read")), None);
    }

    #[test]
    fn writes_three_files_inside_the_root() {
        let sys = RecordingSyscall::new();
        write_etc_files(
            &sys,
            Path::new("/r"),
            "abc",
            Some(b"nameserver 192.0.2.1\n"),
        )
        .unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                Call::WriteInRoot("/r".into(), "/etc/hostname".into(), "abc\n".into()),
                Call::WriteInRoot("/r".into(), "/etc/hosts".into(), hosts_file("abc")),
                Call::WriteInRoot(
                    "/r".into(),
                    "/etc/resolv.conf".into(),
                    "nameserver 192.0.2.1\n".into()
                ),
            ]
        );
        let sys = RecordingSyscall::new();
        write_etc_files(&sys, Path::new("/r"), "abc", None).unwrap();
        assert_eq!(sys.calls().len(), 2);
    }
}
