//! The cache of unpacked images under real conditions: concurrent first runs, a run killed
//! in the middle of unpacking, a cache on a `noexec` or full file system, and a binary whose
//! embedded layer was damaged. In every failure the cache must be left without a partial
//! entry, and a later run must work.
//!
//! The binaries run as the unprivileged test user, each test with its own cache directory.

use oci2bin_rt::payload::Payload;
use oci2bin_tests::{
    fixture_images, image_source, shared_binary, test_images, test_user, user_output, CacheState,
    TestDir, TestUser, TmpfsMount, UserCommand,
};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn binary(name: &str, layout_dir: fn() -> PathBuf) -> PathBuf {
    shared_binary("runtime_cache", name, &image_source(&layout_dir(), name))
}

/// The redis binary: big enough (tens of MB unpacked) that unpacking takes a while.
fn redis() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("redis", test_images))
}

fn busybox() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("busybox", test_images))
}

/// The three-layer fixture image.
fn layered() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| binary("layered", fixture_images))
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(user: &TestUser, bin: &Path, cache: &Path, cwd: &Path, args: &[&str]) -> Output {
    user_output(
        &UserCommand::new(user, bin)
            .args(args)
            .cache_dir(cache)
            .current_dir(cwd),
    )
}

/// Every path below `root` with its type and size (symlinks: their target), for comparing
/// two unpacks of the same image.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o}", meta.mode() & 0o7777)
            } else if meta.file_type().is_symlink() {
                format!("symlink {}", fs::read_link(&path).unwrap().display())
            } else {
                format!("{:o} {} bytes", meta.mode() & 0o7777, meta.len())
            };
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), what);
        }
    }
    out
}

/// Arguments that check a redis root is usable: the server binary runs and prints
/// `Redis server v=...` (`--` because `--version` alone is the binary's own option).
const REDIS_VERSION: [&str; 4] = ["--entrypoint", "redis-server", "--", "--version"];

