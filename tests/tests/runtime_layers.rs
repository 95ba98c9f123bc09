//! Layer semantics end to end: the `layered` fixture image, built into a binary and run as
//! an unprivileged user, must unpack to exactly the merged tree that the fixture generator
//! computed (`layered.expected.json`): whiteouts, opaque directories, file/directory and
//! symlink/directory replacement, hardlink groups, a FIFO, a mode-0000 file, setuid, setgid
//! and sticky modes, GNU and PAX long names, owners and mtimes.
//!
//! The tree is checked twice: from the host, in the cache's `images/<hex>/rootfs` (every
//! attribute), and from inside the container with the image's own busybox `find` and `stat`
//! (what the workload sees through the overlay).

use oci2bin_tests::image_tree::{layout_layer_names, normalize_entry_name};
use oci2bin_tests::{
    fixture_images, image_source, shared_binary, test_user, user_output, CacheState, TestDir,
    UserCommand,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The fixture's binary, built once for this file.
fn layered() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        shared_binary(
            "runtime_layers",
            "layered",
            &image_source(&fixture_images(), "layered"),
        )
    })
}

/// One entry of `layered.expected.json`.
#[derive(Clone, Debug)]
struct Expected {
    path: String,
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    size: Option<u64>,
    sha256: Option<String>,
    target: Option<String>,
    /// The first path of its hardlink group (itself if it is not a link).
    inode_of: String,
}

fn expected_tree() -> Vec<Expected> {
    let path = fixture_images().join("layered.expected.json");
    let json: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(str::to_string);
            let n = |k: &str| e[k].as_u64();
            let path = s("path").expect("path");
            Expected {
                inode_of: s("same_inode_as").unwrap_or_else(|| path.clone()),
                path,
                kind: s("type").expect("type"),
                mode: n("mode").expect("mode") as u32,
                uid: n("uid").expect("uid") as u32,
                gid: n("gid").expect("gid") as u32,
                mtime: e["mtime"].as_i64().expect("mtime"),
                size: n("size"),
                sha256: s("sha256"),
                target: s("target"),
            }
        })
        .collect()
}

/// Directories whose contents a layer changes without having an entry for the directory
/// itself: their mtime becomes the time of the unpack, as with Docker's overlay2 driver, so
/// the expected mtime (from the directory's last entry) does not apply.
fn touched_later(layers: &[Vec<String>]) -> BTreeSet<String> {
    let layers: Vec<Vec<String>> = layers
        .iter()
        .map(|l| l.iter().map(|n| normalize_entry_name(n)).collect())
        .collect();
    let mut touched = BTreeSet::new();
    for (i, names) in layers.iter().enumerate() {
        for dir in names {
            let later_child = layers[i + 1..].iter().enumerate().any(|(j, later)| {
                let own_entry_after = layers[i + 1 + j..].iter().any(|l| l.contains(dir));
                !own_entry_after
                    && later
                        .iter()
                        .any(|n| Path::new(n).parent() == Some(Path::new(dir)))
            });
            if later_child {
                touched.insert(dir.clone());
            }
        }
    }
    touched
}

/// `uid:gid /path` lines of the unpack's `owners.txt` (owners an unprivileged unpack could
/// not set), last record per path.
fn recorded_owners(rootfs: &Path) -> HashMap<String, (u32, u32)> {
    let text = fs::read_to_string(rootfs.parent().unwrap().join("owners.txt")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (ids, path) = l.split_once(' ')?;
            let (u, g) = ids.split_once(':')?;
            Some((
                path.trim_start_matches('/').to_string(),
                (u.parse().ok()?, g.parse().ok()?),
            ))
        })
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    oci2bin_rt::oci::Digest::of(&fs::read(path).unwrap())
        .hex()
        .to_string()
}

/// Every path below `root` (relative) with its metadata, not following symlinks.
fn walk(root: &Path) -> BTreeMap<String, fs::Metadata> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let rel = rel.join(entry.unwrap().file_name());
            let meta = fs::symlink_metadata(root.join(&rel)).unwrap();
            if meta.is_dir() {
                stack.push(rel.clone());
            }
            out.insert(rel.to_string_lossy().into_owned(), meta);
        }
    }
    out
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else if t.is_fifo() {
        "fifo"
    } else {
        "other"
    }
}

