//! Resolving the image's `User` (`name`, `uid`, `uid:gid`, `name:group`) to numeric ids with
//! the image's own `/etc/passwd` and `/etc/group`, the way docker (runc) does.
//!
//! The files are read from the image, never from the host: a name means what the image
//! says it means.

/// One `/etc/passwd` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PasswdEntry {
    pub(crate) name: String,
    pub(crate) uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Parses the well-formed lines of a passwd file (others are skipped, like libc does).
pub(crate) fn parse_passwd(contents: &str) -> Vec<PasswdEntry> {
    contents
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Parses the well-formed lines of a group file.
fn parse_group(contents: &str) -> Vec<GroupEntry> {
    contents
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// A user or group named in `User` that the image does not define.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// No passwd entry for a non-numeric user.
    #[error(
        "unable to find user {0}: no matching entries in the image's /etc/passwd \
         (use a numeric uid, or a user the image defines)"
    )]
    UnknownUser(String),
    /// No group entry for a non-numeric group.
    #[error(
        "unable to find group {0}: no matching entries in the image's /etc/group \
         (use a numeric gid, or a group the image defines)"
    )]
    UnknownGroup(String),
}

/// The ids and home directory the workload runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecUser {
    /// User id inside the container.
    pub uid: u32,
    /// Primary group id inside the container.
    pub gid: u32,
    /// Supplementary groups (from `/etc/group` membership; empty when a group was given
    /// explicitly, as in docker).
    pub additional_gids: Vec<u32>,
    /// Home directory for `HOME`: the passwd entry's, else `/root` for root and `/`.
    pub home: String,
}

/// Resolves a docker `User` string against the image's passwd and group files (either may be
/// absent: images built `FROM scratch` have none).
///
/// An empty string means root. A numeric user or group that the files do not list is used
/// as is; an unknown name is an error.
pub fn resolve_user(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric_uid = user_part.parse::<u32>().ok();
    let entries = passwd.map(parse_passwd).unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e.name == user_part || Some(e.uid) == numeric_uid);
    let (uid, mut gid, name, home) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.as_str()), e.home.clone()),
        (None, Some(uid)) => (uid, 0, None, String::new()),
        (None, None) => return Err(UserError::UnknownUser(user_part.to_string())),
    };
    let home = match home.as_str() {
        "" if uid == 0 => "/root".to_string(),
        "" => "/".to_string(),
        _ => home,
    };
    let groups = group.map(parse_group).unwrap_or_default();
    let mut additional_gids = Vec::new();
    match group_part.filter(|g| !g.is_empty()) {
        Some(g) => {
            let numeric_gid = g.parse::<u32>().ok();
            gid = groups
                .iter()
                .find(|e| e.name == g || Some(e.gid) == numeric_gid)
                .map(|e| e.gid)
                .or(numeric_gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?;
        }
        None => {
            if let Some(name) = name {
                for e in groups
                    .iter()
                    .filter(|e| e.members.iter().any(|m| m == name))
                {
                    if !additional_gids.contains(&e.gid) {
                        additional_gids.push(e.gid);
                    }
                }
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
redis:x:999:998::/data:/bin/sh
broken line
nohome:x:1234:1234:::/bin/sh
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,redis
audio:x:29:redis
redis:x:998:
staff:x:50:
";

    fn resolve(user: &str) -> Result<ExecUser, UserError> {
        resolve_user(user, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn default_is_root_with_root_home_and_groups() {
        let u = resolve("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.additional_gids, vec![10]);
    }

    #[test]
    fn name_resolves_ids_home_and_membership() {
        let u = resolve("redis").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (999, 998, "/data"));
        assert_eq!(u.additional_gids, vec![10, 29]);
    }

    #[test]
    fn numeric_user_listed_or_not() {
        let u = resolve("999").unwrap();
        assert_eq!((u.uid, u.gid), (999, 998));
        let u = resolve("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(u.additional_gids.is_empty());
        let u = resolve("1234").unwrap();
        assert_eq!(u.home, "/");
    }

    #[test]
    fn explicit_group_by_name_or_number_drops_supplementary_groups() {
        let u = resolve("redis:staff").unwrap();
        assert_eq!((u.uid, u.gid), (999, 50));
        assert!(u.additional_gids.is_empty());
        let u = resolve("0:7777").unwrap();
        assert_eq!((u.uid, u.gid), (0, 7777));
        let u = resolve("daemon:").unwrap();
        assert_eq!((u.uid, u.gid), (1, 1));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("nobody"),
            Err(UserError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            resolve("redis:nogroup"),
            Err(UserError::UnknownGroup("nogroup".into()))
        );
    }

    #[test]
    fn scratch_images_have_no_files() {
        let u = resolve_user("", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        let u = resolve_user("65534:65534", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (65534, 65534, "/"));
        assert!(resolve_user("www", None, None).is_err());
    }
}
