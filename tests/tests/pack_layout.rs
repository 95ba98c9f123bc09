//! `pack` output read back by independent tools: skopeo must inspect it and umoci must unpack
//! it into the tree that was packed, and packing twice must give the same bytes.

use oci2bin_build::pack::{pack, platform_for_arch, PackOptions};
use oci2bin_rt::oci::{Compression, Digest};
use oci2bin_tests::oci_layout::read_config;
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{cargo_oci2bin, is_root};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tree with every kind of entry pack handles.
fn make_rootfs(root: &Path) {
    let dir = |p: &str, mode: u32| {
        fs::create_dir_all(root.join(p)).unwrap();
        fs::set_permissions(root.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, data: &str, mode: u32| {
        fs::write(root.join(p), data).unwrap();
        fs::set_permissions(root.join(p), fs::Permissions::from_mode(mode)).unwrap();
    };
    dir("bin", 0o755);
    dir("etc", 0o755);
    dir("tmp", 0o1777);
    dir("srv/shared", 0o2775);
    file("bin/tool", "#!/bin/sh\necho tool\n", 0o755);
    file("bin/suid", "s", 0o4755);
    file("etc/secret", "nobody may read this\n", 0o000);
    file("etc/conf", "key=value\n", 0o644);
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-hardlink")).unwrap();
    symlink("tool", root.join("bin/tool-symlink")).unwrap();
    symlink("/etc/conf", root.join("etc/abs-link")).unwrap();
    let long = root.join("l".repeat(120)).join("m".repeat(120));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("deep"), "long path\n").unwrap();
    let fifo = std::ffi::CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fs::set_permissions(root.join("fifo"), fs::Permissions::from_mode(0o600)).unwrap();
}

/// (kind, mode, uid, gid, content or link target, hardlink group) of an entry.
type EntryState = (char, u32, u32, u32, Vec<u8>, u64);

/// path -> state of every entry under `root`.
fn snapshot(root: &Path) -> BTreeMap<String, EntryState> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, u64> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let (kind, data) = if ft.is_dir() {
                stack.push(path.clone());
                ('d', Vec::new())
            } else if ft.is_symlink() {
                let t = fs::read_link(&path).unwrap();
                ('l', t.into_os_string().into_encoded_bytes())
            } else if ft.is_file() {
                ('f', fs::read(&path).unwrap())
            } else {
                ('p', Vec::new())
            };
            // Number inodes of multiply-linked files by first appearance, so two trees on
            // different filesystems compare equal.
            let next = inodes.len() as u64 + 1;
            let group = if ft.is_file() && md.nlink() > 1 {
                *inodes.entry(md.ino()).or_insert(next)
            } else {
                0
            };
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = if ft.is_symlink() {
                0
            } else {
                md.mode() & 0o7777
            };
            out.insert(rel, (kind, mode, md.uid(), md.gid(), data, group));
        }
    }
    // Inode numbering depends on read_dir order: renumber by sorted path.
    let mut renumber = BTreeMap::new();
    for v in out.values_mut() {
        if v.5 != 0 {
            let n = renumber.len() as u64 + 1;
            v.5 = *renumber.entry(v.5).or_insert(n);
        }
    }
    out
}

fn all_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn options(rootfs: &Path, out: &Path) -> PackOptions {
    let mut o = PackOptions::new(
        rootfs.to_path_buf(),
        out.to_path_buf(),
        "v1",
        platform_for_arch("amd64").unwrap(),
    );
    o.entrypoint = Some(vec!["/bin/tool".into()]);
    o.cmd = Some(vec!["--flag".into(), "two words".into()]);
    o.env = vec!["GREETING=hello world".into()];
    o.workdir = Some("/srv".into());
    o.user = Some("1000:1000".into());
    o.exposed_ports = vec!["6379/tcp".into(), "53/udp".into()];
    o.source_date_epoch = 1_700_000_000;
    o
}

#[test]
fn packed_layout_is_reproducible_and_read_by_skopeo_and_umoci() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = pack(&options(&rootfs, &a)).unwrap();
    let second = pack(&options(&rootfs, &b)).unwrap();
    assert_eq!(first, second);
    assert_eq!(all_files(&a), all_files(&b), "two packs differ");

    let inspect =
        run_ok(Command::new("skopeo").args(["inspect", &format!("oci:{}:v1", a.display())]));
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(inspect["Layers"], json!([first.layer.to_string()]));
    assert_eq!(inspect["Digest"], first.manifest.to_string());

    let config = read_config(&a, "v1");
    assert_eq!(
        config["config"],
        json!({
            "Entrypoint": ["/bin/tool"],
            "Cmd": ["--flag", "two words"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello world"],
            "WorkingDir": "/srv",
            "User": "1000:1000",
            "ExposedPorts": {"53/udp": {}, "6379/tcp": {}},
        })
    );

    let bundle = dir.path().join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !is_root() {
        unpack.arg("--rootless");
    }
    run_ok(
        unpack
            .args(["--image", &format!("{}:v1", a.display())])
            .arg(&bundle),
    );
    let (want, got) = (snapshot(&rootfs), snapshot(&bundle.join("rootfs")));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(
            (w.0, w.1, &w.4, w.5),
            (g.0, g.1, &g.4, g.5),
            "{path} differs"
        );
        if is_root() {
            assert_eq!((w.2, w.3), (g.2, g.3), "{path}: owner differs");
        }
    }
    // The hardlink really is one: both names share an inode after unpacking.
    assert_ne!(got["bin/tool"].5, 0);
}