/// Hardlink groups: first path -> all paths.
fn groups(expected: &[Expected]) -> BTreeMap<&str, Vec<&str>> {
    let mut g: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in expected {
        g.entry(&e.inode_of).or_default().push(&e.path);
    }
    g
}

/// Runs the image's busybox inside the container over its whole root file system (not
/// descending into other mounts) and returns path -> "kind|mode|size|inode|target".
fn inside_view(
    user: &oci2bin_tests::TestUser,
    cache: &Path,
    cwd: &Path,
) -> BTreeMap<String, String> {
    let script = r#"cd / && /bin/busybox find . -xdev | while IFS= read -r p; do
        t=$(/bin/busybox stat -c '%F|%a|%s|%i' "$p") || exit 1
        l=''; [ -L "$p" ] && l=$(/bin/busybox readlink "$p")
        printf '%s|%s|%s\n' "$p" "$t" "$l"
    done"#;
    let out = user_output(
        &UserCommand::new(user, layered())
            .args(["/bin/busybox", "sh", "-c", script])
            .cache_dir(cache)
            .current_dir(cwd),
    );
    assert!(
        out.status.success(),
        "listing the root inside the container failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 names")
        .lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once('|')?;
            let path = path.trim_start_matches("./").trim_start_matches('.');
            (!path.is_empty()).then(|| (path.to_string(), rest.to_string()))
        })
        .collect()
}

