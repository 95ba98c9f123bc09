//! A real arm64 busybox for cross-architecture tests, and small busybox root filesystems.
//!
//! The arm64 binary comes from Debian's `busybox-static:arm64` package: `apt-get download`
//! (after `dpkg --add-architecture arm64` and `apt-get update` if needed, which needs root and
//! the Debian mirror), `dpkg-deb -x`, and it is kept in `<test images>/arm64/busybox` between
//! runs, under a file lock.

use crate::elf::{read_elf, EM_AARCH64};
use crate::file_lock::FileLock;
use crate::paths::test_images_dir;
use crate::tools::run_ok;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Applets linked in [`busybox_rootfs`].
pub const APPLETS: [&str; 9] = [
    "sh", "echo", "true", "false", "cat", "ls", "env", "uname", "id",
];

/// The statically linked arm64 busybox from Debian, downloaded once.
pub fn arm64_busybox() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = test_images_dir().join("arm64");
        let bin = dir.join("busybox");
        let _lock = FileLock::acquire(&dir.join(".lock")).expect("cannot lock the arm64 dir");
        if !bin.is_file() {
            download_arm64_busybox(&dir, &bin);
        }
        let elf = read_elf(&bin);
        assert_eq!(elf.machine, EM_AARCH64, "{} is not aarch64", bin.display());
        bin
    })
    .clone()
}

fn download_arm64_busybox(dir: &Path, bin: &Path) {
    let foreign = run_ok(Command::new("dpkg").arg("--print-foreign-architectures"));
    if !String::from_utf8_lossy(&foreign.stdout)
        .lines()
        .any(|l| l.trim() == "arm64")
    {
        run_ok(Command::new("dpkg").args(["--add-architecture", "arm64"]));
        run_ok(Command::new("apt-get").args(["update", "-qq"]));
    }
    let work = tempfile::tempdir_in(dir).expect("a temporary directory");
    let download = || {
        Command::new("apt-get")
            .current_dir(work.path())
            .args(["download", "-qq", "busybox-static:arm64"])
            .output()
            .expect("running apt-get download")
    };
    if !download().status.success() {
        // The package lists may predate the arm64 architecture or be stale.
        run_ok(Command::new("apt-get").args(["update", "-qq"]));
        run_ok(Command::new("apt-get").current_dir(work.path()).args([
            "download",
            "-qq",
            "busybox-static:arm64",
        ]));
    }
    let deb = fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("apt-get download left no .deb");
    let x = work.path().join("x");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x));
    let tmp = work.path().join("busybox");
    fs::copy(x.join("bin/busybox"), &tmp).expect("the package has bin/busybox");
    fs::rename(&tmp, bin).unwrap();
}

/// Makes a minimal root filesystem at `root`: `bin/busybox` (a copy of `busybox`), the
/// [`APPLETS`] as symlinks to it, and `/etc/passwd` and `/etc/group` with root.
pub fn busybox_rootfs(root: &Path, busybox: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox, root.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", busybox.display()));
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}