#[test]
fn every_compression_is_accepted_by_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/hostname"), "box\n").unwrap();
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Zstd,
        Compression::Xz,
    ] {
        let out = dir.path().join(c.name());
        let mut o = PackOptions::new(
            rootfs.clone(),
            out.clone(),
            "latest",
            platform_for_arch("arm64").unwrap(),
        );
        o.compression = oci2bin_build::CompressSpec::parse(c.name()).unwrap();
        let outcome = pack(&o).unwrap();
        // skopeo copy checks the blob digests and, with --dest-decompress, decodes the layer
        // into a file named by its uncompressed digest: which must be the diff_id.
        let copy = dir.path().join(format!("{}-copy", c.name()));
        run_ok(Command::new("skopeo").args([
            "copy",
            "--dest-decompress",
            &format!("oci:{}:latest", out.display()),
            &format!("dir:{}", copy.display()),
        ]));
        if c == Compression::Xz {
            // skopeo 1.9 copies xz layers without decoding them: decode with xz(1) instead.
            let blob = copy.join(outcome.layer.hex());
            let tar = run_ok(Command::new("xz").arg("-dc").arg(&blob)).stdout;
            assert_eq!(Digest::of(&tar), outcome.diff_id);
            continue;
        }
        assert!(
            copy.join(outcome.diff_id.hex()).is_file(),
            "{c}: no decompressed layer named by the diff_id in {:?}",
            fs::read_dir(&copy)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
#[ignore = "e2e: needs root (mknod), run with --include-ignored"]
fn device_nodes_are_skipped_and_counted() {
    assert!(is_root(), "this test creates device nodes and needs root");
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("dev")).unwrap();
    for (name, kind) in [("null", libc::S_IFCHR), ("loop0", libc::S_IFBLK)] {
        let path =
            std::ffi::CString::new(rootfs.join("dev").join(name).as_os_str().as_encoded_bytes())
                .unwrap();
        // SAFETY: a valid path; mknod creates a node that nothing opens.
        let rc = unsafe { libc::mknod(path.as_ptr(), kind | 0o666, libc::makedev(1, 3)) };
        assert_eq!(rc, 0, "mknod {name}: {}", std::io::Error::last_os_error());
    }
    fs::write(rootfs.join("dev/regular"), "kept").unwrap();
    let out = dir.path().join("out");
    let outcome = pack(&PackOptions::new(
        rootfs,
        out.clone(),
        "latest",
        platform_for_arch("amd64").unwrap(),
    ))
    .unwrap();
    assert_eq!(outcome.skipped_devices, 2);
    assert_eq!(outcome.entries, 2, "dev/ and dev/regular");
}

#[test]
#[ignore = "e2e: builds cargo-oci2bin; run with --include-ignored"]
fn pack_command_line_writes_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let out = dir.path().join("layout");
    let output = Command::new(cargo_oci2bin())
        .args(["oci2bin", "pack"])
        .arg(&rootfs)
        .arg("-o")
        .arg(&out)
        .args([
            "--tag",
            "t1",
            "--entrypoint",
            "/bin/tool",
            "--cmd",
            r#"["a","b c"]"#,
        ])
        .args(["--env", "K=V", "--workdir", "/srv", "--user", "nobody"])
        .args(["--expose", "6379/tcp", "--arch", "arm64"])
        .env("SOURCE_DATE_EPOCH", "86400")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = read_config(&out, "t1");
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["created"], "1970-01-02T00:00:00Z");
    assert_eq!(config["config"]["Entrypoint"], json!(["/bin/tool"]));
    assert_eq!(config["config"]["Cmd"], json!(["a", "b c"]));
    assert_eq!(config["config"]["User"], "nobody");
    assert_eq!(config["config"]["ExposedPorts"], json!({"6379/tcp": {}}));
    // The command line gives the same image as the library with the same options.
    let mut o = options(&rootfs, &dir.path().join("lib"));
    o.tag = "t1".into();
    o.entrypoint = Some(vec!["/bin/tool".into()]);
    o.cmd = Some(vec!["a".into(), "b c".into()]);
    o.env = vec!["K=V".into()];
    o.user = Some("nobody".into());
    o.exposed_ports = vec!["6379/tcp".into()];
    o.platform = platform_for_arch("arm64").unwrap();
    o.source_date_epoch = 86_400;
    pack(&o).unwrap();
    assert_eq!(all_files(&out), all_files(&dir.path().join("lib")));
}
