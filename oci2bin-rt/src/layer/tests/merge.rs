//! The merged tree of several well-formed layers: whiteouts, opaque directories,
//! replacements, links, special files, modes, long names and mtimes.

use super::tar_builder::{Layer, MTIME};
use super::{apply_all, MODES};
use crate::layer::{ApplyReport, LayerError, ResolveMode};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Permission bits of `p` (not following a symlink).
fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// Contents of the file `p`.
fn read(p: &Path) -> String {
    String::from_utf8(fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("utf-8")
}

/// True if nothing (not even a dangling symlink) is at `p`.
fn absent(p: &Path) -> bool {
    fs::symlink_metadata(p).is_err()
}

/// Names in the directory `p`, sorted.
fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The lower layer of the main scenario.
fn lower() -> Vec<u8> {
    let long = format!("long/{}", "a".repeat(150));
    let pax_name = format!("pax/{}", "b".repeat(200));
    Layer::new()
        .dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/gone", 0o644, b"gone")
        .dir("etc/gonedir/", 0o755)
        .dir("etc/gonedir/sub/", 0o555)
        .file("etc/gonedir/sub/f", 0o644, b"f")
        .dir("opq/", 0o755)
        .file("opq/old1", 0o644, b"old")
        .dir("opq/olddir/", 0o755)
        .file("opq/olddir/f", 0o644, b"old")
        .dir("opq/keepdir/", 0o755)
        .file("opq/keepdir/old", 0o644, b"old")
        .dir("opq2/", 0o755)
        .file("opq2/old", 0o644, b"old")
        .file("f2d", 0o644, b"file")
        .dir("d2f/", 0o755)
        .file("d2f/child", 0o644, b"child")
        .symlink("l2d", "etc")
        .dir("d2l/", 0o755)
        .file("d2l/child", 0o644, b"child")
        .dir("bin/", 0o755)
        .file("bin/busybox", 0o755, b"busybox")
        .hardlink("bin/sh", "bin/busybox")
        .dir("tmp/", 0o1777)
        .file("usr/bin/su", 0o4755, b"su")
        .file("usr/bin/wall", 0o2755, b"wall")
        .file("secret", 0o000, b"s")
        .dir("locked/", 0o000)
        .file("locked/inner", 0o644, b"inner")
        .dir("ro/", 0o555)
        .file("ro/file", 0o444, b"ro")
        .fifo("fifo", 0o640)
        .dir("dev/", 0o755)
        .chardev("dev/null")
        .file(&long, 0o644, b"gnu long name")
        .pax(&[("path", pax_name.as_bytes())])
        .file("pax-short-name-is-ignored", 0o644, b"pax long name")
        .symlink_at("link", "/etc/passwd", 1_000_000)
        .dir_at("mt/", 0o755, 1_234_567)
        .file_at("mt/file", 0o644, 7_654_321, b"mt")
        .pax(&[("mtime", b"1700000000.25")])
        .file("paxtime", 0o644, b"t")
        .finish()
}

/// The upper layer of the main scenario.
fn upper() -> Vec<u8> {
    Layer::new()
        .whiteout("etc/.wh.gone")
        .whiteout("etc/.wh.gonedir")
        .whiteout("etc/.wh..wh.plnk")
        // Opaque marker after a redeclared child: the child is kept but its old
        // content goes.
        .dir("opq/", 0o755)
        .dir("opq/keepdir/", 0o750)
        .file("opq/keepdir/new2", 0o644, b"new2")
        .whiteout("opq/.wh..wh..opq")
        .file("opq/new", 0o644, b"new")
        // Opaque marker in the usual place, right after its directory.
        .dir("opq2/", 0o755)
        .whiteout("opq2/.wh..wh..opq")
        .file("opq2/fresh", 0o644, b"fresh")
        .dir("f2d/", 0o711)
        .file("f2d/x", 0o644, b"x")
        .file("d2f", 0o600, b"now a file")
        .dir("l2d/", 0o755)
        .file("l2d/inside", 0o644, b"in l2d")
        .symlink("d2l", "etc")
        .hardlink("bin/ash", "bin/busybox")
        .file("ro/added", 0o644, b"added")
        .file("locked/added", 0o644, b"added")
        .whiteout("locked/.wh.inner")
        .file("implicit/parent/file", 0o644, b"implicit")
        .finish()
}

/// Checks the tree the two layers must produce.
fn check_merged(r: &Path, report: &ApplyReport) {
    // whiteouts
    assert!(absent(&r.join("etc/gone")));
    assert!(absent(&r.join("etc/gonedir")));
    assert_eq!(read(&r.join("etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
    // opaque directories
    assert_eq!(names(&r.join("opq")), ["keepdir", "new"]);
    assert_eq!(names(&r.join("opq/keepdir")), ["new2"]);
    assert_eq!(mode(&r.join("opq/keepdir")), 0o750);
    assert_eq!(names(&r.join("opq2")), ["fresh"]);
    // replacements
    assert!(r.join("f2d").is_dir());
    assert_eq!(mode(&r.join("f2d")), 0o711);
    assert_eq!(read(&r.join("f2d/x")), "x");
    assert_eq!(read(&r.join("d2f")), "now a file");
    assert_eq!(mode(&r.join("d2f")), 0o600);
    let l2d = fs::symlink_metadata(r.join("l2d")).expect("l2d");
    assert!(l2d.is_dir(), "the symlink was replaced, not followed");
    assert_eq!(names(&r.join("l2d")), ["inside"]);
    assert!(absent(&r.join("etc/inside")));
    assert_eq!(
        fs::read_link(r.join("d2l")).expect("d2l is a symlink"),
        Path::new("etc")
    );
    // hardlinks, within and across layers
    let bb = fs::metadata(r.join("bin/busybox")).expect("busybox");
    for name in ["bin/sh", "bin/ash"] {
        let m = fs::symlink_metadata(r.join(name)).expect("link");
        assert_eq!((m.dev(), m.ino()), (bb.dev(), bb.ino()), "{name}");
    }
    assert_eq!(bb.nlink(), 3);
    // symlinks keep their target and mtime
    let link = fs::symlink_metadata(r.join("link")).expect("link");
    assert!(link.file_type().is_symlink());
    assert_eq!(
        fs::read_link(r.join("link")).expect("readlink"),
        Path::new("/etc/passwd")
    );
    assert_eq!(link.mtime(), 1_000_000);
    // special modes
    assert_eq!(mode(&r.join("tmp")), 0o1777);
    assert_eq!(mode(&r.join("usr/bin/su")), 0o4755);
    assert_eq!(mode(&r.join("usr/bin/wall")), 0o2755);
    assert_eq!(mode(&r.join("secret")), 0o000);
    assert_eq!(
        fs::symlink_metadata(r.join("secret"))
            .expect("secret")
            .len(),
        1
    );
    assert_eq!(mode(&r.join("ro")), 0o555, "restored after the upper layer");
    assert_eq!(names(&r.join("ro")), ["added", "file"]);
    assert_eq!(mode(&r.join("ro/file")), 0o444);
    // implicit parents are 0755 directories
    assert_eq!(read(&r.join("implicit/parent/file")), "implicit");
    assert_eq!(mode(&r.join("implicit")), 0o755);
    assert_eq!(mode(&r.join("usr/bin")), 0o755);
    // special files
    let fifo = fs::symlink_metadata(r.join("fifo")).expect("fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    assert!(absent(&r.join("dev/null")));
    assert_eq!(report.skipped_devices, 1);
    // long names
    assert_eq!(read(&r.join("long").join("a".repeat(150))), "gnu long name");
    assert_eq!(read(&r.join("pax").join("b".repeat(200))), "pax long name");
    assert!(absent(&r.join("pax-short-name-is-ignored")));
    // mtimes: files, directories (after their content), PAX fractions
    assert_eq!(
        fs::metadata(r.join("mt/file")).expect("stat").mtime(),
        7_654_321
    );
    assert_eq!(fs::metadata(r.join("mt")).expect("stat").mtime(), 1_234_567);
    let pt = fs::metadata(r.join("paxtime")).expect("stat");
    assert_eq!((pt.mtime(), pt.mtime_nsec()), (1_700_000_000, 250_000_000));
    assert_eq!(
        fs::metadata(r.join("etc/passwd")).expect("stat").mtime(),
        MTIME as i64
    );
    // the 0000 directory was filled by both layers and is 0000 at the end
    assert_eq!(mode(&r.join("locked")), 0o000);
    fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_eq!(names(&r.join("locked")), ["added"]);
    // counting
    assert_eq!(report.whiteouts, 5, "aufs metadata is not counted");
    assert!(
        report.recorded_owners.is_empty(),
        "{:?}",
        report.recorded_owners
    );
}

#[test]
fn layers_merge_like_docker() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let report = apply_all(base.path(), &[lower(), upper()], mode)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        check_merged(base.path(), &report);
        // The unpacking user can throw the tree away despite its 0555 and 0000 parts.
        crate::layer::remove_tree(base.path()).expect("remove the merged tree");
        assert!(absent(base.path()));
    }
}

#[test]
fn root_entry_sets_root_metadata_only() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        fs::write(base.path().join("keep"), b"k").expect("write");
        let layer = Layer::new()
            .dir_at("./", 0o750, 2_000_000)
            .dir("/", 0o751)
            .file("x", 0o644, b"x")
            .finish();
        let report = apply_all(base.path(), &[layer], mode).expect("apply");
        assert_eq!(report.entries, 3);
        assert_eq!(mode_of(base.path()), 0o751, "{mode:?}");
        assert_eq!(fs::read(base.path().join("keep")).expect("read"), b"k");
    }
}

/// Permission bits of a directory.
fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("stat").mode() & 0o7777
}