#[test]
#[ignore = "e2e: needs root and the fixture images; run with --include-ignored"]
fn layered_image_unpacks_to_the_expected_tree() {
    let dir = TestDir::new("runtime_layers");
    let user = test_user();
    let cache = dir.user_dir("cache", &user);
    let expected = expected_tree();
    let layers = layout_layer_names(&fixture_images().join("layered"), "latest");
    assert!(layers.len() >= 3, "the fixture has {} layers", layers.len());

    let inside = inside_view(&user, &cache, dir.path());
    let rootfs = CacheState::read(&cache).single_rootfs(&cache);
    let actual = walk(&rootfs);
    let owners = recorded_owners(&rootfs);
    let touched = touched_later(&layers);
    let mut problems: Vec<String> = Vec::new();

    // --- the cache, from the host
    let want: BTreeSet<&str> = expected.iter().map(|e| e.path.as_str()).collect();
    for p in actual.keys().filter(|p| !want.contains(p.as_str())) {
        problems.push(format!(
            "host: {p} exists but should not (whiteout, opaque dir, replaced?)"
        ));
    }
    for e in &expected {
        let Some(m) = actual.get(&e.path) else {
            problems.push(format!("host: {} is missing", e.path));
            continue;
        };
        let p = &e.path;
        if kind_of(m) != e.kind {
            problems.push(format!(
                "host: {p} is a {}, expected a {}",
                kind_of(m),
                e.kind
            ));
            continue;
        }
        if e.kind != "symlink" && m.mode() & 0o7777 != e.mode {
            problems.push(format!(
                "host: {p} mode {:04o}, expected {:04o}",
                m.mode() & 0o7777,
                e.mode
            ));
        }
        if !(e.kind == "dir" && touched.contains(p)) && m.mtime() != e.mtime {
            problems.push(format!(
                "host: {p} mtime {}, expected {}",
                m.mtime(),
                e.mtime
            ));
        }
        // Owners an unprivileged unpack cannot set are recorded instead.
        let owner = owners.get(p).copied().unwrap_or((m.uid(), m.gid()));
        if e.inode_of == *p && owner != (e.uid, e.gid) {
            problems.push(format!(
                "host: {p} owner {owner:?}, expected {:?}",
                (e.uid, e.gid)
            ));
        }
        if let Some(size) = e.size {
            if m.len() != size {
                problems.push(format!("host: {p} size {}, expected {size}", m.len()));
            }
        }
        if let Some(sum) = &e.sha256 {
            if &sha256_hex(&rootfs.join(p)) != sum {
                problems.push(format!("host: {p} content differs"));
            }
        }
        if let Some(target) = &e.target {
            let got = fs::read_link(rootfs.join(p)).unwrap();
            if got != Path::new(target) {
                problems.push(format!(
                    "host: {p} -> {}, expected -> {target}",
                    got.display()
                ));
            }
        }
    }
    for (first, members) in groups(&expected) {
        let (Some(a), true) = (
            actual.get(first),
            expected.iter().any(|e| e.path == first && e.kind == "file"),
        ) else {
            continue;
        };
        for m in &members {
            if actual
                .get(*m)
                .is_some_and(|b| (b.dev(), b.ino()) != (a.dev(), a.ino()))
            {
                problems.push(format!("host: {m} is not a hardlink of {first}"));
            }
        }
        if a.nlink() != members.len() as u64 {
            problems.push(format!(
                "host: {first} has {} links, expected {} ({members:?})",
                a.nlink(),
                members.len()
            ));
        }
    }

    // --- the root the workload sees
    let image_paths: BTreeSet<String> = layers
        .iter()
        .flatten()
        .map(|n| normalize_entry_name(n))
        .collect();
    for p in inside.keys().filter(|p| !want.contains(p.as_str())) {
        // The runtime adds mount points and /etc files of its own; anything the layers
        // named must be exactly as expected.
        if image_paths.contains(p) {
            problems.push(format!("inside: {p} is visible but should not be"));
        }
    }
    let mut inode_inside: HashMap<&str, String> = HashMap::new();
    for e in &expected {
        let Some(line) = inside.get(&e.path) else {
            problems.push(format!("inside: {} is missing", e.path));
            continue;
        };
        let f: Vec<&str> = line.splitn(5, '|').collect();
        let (kind, mode, size, inode, target) = (f[0], f[1], f[2], f[3], f[4]);
        let want_kind = match e.kind.as_str() {
            "dir" => "directory",
            "file" => "regular file",
            "symlink" => "symbolic link",
            "fifo" => "fifo",
            other => other,
        };
        // busybox names an empty regular file "regular empty file".
        if kind != want_kind && !(want_kind == "regular file" && kind == "regular empty file") {
            problems.push(format!(
                "inside: {} is a {kind}, expected a {want_kind}",
                e.path
            ));
        }
        if e.kind != "symlink" && u32::from_str_radix(mode, 8).ok() != Some(e.mode) {
            problems.push(format!(
                "inside: {} mode {mode}, expected {:o}",
                e.path, e.mode
            ));
        }
        if e.size.is_some_and(|s| size != s.to_string()) {
            problems.push(format!(
                "inside: {} size {size}, expected {:?}",
                e.path, e.size
            ));
        }
        if e.target.as_deref().is_some_and(|t| t != target) {
            problems.push(format!(
                "inside: {} -> {target}, expected -> {:?}",
                e.path, e.target
            ));
        }
        if e.kind == "file" {
            let first = inode_inside
                .entry(&e.inode_of)
                .or_insert_with(|| inode.to_string());
            if first != inode {
                problems.push(format!(
                    "inside: {} is not a hardlink of {}",
                    e.path, e.inode_of
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the unpacked layered image differs from {} in {} way(s):\n  {}",
        fixture_images().join("layered.expected.json").display(),
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn directories_changed_by_later_layers_are_found() {
    let layers = vec![
        vec![
            "etc/".into(),
            "etc/passwd".into(),
            "keep/".into(),
            "opaque/".into(),
            "x/".into(),
        ],
        vec![
            "etc/passwd".into(),
            "keep/.wh.b".into(),
            "opaque/.wh..wh..opq".into(),
        ],
        vec!["./keep/".into(), "x/y/".into()],
    ];
    let touched: Vec<String> = touched_later(&layers).into_iter().collect();
    assert_eq!(touched, ["etc", "opaque", "x"]);
}