/// [`REDIS_VERSION`] with `--debug` first, which reports unpacking on stderr.
fn debug_redis_version() -> Vec<&'static str> {
    std::iter::once("--debug").chain(REDIS_VERSION).collect()
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn concurrent_first_runs_unpack_once() {
    let dir = TestDir::new("runtime_cache_concurrent");
    let user = test_user();
    let cache = dir.user_dir("cache", &user);
    let bin = redis();
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| run(&user, bin, &cache, dir.path(), &debug_redis_version())))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut unpacks = 0;
    for out in &outputs {
        assert!(
            out.status.success(),
            "a concurrent run failed: {}",
            show(out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("Redis server v="),
            "{}",
            show(out)
        );
        unpacks += String::from_utf8_lossy(&out.stderr)
            .matches("oci2bin: unpacked ")
            .count();
    }
    assert_eq!(
        unpacks, 1,
        "the image was unpacked {unpacks} times by 8 runs"
    );
    let state = CacheState::read(&cache);
    state.single_rootfs(&cache);
    assert!(state.locks.len() <= 1, "{state:?}");
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn run_killed_mid_unpack_is_repaired() {
    let dir = TestDir::new("runtime_cache_killed");
    let user = test_user();
    let cache = dir.user_dir("cache", &user);
    let bin = redis();
    let mut guard = UserCommand::new(&user, bin)
        .args(["--entrypoint", "/bin/true"])
        .cache_dir(&cache)
        .current_dir(dir.path())
        .spawn(&dir.join("first.log"))
        .unwrap();
    // Wait until the unpack has started writing files, then kill the whole run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = CacheState::read(&cache);
        let started = state.temps.iter().any(|t| {
            fs::read_dir(cache.join("images").join(t).join("rootfs"))
                .is_ok_and(|mut d| d.next().is_some())
        });
        if started {
            break;
        }
        assert!(
            guard.try_status().is_none() && Instant::now() < deadline,
            "no unpack in progress was seen: {state:?}\n{}",
            guard.log()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    guard.signal(libc::SIGKILL);
    let status = guard
        .wait_timeout(Duration::from_secs(10))
        .expect("killed run exits");
    assert!(!status.success());
    let state = CacheState::read(&cache);
    assert!(
        state.images.is_empty() && state.temps.len() == 1,
        "the kill did not interrupt the unpack (it finished first?): {state:?}"
    );

    // The next run removes the partial unpack, unpacks again and runs.
    let out = run(&user, bin, &cache, dir.path(), &debug_redis_version());
    assert!(
        out.status.success(),
        "the run after the kill failed: {}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Redis server v="),
        "{}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&state.temps[0]),
        "the partial unpack {} was not mentioned: {}",
        state.temps[0],
        show(&out)
    );
    let repaired = CacheState::read(&cache).single_rootfs(&cache);

    // And the repaired root is the whole image: the same as an undisturbed unpack.
    let clean_cache = dir.user_dir("clean-cache", &user);
    let out = run(&user, bin, &clean_cache, dir.path(), &REDIS_VERSION);
    assert!(out.status.success(), "{}", show(&out));
    let clean = CacheState::read(&clean_cache).single_rootfs(&clean_cache);
    let (a, b) = (tree(&repaired), tree(&clean));
    let differ: Vec<_> = a
        .iter()
        .filter(|(p, v)| b.get(*p) != Some(*v))
        .map(|(p, _)| p)
        .chain(b.keys().filter(|p| !a.contains_key(*p)))
        .take(10)
        .collect();
    assert!(
        differ.is_empty(),
        "the repaired root differs from a clean unpack: {differ:?}"
    );
    assert!(
        a.len() > 1000,
        "suspiciously small redis root: {} entries",
        a.len()
    );
}

#[test]
#[ignore = "e2e: needs root (mount) and the test images; run with --include-ignored"]
fn noexec_cache_is_refused_with_advice() {
    let dir = TestDir::new("runtime_cache_noexec");
    let user = test_user();
    let mount = TmpfsMount::new(&dir.join("noexec"), libc::MS_NOEXEC, "size=64m", &user);
    let out = run(&user, busybox(), mount.path(), dir.path(), &["echo", "ran"]);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(out.stdout.is_empty(), "the workload ran: {}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("noexec") && stderr.contains("OCI2BIN_CACHE_DIR"),
        "the message does not explain noexec and suggest OCI2BIN_CACHE_DIR: {}",
        show(&out)
    );
    let state = CacheState::read(mount.path());
    assert!(state.only_locks(), "partial entry left: {state:?}");
}

#[test]
#[ignore = "e2e: needs root (mount) and the test images; run with --include-ignored"]
fn full_cache_fails_with_no_space_and_cleans_up() {
    let dir = TestDir::new("runtime_cache_full");
    let user = test_user();
    let mount = TmpfsMount::new(&dir.join("tiny"), 0, "size=2m", &user);
    let out = run(&user, redis(), mount.path(), dir.path(), &REDIS_VERSION);
    assert_eq!(out.status.code(), Some(125), "{}", show(&out));
    assert!(out.stdout.is_empty(), "the workload ran: {}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("no space"),
        "no 'no space' message: {}",
        show(&out)
    );
    let state = CacheState::read(mount.path());
    assert!(state.only_locks(), "partial entry left: {state:?}");
    // The partial unpack's blocks were freed, not just unlinked from the listing.
    let st = nix_statvfs(mount.path());
    assert!(
        st.0 * 10 >= st.1 * 9,
        "the tmpfs is still {}% full after the failed unpack",
        100 - st.0 * 100 / st.1
    );
}

/// (free blocks, total blocks) of the file system at `path`.
fn nix_statvfs(path: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs into a zeroed struct with a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    (st.f_bfree as u64, st.f_blocks as u64)
}

/// Copies `bin` into `dir` with one byte flipped in the middle of its embedded layer
/// `index` (from 0; the binary is also a tar of its payload, which gives the offset).
fn corrupt_copy(bin: &Path, dir: &TestDir, index: usize) -> PathBuf {
    let mut bytes = fs::read(bin).unwrap();
    let (offset, len) = {
        let payload = Payload::parse(&bytes).expect("the binary is its payload tar");
        let layer = &payload.layers[index];
        let offset = layer.bytes.as_ptr() as usize - bytes.as_ptr() as usize;
        (offset, layer.bytes.len())
    };
    bytes[offset + len / 2] ^= 0x55;
    let out = dir.join(format!(
        "{}-corrupt",
        bin.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&out, &bytes).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).unwrap();
    out
}

/// Runs the damaged copy `bad` of an executable (`echo ran`) as `user` with `cache`, and
/// checks it refused (125), ran nothing and left nothing but locks; returns its stderr.
fn refused(user: &TestUser, bad: &Path, cache: &Path, dir: &TestDir) -> String {
    let out = run(user, bad, cache, dir.path(), &["/bin/sh", "-c", "echo ran"]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}: {}",
        bad.display(),
        show(&out)
    );
    assert!(out.stdout.is_empty(), "the workload ran: {}", show(&out));
    let state = CacheState::read(cache);
    assert!(
        state.only_locks(),
        "{}: left in the cache: {state:?}",
        bad.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn truncated_binary_says_so_and_runs_nothing() {
    let dir = TestDir::new("runtime_cache_truncated");
    let user = test_user();
    let bytes = fs::read(busybox()).unwrap();
    // Cut inside the attached payload, as an interrupted download or copy would.
    for (i, keep) in [bytes.len() - 1, bytes.len() / 2 + bytes.len() / 4]
        .into_iter()
        .enumerate()
    {
        let bad = dir.join(format!("busybox-truncated-{i}"));
        fs::write(&bad, &bytes[..keep]).unwrap();
        fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
        let cache = dir.user_dir(&format!("cache-{i}"), &user);
        let stderr = refused(&user, &bad, &cache, &dir);
        assert!(
            stderr.contains("truncated")
                && stderr.contains(&*fs::canonicalize(&bad).unwrap().display().to_string())
                && stderr.contains(&format!("ends at byte {}", bytes.len()))
                && stderr.contains(&format!("has {keep} bytes")),
            "{stderr}"
        );
    }
}

#[test]
#[ignore = "e2e: needs root and the test images; run with --include-ignored"]
fn corrupt_layer_is_refused_before_anything_runs() {
    let dir = TestDir::new("runtime_cache_corrupt");
    let user = test_user();
    let layered_layers = Payload::parse(&fs::read(layered()).unwrap())
        .unwrap()
        .layers
        .len();
    assert!(layered_layers >= 2);
    // The only layer of busybox; the last of the layered image, after the lower layers were
    // already unpacked.
    for (i, (bin, index)) in [(busybox(), 0), (layered(), layered_layers - 1)]
        .into_iter()
        .enumerate()
    {
        let bad = corrupt_copy(bin, &dir, index);
        let cache = dir.user_dir(&format!("cache-{i}"), &user);
        let stderr = refused(&user, &bad, &cache, &dir);
        assert!(
            stderr.contains("corrupt") && stderr.contains(&format!("layer {}", index + 1)),
            "the message does not name the corrupt layer {}: {stderr}",
            index + 1
        );
        // The intact binary works with the same cache.
        let out = run(
            &user,
            bin,
            &cache,
            dir.path(),
            &["/bin/sh", "-c", "echo ran"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ran\n",
            "{}",
            show(&out)
        );
    }
}
