//! Hostile layers, unpacked for real by an unprivileged user: every `hostile-*` fixture
//! (path traversal through `..`, absolute names, symlinked parents, hardlinks out of the
//! root, whiteouts and opaque markers through symlinks, entries replacing the root) is built
//! into a binary and run. Whatever the runtime does, no host file outside the cache may be
//! created, changed or deleted; and each case must either
//!
//! * fail cleanly: exit 125, an error naming the offending entry, and no unpacked or partial
//!   entry left in the cache; or
//! * be confined: the run succeeds and every entry of the hostile layers landed inside the
//!   root (resolved the way the container resolves it).
//!
//! The attacks aim at `/tmp/oci2bin-hostile-victim/victim`, which is owned by the test user
//! here so that a confused unpacker running as that user could really damage it, and at
//! `/tmp/oci2bin-escape-*`, which must never appear.

use oci2bin_tests::image_tree::{layout_layer_names, normalize_entry_name, resolve_in_root};
use oci2bin_tests::{
    fixture_images, image_source, shared_binary, test_user, user_output, CacheState, TestDir,
    TestUser, UserCommand,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The fixtures' description file.
fn fixtures_json() -> Value {
    let path = fixture_images().join("fixtures.json");
    serde_json::from_slice(&fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Content of the victim file.
const VICTIM_CONTENT: &str = "victim of oci2bin's hostile fixtures: must never change\n";

/// Where the attacks aim, from fixtures.json.
struct Targets {
    victim_dir: PathBuf,
    victim_file: PathBuf,
    escape_prefix: String,
}

/// Creates the victim directory and file (owned by the test user) once per process and
/// removes escape files a previous failed run may have left.
fn targets(user: &TestUser) -> &'static Targets {
    static TARGETS: OnceLock<Targets> = OnceLock::new();
    TARGETS.get_or_init(|| {
        let json = fixtures_json();
        let s = |k: &str| {
            json[k]
                .as_str()
                .unwrap_or_else(|| panic!("fixtures.json: no {k}"))
                .to_string()
        };
        let t = Targets {
            victim_dir: PathBuf::from(s("victim_dir")),
            victim_file: PathBuf::from(s("victim_file")),
            escape_prefix: s("escape_prefix"),
        };
        fs::create_dir_all(&t.victim_dir).unwrap();
        fs::write(&t.victim_file, VICTIM_CONTENT).unwrap();
        for (p, mode) in [(&t.victim_dir, 0o755), (&t.victim_file, 0o644)] {
            std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).unwrap();
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        }
        for leftover in escapes(&t.escape_prefix) {
            eprintln!("removing {} left by an earlier run", leftover.display());
            let _ = fs::remove_dir_all(&leftover).or_else(|_| fs::remove_file(&leftover));
        }
        t
    })
}

/// Existing paths that start with the escape prefix (`/tmp/oci2bin-escape-`).
fn escapes(prefix: &str) -> Vec<PathBuf> {
    let prefix = Path::new(prefix);
    let (dir, start) = (
        prefix.parent().unwrap(),
        prefix.file_name().unwrap().to_string_lossy(),
    );
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&*start))
        .map(|e| e.path())
        .collect()
}

/// Everything observable about the victim directory and its files, and about the host
/// files a hardlink could reach.
fn snapshot(t: &Targets) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let describe = |p: &Path| -> String {
        match fs::symlink_metadata(p) {
            Ok(m) => format!(
                "ino {} nlink {} mode {:o} owner {}:{} size {} mtime {}.{} ctime {}.{}",
                m.ino(),
                m.nlink(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            ),
            Err(e) => format!("error {e}"),
        }
    };
    out.insert(t.victim_dir.display().to_string(), describe(&t.victim_dir));
    for entry in fs::read_dir(&t.victim_dir).unwrap().flatten() {
        let p = entry.path();
        let content = fs::read(&p).map(|b| String::from_utf8_lossy(&b).into_owned());
        out.insert(
            p.display().to_string(),
            format!("{} content {content:?}", describe(&p)),
        );
    }
    // A hardlink to /etc/passwd would raise its link count (its content may change while
    // tests create users, so only the inode is compared).
    let passwd = fs::metadata("/etc/passwd").unwrap();
    out.insert(
        "/etc/passwd".into(),
        format!("ino {} nlink {}", passwd.ino(), passwd.nlink()),
    );
    out
}

/// Serialises the runs: they all watch the same victim and /tmp.
static RUNS: Mutex<()> = Mutex::new(());

/// Paths below `dir` named `name`, not looking inside unpacked roots.
fn find_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if entry.file_name() == name {
            out.push(p.clone());
        }
        let is_root = entry.file_name() == "rootfs";
        if entry.file_type().is_ok_and(|t| t.is_dir()) && !is_root {
            find_named(&p, name, out);
        }
    }
}

