//! The `docker run` options this runtime does not have, so that an unknown option can be
//! told apart from a typo: `--network` gets "a docker run option not supported here", while
//! `--netwrok` gets "unknown option". Both are errors (exit 125), never the container's
//! command.

/// `docker run`'s long options (docker 24 and podman 4) that the runtime does not implement,
/// sorted, each followed by a space: one string rather than a table of pointers, which a
/// static PIE would have to relocate.
const UNSUPPORTED: &str = concat!(
    " add-host annotation attach blkio-weight blkio-weight-device",
    " cgroup-parent cgroupns cidfile cpu-period cpu-quota cpu-rt-period",
    " cpu-rt-runtime cpu-shares cpus cpuset-cpus cpuset-mems detach",
    " detach-keys device device-cgroup-rule device-read-bps",
    " device-read-iops device-write-bps device-write-iops",
    " disable-content-trust dns dns-option dns-search domainname expose",
    " gidmap gpus group-add health-cmd health-interval health-retries",
    " health-start-period health-timeout ip ip6 ipc isolation kernel-memory",
    " label label-file link link-local-ip log-driver log-opt mac-address",
    " memory memory-reservation memory-swap memory-swappiness net network",
    " network-alias no-healthcheck oom-kill-disable oom-score-adj pid",
    " pids-limit platform pod publish publish-all pull restart runtime",
    " shm-size sig-proxy storage-opt sysctl uidmap userns uts volumes-from",
    " ",
);

/// `docker run`'s short options and their long names, for those the runtime lacks.
const UNSUPPORTED_SHORT: &[(char, &str)] = &[
    ('a', "attach"),
    ('c', "cpu-shares"),
    ('l', "label"),
    ('m', "memory"),
    ('p', "publish"),
    ('P', "publish-all"),
];

/// The long name of the `docker run` option `word` spells (`--network=host`, `-p`, `-p80:80`),
/// if it is one the runtime does not support.
pub fn unsupported_docker_option(word: &str) -> Option<&'static str> {
    if let Some(rest) = word.strip_prefix("--") {
        let name = rest.split_once('=').map_or(rest, |(n, _)| n);
        return UNSUPPORTED.split(' ').find(|n| !n.is_empty() && *n == name);
    }
    let c = word.strip_prefix('-')?.chars().next()?;
    UNSUPPORTED_SHORT
        .iter()
        .find(|(s, _)| *s == c)
        .map(|(_, long)| *long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_options_are_recognised_in_every_spelling() {
        assert_eq!(unsupported_docker_option("--network"), Some("network"));
        assert_eq!(unsupported_docker_option("--network=none"), Some("network"));
        assert_eq!(unsupported_docker_option("-p"), Some("publish"));
        assert_eq!(unsupported_docker_option("-p8080:80"), Some("publish"));
        assert_eq!(unsupported_docker_option("--netwrok"), None);
        assert_eq!(unsupported_docker_option("--port"), None);
        assert_eq!(unsupported_docker_option("-x"), None);
        assert_eq!(unsupported_docker_option("ls"), None);
    }

    #[test]
    fn the_list_is_sorted_and_has_no_duplicates() {
        let names: Vec<&str> = UNSUPPORTED.split_whitespace().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, names);
        assert!(UNSUPPORTED.starts_with(' ') && UNSUPPORTED.ends_with(' '));
        assert_eq!(unsupported_docker_option("--"), None);
    }
}
