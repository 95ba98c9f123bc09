//! The unprivileged users end-to-end tests run binaries as.
//!
//! `oci2bin-test` is an ordinary login user; it gets subordinate id ranges
//! (`oci2bin-test:200000:65536` in `/etc/subuid` and `/etc/subgid`) only when a test asks for
//! them with [`ensure_subids`], since a rootless runtime must also work without them.
//! `oci2bin-nosub` never has ranges: tests of the single-uid mode use it. Creating users needs
//! root; the edits are serialised with a file lock because tests run in parallel.

use crate::file_lock::FileLock;
use crate::paths::e2e_dir;
use crate::tools::{run_ok, system_tool};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// The user with optional subordinate ids.
pub const TEST_USER: &str = "oci2bin-test";
/// The user that never has subordinate ids.
pub const NOSUB_USER: &str = "oci2bin-nosub";
/// The subordinate id range [`ensure_subids`] gives: (first id, count).
pub const SUBID_RANGE: (u32, u32) = (200_000, 65_536);

/// A local user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

/// Whether this process runs as root (user management and most end-to-end tests need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn users_lock() -> FileLock {
    FileLock::acquire(&e2e_dir().join("locks/users.lock")).expect("cannot lock the users lock")
}

/// Looks a user up in the passwd database (`getent`, so NSS sources count too).
pub fn lookup_user(name: &str) -> Option<TestUser> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_passwd_line(String::from_utf8_lossy(&out.stdout).trim())
}

fn parse_passwd_line(line: &str) -> Option<TestUser> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(TestUser {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
    })
}

/// Creates user `name` with a home directory unless it exists, without subordinate ids
/// (`useradd` would otherwise allocate some because `/etc/subuid` exists).
pub fn ensure_user(name: &str) -> TestUser {
    let _lock = users_lock();
    if let Some(user) = lookup_user(name) {
        return user;
    }
    assert!(is_root(), "creating user {name} needs root");
    run_ok(
        Command::new(system_tool(&["/usr/sbin/useradd", "/sbin/useradd"]))
            .args(["--create-home", "--shell", "/bin/sh"])
            .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"])
            .arg(name),
    );
    lookup_user(name)
        .unwrap_or_else(|| panic!("useradd {name} succeeded but getent cannot find it"))
}

/// `oci2bin-test`, created if needed (subordinate ids untouched: see [`ensure_subids`]).
pub fn test_user() -> TestUser {
    ensure_user(TEST_USER)
}

/// `oci2bin-nosub`, created if needed, with any subordinate id ranges removed.
pub fn nosub_user() -> TestUser {
    let user = ensure_user(NOSUB_USER);
    let _lock = users_lock();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let kept = remove_ranges(&text, &user);
        if kept != text {
            fs::write(file, kept).unwrap_or_else(|e| panic!("cannot rewrite {file}: {e}"));
        }
    }
    user
}

/// Gives `user` the range [`SUBID_RANGE`] in `/etc/subuid` and `/etc/subgid` unless it has
/// a range there already; returns the user's first subordinate id and count in `/etc/subuid`.
pub fn ensure_subids(user: &TestUser) -> (u32, u32) {
    let _lock = users_lock();
    let mut first = None;
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        let range = match ranges_of(&text, user).into_iter().next() {
            Some(range) => range,
            None => {
                let mut text = text;
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!(
                    "{}:{}:{}\n",
                    user.name, SUBID_RANGE.0, SUBID_RANGE.1
                ));
                fs::write(file, text).unwrap_or_else(|e| panic!("cannot write {file}: {e}"));
                SUBID_RANGE
            }
        };
        first.get_or_insert(range);
    }
    first.expect("the loop ran")
}

/// The `(start, count)` ranges of `user` (by name or uid) in a subuid/subgid file.
fn ranges_of(text: &str, user: &TestUser) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() == 3 && owns(f[0], user))
                .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
                .flatten()
        })
        .collect()
}

fn remove_ranges(text: &str, user: &TestUser) -> String {
    text.lines()
        .filter(|line| !owns(line.split(':').next().unwrap_or(""), user))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn owns(field: &str, user: &TestUser) -> bool {
    field == user.name || field == user.uid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> TestUser {
        parse_passwd_line("oci2bin-test:x:1001:1002::/home/oci2bin-test:/bin/sh").unwrap()
    }

    #[test]
    fn parses_passwd_lines() {
        let u = user();
        assert_eq!((u.uid, u.gid), (1001, 1002));
        assert_eq!(u.home, PathBuf::from("/home/oci2bin-test"));
        assert!(parse_passwd_line("short:x:1").is_none());
        assert!(parse_passwd_line("bad:x:uid:1::/:/bin/sh").is_none());
    }

    #[test]
    fn finds_and_removes_ranges_by_name_or_uid() {
        let text = "alice:100000:65536\noci2bin-test:200000:65536\n1001:300000:10\nbroken\n";
        assert_eq!(ranges_of(text, &user()), [(200_000, 65_536), (300_000, 10)]);
        assert_eq!(remove_ranges(text, &user()), "alice:100000:65536\nbroken\n");
        assert!(ranges_of("alice:1:2\n", &user()).is_empty());
    }
}
