//! Cross-building for aarch64: `--target aarch64-unknown-linux-musl` picks the arm64 image,
//! produces an aarch64 executable whose polyglot shift keeps the 64 KiB `p_align` congruence,
//! which qemu-user can start; and a multi-platform layout gives each target its own platform.
//!
//! The arm64 image is packed from Debian's `busybox-static:arm64` (see
//! `oci2bin_tests::arm64`). qemu-user does not emulate the namespace-creating `clone` flags,
//! so a real container run under it is expected to fail: the test then requires a prompt,
//! clear error instead of a hang.

use oci2bin_tests::arm64::{arm64_busybox, busybox_rootfs};
use oci2bin_tests::built::{assert_built, inspect_json, oci2bin_in, pack};
use oci2bin_tests::elf::{read_elf, EM_AARCH64, EM_X86_64};
use oci2bin_tests::oci_layout::manifests_for_tag;
use oci2bin_tests::paths::e2e_dir;
use oci2bin_tests::tools::run_ok;
use oci2bin_tests::{test_user, TestDir, UserCommand};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

const AARCH64: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "/usr/bin/qemu-aarch64-static";

/// The arm64 busybox layout (`<dir>/busybox`, tag `latest`, Cmd `sh`) and the executables
/// built from it for aarch64 (polyglot and `--no-polyglot`), made once per test process in
/// `<target>/e2e/bins/polyglot_aarch64`.
struct Arm64Build {
    layout: PathBuf,
    poly: PathBuf,
    plain: PathBuf,
}

fn arm64_build() -> &'static Arm64Build {
    static BUILD: OnceLock<Arm64Build> = OnceLock::new();
    BUILD.get_or_init(|| {
        let dir = e2e_dir().join("bins/polyglot_aarch64");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for d in [dir.parent().unwrap(), &dir] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs, &arm64_busybox());
        let layout = dir.join("busybox");
        pack(&rootfs, &layout, "latest", "arm64", &["--cmd", "sh"]);
        let source = format!("oci:{}:latest", layout.display());
        let poly = dir.join("bb_arm64");
        let plain = dir.join("bb_arm64_plain");
        for (out, extra) in [(&poly, None), (&plain, Some("--no-polyglot"))] {
            let mut args = vec![
                "--image",
                &source,
                "--target",
                AARCH64,
                "-o",
                out.to_str().unwrap(),
                "-q",
            ];
            args.extend(extra);
            assert_built(&oci2bin_in(&dir, &args), &format!("{AARCH64} {extra:?}"));
        }
        Arm64Build {
            layout,
            poly,
            plain,
        }
    })
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file_says(path: &Path) -> String {
    text(&run_ok(Command::new("file").arg("-b").arg(path))).0
}

#[test]
#[ignore = "e2e: needs root, the Debian mirror (arm64 busybox), the aarch64 target and qemu-user; run with --include-ignored"]
fn aarch64_build_is_an_arm64_elf_with_64k_congruent_segments() {
    let b = arm64_build();
    // file(1) sees the tar header first in the polyglot; the plain build is a plain ELF.
    let plain_says = file_says(&b.plain);
    assert!(plain_says.contains("ARM aarch64"), "file: {plain_says}");
    let poly_says = file_says(&b.poly);
    assert!(poly_says.contains("tar archive"), "file: {poly_says}");

    let poly = read_elf(&b.poly);
    let plain = read_elf(&b.plain);
    assert_eq!(poly.machine, EM_AARCH64, "e_machine of the polyglot");
    assert_eq!(plain.machine, EM_AARCH64, "e_machine of the plain build");
    assert_eq!(poly.load_problems(), Vec::<String>::new());
    assert_eq!(plain.load_problems(), Vec::<String>::new());
    let align = plain.max_load_align();
    assert!(
        align >= 65536,
        "aarch64 LOAD segments have p_align {align:#x}, expected 64 KiB"
    );
    assert_eq!(poly.max_load_align(), align);
    let shift = poly.file_size - plain.file_size;
    assert_eq!(shift % align, 0, "shift {shift:#x} vs p_align {align:#x}");
    for (p, e) in poly.loads().iter().zip(plain.loads()) {
        assert_eq!(p.vaddr, e.vaddr);
        assert_eq!(p.offset, e.offset + shift);
        assert_eq!(p.offset % align, p.vaddr % align);
    }

    for bin in [&b.poly, &b.plain] {
        let info = inspect_json(bin);
        assert_eq!(info["arch"], "aarch64", "{}", bin.display());
        assert_eq!(info["platform"], "linux/arm64/v8", "{}", bin.display());
        assert_eq!(info["reference"], "docker.io/library/busybox:latest");
        assert_eq!(
            info["source_manifest_digest"],
            manifests_for_tag(&b.layout, "latest")[0]["digest"]
        );
        assert_eq!(info["polyglot_valid"], bin == &b.poly, "{info}");
    }
}