#[test]
fn a_read_only_root_from_a_lower_layer_can_still_be_filled() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let lower = Layer::new().dir("./", 0o555).finish();
        let upper = Layer::new().file("new", 0o644, b"n").finish();
        apply_all(base.path(), &[lower, upper], mode).expect("apply");
        assert_eq!(read(&base.path().join("new")), "n");
        assert_eq!(mode_of(base.path()), 0o555, "{mode:?}");
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[test]
fn owners_are_set_or_recorded() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let layer = Layer::new().owned_file("owned", 1234, 5678).finish();
        let report = apply_all(base.path(), &[layer], mode).expect("apply");
        let meta = fs::metadata(base.path().join("owned")).expect("stat");
        if nix::unistd::geteuid().is_root() {
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
            assert!(report.recorded_owners.is_empty());
        } else {
            assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
            assert_eq!(
                report.recorded_owners,
                [(Path::new("/owned").to_path_buf(), 1234, 5678)]
            );
        }
        assert_eq!(meta.mode() & 0o7777, 0o640);
    }
}

#[test]
fn hardlink_to_a_missing_target_names_both_paths() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let layer = Layer::new().hardlink("bin/sh", "bin/nothing").finish();
        let err = apply_all(base.path(), &[layer], mode).expect_err("missing target");
        assert!(matches!(err, LayerError::Link { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("/bin/sh") && msg.contains("/bin/nothing"),
            "{msg}"
        );
    }
}

