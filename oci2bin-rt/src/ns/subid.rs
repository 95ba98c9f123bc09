//! Subordinate id ranges from `/etc/subuid` and `/etc/subgid`.
//!
//! These files say which host ids an unprivileged user may map into a user namespace through
//! the setuid helpers `newuidmap`/`newgidmap`. Lines are `USER:START:COUNT`, where `USER` is a
//! login name or a numeric uid.

use std::path::Path;

/// One range of subordinate ids owned by a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubidRange {
    /// First host id of the range.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

/// The ranges in `contents` (a subuid/subgid file) that belong to the user named `name` or
/// with numeric id `id`, in file order. Malformed lines and empty ranges are ignored, as
/// shadow-utils does.
pub fn parse_ranges(contents: &str, name: Option<&str>, id: u32) -> Vec<SubidRange> {
    contents
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let owner = fields.next()?;
            let start = fields.next()?.trim().parse::<u32>().ok()?;
            let count = fields.next()?.trim().parse::<u32>().ok()?;
            if fields.next().is_some() || count == 0 {
                return None;
            }
            let owned = Some(owner) == name || owner.parse::<u32>().ok() == Some(id);
            owned.then_some(SubidRange { start, count })
        })
        .collect()
}

/// Reads the ranges of a user from a subuid/subgid file; a missing or unreadable file means
/// no ranges (the single-id mapping is used then).
pub fn read_ranges(file: &Path, name: Option<&str>, id: u32) -> Vec<SubidRange> {
    std::fs::read_to_string(file)
        .map(|contents| parse_ranges(&contents, name, id))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
alice:100000:65536
1001:200000:1000
bob:300000:65536
alice:500000:10
broken:line
carol:1:0
";

    #[test]
    fn matches_by_name_and_by_uid_in_file_order() {
        assert_eq!(
            parse_ranges(FILE, Some("alice"), 1001),
            vec![
                SubidRange {
                    start: 100000,
                    count: 65536
                },
                SubidRange {
                    start: 200000,
                    count: 1000
                },
                SubidRange {
                    start: 500000,
                    count: 10
                },
            ]
        );
        assert_eq!(
            parse_ranges(FILE, None, 1001),
            vec![SubidRange {
                start: 200000,
                count: 1000
            }]
        );
    }

    #[test]
    fn ignores_malformed_and_empty_ranges() {
        assert!(parse_ranges(FILE, Some("broken"), 5).is_empty());
        assert!(parse_ranges(FILE, Some("carol"), 5).is_empty());
        assert!(parse_ranges(FILE, Some("dave"), 5).is_empty());
    }

    #[test]
    fn missing_file_means_no_ranges() {
        assert!(read_ranges(Path::new("/nonexistent/subuid"), Some("root"), 0).is_empty());
    }
}