#[test]
#[ignore = "e2e: needs root, the Debian mirror (arm64 busybox), the aarch64 target and qemu-user; run with --include-ignored"]
fn qemu_user_runs_the_aarch64_runtime() {
    let b = arm64_build();
    for bin in [&b.poly, &b.plain] {
        let version = Command::new(QEMU)
            .arg(bin)
            .arg("--version")
            .output()
            .unwrap();
        let (out, err) = text(&version);
        assert!(version.status.success(), "--version under qemu: {err}");
        assert!(
            out.contains("docker.io/library/busybox:latest") && out.contains("linux/arm64"),
            "--version: {out}"
        );
        let help = Command::new(QEMU).arg(bin).arg("--help").output().unwrap();
        let (out, err) = text(&help);
        assert!(help.status.success(), "--help under qemu: {err}");
        assert!(
            out.contains("Usage:") && out.contains("linux/arm64"),
            "--help: {out}"
        );
    }

    // A real run creates namespaces. Whether qemu-user can do that decides the outcome; what
    // is required is either the right output or a prompt, clear error.
    let user = test_user();
    let dir = TestDir::new("polyglot_aarch64_run");
    let mut run = UserCommand::new(&user, QEMU)
        .arg(&b.poly)
        .args(["echo", "hi"])
        .cache_dir(&dir.user_dir("cache", &user))
        .current_dir(dir.path())
        .spawn(&dir.join("run.log"))
        .unwrap();
    let status = run.wait_timeout(Duration::from_secs(120));
    let log = run.log();
    let status = status.unwrap_or_else(|| panic!("echo hi under qemu-user hangs:\n{log}"));
    if status.success() {
        eprintln!("qemu-user: the aarch64 container ran: {log:?}");
        assert_eq!(log, "hi\n");
    } else {
        eprintln!("qemu-user: the aarch64 container cannot run ({status}): {log}");
        assert_eq!(
            status.code(),
            Some(125),
            "a runtime error, not a crash: {log}"
        );
        assert!(
            log.contains("error:") && log.contains("namespace") && log.contains("qemu"),
            "the error does not say what failed and why: {log}"
        );
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
#[ignore = "e2e: needs root, the Debian mirror (arm64 busybox), the aarch64 target and qemu-user; run with --include-ignored"]
fn multi_platform_layout_gives_each_target_its_platform() {
    let user = test_user();
    let dir = TestDir::new("polyglot_multiplatform");
    let layout = dir.join("multi");
    for (arch, busybox) in [
        ("amd64", PathBuf::from("/bin/busybox")),
        ("arm64", arm64_busybox()),
    ] {
        let rootfs = dir.join(format!("rootfs-{arch}"));
        busybox_rootfs(&rootfs, &busybox);
        let cmd = format!(r#"["echo","{arch} image"]"#);
        pack(&rootfs, &layout, "latest", arch, &["--cmd", &cmd]);
    }
    assert_eq!(manifests_for_tag(&layout, "latest").len(), 2);
    let source = format!("oci:{}:latest", layout.display());

    let x86 = dir.join("multi_x86_64");
    let arm = dir.join("multi_aarch64");
    assert_built(
        &oci2bin_in(
            dir.path(),
            &["--image", &source, "-o", x86.to_str().unwrap(), "-q"],
        ),
        "multi-platform for x86_64",
    );
    assert_built(
        &oci2bin_in(
            dir.path(),
            &[
                "--image",
                &source,
                "--target",
                AARCH64,
                "-o",
                arm.to_str().unwrap(),
                "-q",
            ],
        ),
        "multi-platform for aarch64",
    );
    let (xi, ai) = (inspect_json(&x86), inspect_json(&arm));
    assert_eq!(xi["platform"], "linux/amd64");
    assert_eq!(xi["arch"], "x86_64");
    assert_eq!(read_elf(&x86).machine, EM_X86_64);
    assert_eq!(ai["platform"], "linux/arm64/v8");
    assert_eq!(ai["arch"], "aarch64");
    assert_eq!(read_elf(&arm).machine, EM_AARCH64);
    assert_ne!(xi["layers"], ai["layers"]);
    let entry = |arch: &str| {
        manifests_for_tag(&layout, "latest")
            .into_iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap()["digest"]
            .clone()
    };
    assert_eq!(xi["source_manifest_digest"], entry("amd64"));
    assert_eq!(ai["source_manifest_digest"], entry("arm64"));

    // Each runs its own image's Cmd.
    let run = UserCommand::new(&user, &x86)
        .cache_dir(&dir.user_dir("cache", &user))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&run);
    assert_eq!(out, "amd64 image\n", "{err}");
    let help = Command::new(QEMU).arg(&arm).arg("--help").output().unwrap();
    let (out, err) = text(&help);
    assert!(
        out.contains("arm64 image") && out.contains("linux/arm64"),
        "{out}{err}"
    );
}