#[test]
fn a_hardlink_to_itself_is_kept() {
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let layer = Layer::new()
            .file("f", 0o755, b"f")
            .hardlink("f", "f")
            .finish();
        apply_all(base.path(), &[layer], mode).expect("apply");
        assert_eq!(read(&base.path().join("f")), "f");
    }
}

#[test]
fn truncated_and_compressed_streams_are_tar_errors() {
    let good = Layer::new().file("a", 0o644, &[7; 4000]).finish();
    for mode in MODES {
        let base = tempfile::tempdir().expect("tempdir");
        let err = apply_all(base.path(), &[good[..2048].to_vec()], mode).expect_err("truncated");
        assert!(
            matches!(err, LayerError::Tar { near: Some(_), .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/a"), "{err}");
        let gzip_magic = [vec![0x1f, 0x8b, 8, 0], vec![0; 1020]].concat();
        let err = apply_all(base.path(), &[gzip_magic], mode).expect_err("not a tar");
        assert!(matches!(err, LayerError::Tar { near: None, .. }), "{err}");
    }
}

#[test]
fn unsupported_entry_types_are_errors() {
    let mut h = Layer::header(tar::EntryType::new(b'V'), 0o644);
    h.set_mtime(MTIME);
    let layer = Layer::new().raw(h, b"volume-label", None, b"").finish();
    let base = tempfile::tempdir().expect("tempdir");
    let err = apply_all(base.path(), &[layer], ResolveMode::default()).expect_err("V");
    assert!(
        matches!(err, LayerError::Unsupported { kind: 'V', .. }),
        "{err}"
    );
}

#[test]
fn old_style_directories_are_directories() {
    let mut h = Layer::header(tar::EntryType::Regular, 0o750);
    // set_entry_type writes b'0' for Regular; pre-POSIX tars have a NUL type byte.
    h.as_mut_bytes()[156] = 0;
    let layer = Layer::new()
        .raw(h, b"olddir/", None, b"")
        .file("olddir/f", 0o644, b"f")
        .finish();
    let base = tempfile::tempdir().expect("tempdir");
    apply_all(base.path(), &[layer], ResolveMode::default()).expect("apply");
    assert_eq!(mode_of(&base.path().join("olddir")), 0o750);
}