fn run_case(name: &str) {
    let json = fixtures_json();
    let case = &json["fixtures"][name];
    assert_eq!(case["kind"], "hostile", "{name} is not a hostile fixture");
    let user = test_user();
    let t = targets(&user);
    let layout = fixture_images().join(name);
    let bin = shared_binary(
        "runtime_hostile",
        name,
        &image_source(&fixture_images(), name),
    );
    let layers = layout_layer_names(&layout, "latest");
    // The hostile entries: everything after the busybox base layer.
    let hostile: Vec<&String> = layers[1..].iter().flatten().collect();
    let dir = TestDir::new(&format!("runtime_{name}"));
    let cache = dir.user_dir("cache", &user);

    let _serial = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let before = snapshot(t);
    let out = user_output(
        &UserCommand::new(&user, &bin)
            .args(["--entrypoint", "/bin/busybox", "true"])
            .cache_dir(&cache)
            .current_dir(dir.path()),
    );
    let after = snapshot(t);
    let shown = format!(
        "{name} ({}): {}\n--- stderr\n{}",
        case["description"].as_str().unwrap_or(""),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing outside the cache changed.
    assert_eq!(before, after, "the victim or /etc/passwd changed: {shown}");
    let escaped = escapes(&t.escape_prefix);
    assert!(escaped.is_empty(), "escaped to {escaped:?}: {shown}");
    for must_not in case["must_not_exist"].as_array().into_iter().flatten() {
        let p = Path::new(must_not.as_str().unwrap());
        assert!(
            p.symlink_metadata().is_err(),
            "{} exists: {shown}",
            p.display()
        );
    }
    for beside in case["must_not_exist_beside_root"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut found = Vec::new();
        find_named(dir.path(), beside.as_str().unwrap(), &mut found);
        assert!(
            found.is_empty(),
            "created outside the root: {found:?}: {shown}"
        );
    }

    let state = CacheState::read(&cache);
    match out.status.code() {
        Some(125) => {
            // Failed cleanly: the error names the entry, nothing is left.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let named = hostile.iter().any(|n| {
                let shown_name = format!("/{}", normalize_entry_name(n));
                stderr.contains(&format!("entry {n}:"))
                    || stderr.contains(&format!("entry {shown_name}:"))
            });
            assert!(
                named,
                "the error does not name a hostile entry {hostile:?}: {shown}"
            );
            assert!(
                state.only_locks(),
                "a failed unpack left {state:?}: {shown}"
            );
        }
        Some(0) => {
            // Confined: every hostile entry is inside the root.
            let rootfs = state.single_rootfs(&cache);
            for n in &hostile {
                let rel = normalize_entry_name(n);
                let base = Path::new(&rel)
                    .file_name()
                    .map(|b| b.to_string_lossy().into_owned());
                if base.is_some_and(|b| b.starts_with(".wh.")) {
                    continue;
                }
                let inside = resolve_in_root(&rootfs, Path::new(&rel)).unwrap_or_else(|| {
                    panic!("{n} resolves to a symlink loop in the root: {shown}")
                });
                assert!(
                    inside.starts_with(&rootfs) && inside.symlink_metadata().is_ok(),
                    "entry {n} did not land inside the root (expected at {}): {shown}",
                    inside.display()
                );
            }
            for must_not in case["must_not_exist"].as_array().into_iter().flatten() {
                let inside =
                    resolve_in_root(&rootfs, Path::new(must_not.as_str().unwrap())).unwrap();
                assert!(
                    inside.symlink_metadata().is_ok(),
                    "{} is not inside the root: {shown}",
                    inside.display()
                );
            }
            // No file of the root is a host file (a hardlink out of the root).
            let host: Vec<(u64, u64)> = [t.victim_file.as_path(), Path::new("/etc/passwd")]
                .iter()
                .filter_map(|p| fs::metadata(p).ok())
                .map(|m| (m.dev(), m.ino()))
                .collect();
            let mut stack = vec![rootfs.clone()];
            while let Some(d) = stack.pop() {
                for e in fs::read_dir(&d).unwrap().flatten() {
                    let m = e.path().symlink_metadata().unwrap();
                    assert!(
                        !host.contains(&(m.dev(), m.ino())),
                        "{} is a hardlink to a host file: {shown}",
                        e.path().display()
                    );
                    if m.is_dir() {
                        stack.push(e.path());
                    }
                }
            }
        }
        _ => panic!("neither a clean failure (125) nor a successful confined run: {shown}"),
    }
}

macro_rules! hostile_cases {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            #[ignore = "e2e: needs root and the fixture images; run with --include-ignored"]
            fn $test() {
                run_case($name);
            }
        )*

        /// The fixtures this file has a test for.
        const CASES: &[&str] = &[$($name),*];
    };
}

hostile_cases! {
    absolute => "hostile-absolute",
    dotdot => "hostile-dotdot",
    dotdot_deep => "hostile-dotdot-deep",
    hardlink_etc_passwd => "hostile-hardlink-etc-passwd",
    hardlink_outside => "hostile-hardlink-outside",
    hardlink_then_file => "hostile-hardlink-then-file",
    opaque_through_symlink => "hostile-opaque-through-symlink",
    root_file => "hostile-root-file",
    root_symlink => "hostile-root-symlink",
    symlink_dotdot => "hostile-symlink-dotdot",
    symlink_dotdot_across_layers => "hostile-symlink-dotdot-across-layers",
    symlink_parent_dir_entry => "hostile-symlink-parent-dir-entry",
    symlink_root => "hostile-symlink-root",
    symlink_root_across_layers => "hostile-symlink-root-across-layers",
    symlink_then_file => "hostile-symlink-then-file",
    whiteout_through_symlink => "hostile-whiteout-through-symlink",
}

#[test]
#[ignore = "e2e: needs the fixture images; run with --include-ignored"]
fn every_hostile_fixture_has_a_test() {
    let json = fixtures_json();
    let mut hostile: Vec<&str> = json["fixtures"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["kind"] == "hostile")
        .map(|(k, _)| k.as_str())
        .collect();
    hostile.sort();
    let mut ours = CASES.to_vec();
    ours.sort();
    assert_eq!(
        hostile, ours,
        "add the new hostile fixtures to hostile_cases!"
    );
}
