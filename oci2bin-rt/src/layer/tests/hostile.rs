//! Hostile layers: each case either fails cleanly or lands inside the root, and never changes
//! the sentinel directory next to the root (`base/outside`) or creates anything beside it.
//!
//! The sandbox is `base/root` (the unpack root) and `base/outside` (the sentinel). Names and
//! link targets are chosen so that a resolver that followed them on the host would hit the
//! sentinel: relative ones climb from `root` with `..`, absolute ones spell the host path
//! of `base/outside`.

use super::tar_builder::Layer;
use super::{apply_all, MODES};
use crate::layer::{LayerError, ResolveMode};
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A fresh `base/{root,outside}` pair.
struct Sandbox {
    /// Holds the directory; removed on drop.
    base: tempfile::TempDir,
}

/// What the layers may refer to.
struct Ctx {
    /// The host path of `base`, without the leading `/` (to build in-root lookalikes).
    base_rel: String,
    /// The host path of the sentinel directory.
    outside_abs: String,
    /// The final component of `base`.
    base_name: String,
}

impl Sandbox {
    fn new() -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        fs::create_dir(base.path().join("root")).expect("mkdir root");
        let out = base.path().join("outside");
        fs::create_dir_all(out.join("dir")).expect("mkdir outside");
        fs::write(out.join("file"), b"sentinel").expect("write");
        fs::write(out.join("dir/inner"), b"inner").expect("write");
        fs::set_permissions(out.join("dir"), fs::Permissions::from_mode(0o750)).expect("chmod");
        Sandbox { base }
    }

    fn root(&self) -> PathBuf {
        self.base.path().join("root")
    }

    fn ctx(&self) -> Ctx {
        let base = self.base.path().to_string_lossy().into_owned();
        Ctx {
            base_rel: base.trim_start_matches('/').to_string(),
            outside_abs: format!("{base}/outside"),
            base_name: self
                .base
                .path()
                .file_name()
                .expect("tempdir has a name")
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// Everything outside the root: the names in `base` and, for each entry below
    /// `outside`, its path, type, mode and content or link target.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut top: Vec<_> = fs::read_dir(self.base.path())
            .expect("ls base")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        out.push(format!("base: {top:?}"));
        let mut stack = vec![self.base.path().join("outside")];
        while let Some(p) = stack.pop() {
            let m = fs::symlink_metadata(&p).expect("stat sentinel");
            let what = if m.is_dir() {
                let mut kids: Vec<_> = fs::read_dir(&p)
                    .expect("ls")
                    .map(|e| e.expect("entry").path())
                    .collect();
                kids.sort();
                stack.extend(kids);
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {:?}", fs::read_link(&p).expect("readlink"))
            } else {
                format!("{:?}", fs::read(&p).expect("read"))
            };
            out.push(format!(
                "{} {:o} {} {}",
                p.display(),
                m.mode(),
                m.nlink(),
                what
            ));
        }
        out
    }
}

/// What a case must end in.
enum Expect {
    /// `LayerError::Unsafe`.
    Unsafe,
    /// Some error (a missing hardlink target, a symlink loop).
    Fails,
    /// Success, and this check of the root passes.
    Confined(fn(&Path, &Ctx)),
}

/// One hostile case.
struct Case {
    name: &'static str,
    layers: fn(&Ctx) -> Vec<Vec<u8>>,
    expect: Expect,
}

/// Reads a file below the root.
fn read(root: &Path, rel: &str) -> String {
    String::from_utf8_lossy(&fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .into_owned()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "dotdot file",
            layers: |_| vec![Layer::new().file("../outside/pwned", 0o644, b"x").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot inside the name",
            layers: |_| {
                vec![Layer::new()
                    .file("a/../../outside/pwned", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot directory, symlink, fifo and hardlink names",
            layers: |_| {
                vec![
                    Layer::new().dir("../outside/newdir/", 0o755).finish(),
                    Layer::new().symlink("../outside/ln", "/").finish(),
                ]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot fifo",
            layers: |_| vec![Layer::new().fifo("../outside/fifo", 0o644).finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot hardlink name",
            layers: |_| {
                vec![Layer::new()
                    .file("f", 0o644, b"f")
                    .hardlink("../outside/h", "f")
                    .finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot in a GNU long name",
            layers: |_| {
                let name = format!("{}../../outside/pwned", "x/".repeat(60));
                vec![Layer::new().file(&name, 0o644, b"x").finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "dotdot in a PAX path",
            layers: |_| {
                vec![Layer::new()
                    .pax(&[("path", b"../outside/pwned")])
                    .file("harmless", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "NUL in a PAX path",
            layers: |_| {
                vec![Layer::new()
                    .pax(&[("path", b"ok\0/../../outside/pwned")])
                    .file("harmless", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "absolute names are confined",
            layers: |c| {
                vec![Layer::new()
                    .file("/abs/path", 0o644, b"abs")
                    .file(&format!("{}/pwned", c.outside_abs), 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Confined(|r, c| {
                assert_eq!(read(r, "abs/path"), "abs");
                assert_eq!(read(r, &format!("{}/outside/pwned", c.base_rel)), "x");
            }),
        },
        Case {
            name: "symlink to / then a file below it, same layer",
            layers: |c| {
                vec![Layer::new()
                    .symlink("a", "/")
                    .file(&format!("a/{}/outside/pwned", c.base_rel), 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Confined(|r, c| {
                assert_eq!(read(r, &format!("{}/outside/pwned", c.base_rel)), "x");
            }),
        },
        Case {
            name: "symlink to / then a file below it, next layer",
            layers: |c| {
                vec![
                    Layer::new().symlink("a", "/").finish(),
                    Layer::new()
                        .file(&format!("a/{}/outside/pwned", c.base_rel), 0o644, b"x")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, c| {
                assert_eq!(read(r, &format!("{}/outside/pwned", c.base_rel)), "x");
            }),
        },
        Case {
            name: "symlink to .. then a file below it",
            layers: |_| {
                vec![Layer::new()
                    .symlink("a", "..")
                    .file("a/outside/pwned", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Confined(|r, _| assert_eq!(read(r, "outside/pwned"), "x")),
        },
        Case {
            name: "symlink to ../.. then a file below it, next layer",
            layers: |c| {
                vec![
                    Layer::new().symlink("a", "../..").finish(),
                    Layer::new()
                        .file(&format!("a/{}/outside/pwned", c.base_name), 0o644, b"x")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, c| {
                assert_eq!(read(r, &format!("{}/outside/pwned", c.base_name)), "x");
            }),
        },
        Case {
            name: "deep relative symlink climbing past the root",
            layers: |_| {
                vec![
                    Layer::new()
                        .symlink("d1/d2/up", "../../../../../..")
                        .finish(),
                    Layer::new().dir("d1/d2/up/outside/", 0o700).finish(),
                    Layer::new()
                        .file("d1/d2/up/outside/pwned", 0o644, b"x")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, _| {
                assert_eq!(read(r, "outside/pwned"), "x");
                let m = fs::metadata(r.join("outside")).expect("stat");
                assert_eq!(m.mode() & 0o777, 0o700);
            }),
        },
        Case {
            name: "dangling absolute symlink parent is created inside",
            layers: |c| {
                vec![Layer::new()
                    .symlink("m", &format!("{}/newdir", c.outside_abs))
                    .file("m/x", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Confined(|r, c| {
                assert_eq!(read(r, &format!("{}/outside/newdir/x", c.base_rel)), "x");
            }),
        },
        Case {
            name: "hardlink to /etc/passwd",
            layers: |_| vec![Layer::new().hardlink("pw", "/etc/passwd").finish()],
            expect: Expect::Fails,
        },
        Case {
            name: "hardlink to ../outside/file",
            layers: |_| vec![Layer::new().hardlink("h", "../outside/file").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "hardlink to the host path of the sentinel",
            layers: |c| {
                vec![Layer::new()
                    .hardlink("h", &format!("{}/file", c.outside_abs))
                    .finish()]
            },
            expect: Expect::Fails,
        },
        Case {
            name: "hardlink through a symlinked parent",
            layers: |c| {
                vec![
                    Layer::new().symlink("s", &c.outside_abs).finish(),
                    Layer::new().hardlink("h", "s/file").finish(),
                ]
            },
            expect: Expect::Fails,
        },
        Case {
            name: "hardlink to a symlink pointing outside links the symlink",
            layers: |c| {
                vec![Layer::new()
                    .symlink("s", &format!("{}/file", c.outside_abs))
                    .hardlink("h", "s")
                    .finish()]
            },
            expect: Expect::Confined(|r, c| {
                let target = fs::read_link(r.join("h")).expect("h is a symlink");
                assert_eq!(target, Path::new(&format!("{}/file", c.outside_abs)));
            }),
        },
        Case {
            name: "hardlink to the root",
            layers: |_| vec![Layer::new().hardlink("h", "./").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "hardlink name behind a symlink to ..",
            layers: |_| {
                vec![Layer::new()
                    .symlink("s", "..")
                    .file("real", 0o644, b"real")
                    .hardlink("s/outside/h", "real")
                    .finish()]
            },
            expect: Expect::Confined(|r, _| {
                let a = fs::metadata(r.join("real")).expect("real");
                let b = fs::metadata(r.join("outside/h")).expect("h");
                assert_eq!(a.ino(), b.ino());
            }),
        },
        Case {
            name: "whiteout behind a symlink to ..",
            layers: |_| {
                vec![
                    Layer::new()
                        .file("outside/file", 0o644, b"decoy")
                        .symlink("w", "..")
                        .finish(),
                    Layer::new().whiteout("w/.wh.outside").finish(),
                ]
            },
            expect: Expect::Confined(|r, _| {
                assert!(fs::symlink_metadata(r.join("outside")).is_err());
                assert!(fs::symlink_metadata(r.join("w")).is_ok());
            }),
        },
        Case {
            name: "whiteout behind symlinks to the sentinel",
            layers: |c| {
                vec![
                    Layer::new()
                        .symlink("w1", "../outside")
                        .symlink("w2", &c.outside_abs)
                        .finish(),
                    Layer::new()
                        .whiteout("w1/.wh.file")
                        .whiteout("w2/.wh.file")
                        .whiteout("w2/.wh.dir")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|_, _| {}),
        },
        Case {
            name: "whiteout of a symlink to the sentinel removes the link only",
            layers: |c| {
                vec![
                    Layer::new().symlink("s", &c.outside_abs).finish(),
                    Layer::new().whiteout(".wh.s").finish(),
                ]
            },
            expect: Expect::Confined(|r, _| assert!(fs::symlink_metadata(r.join("s")).is_err())),
        },
        Case {
            name: "opaque marker behind a symlink",
            layers: |c| {
                vec![
                    Layer::new()
                        .file("outside/file", 0o644, b"decoy")
                        .symlink("o1", "../outside")
                        .symlink("o2", &c.outside_abs)
                        .finish(),
                    Layer::new()
                        .whiteout("o1/.wh..wh..opq")
                        .whiteout("o2/.wh..wh..opq")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, _| {
                let left: Vec<_> = fs::read_dir(r.join("outside")).expect("ls").collect();
                assert!(left.is_empty(), "the in-root decoy was cleared");
            }),
        },
        Case {
            name: "opaque marker through a symlink to / clears the root only",
            layers: |_| {
                vec![
                    Layer::new()
                        .file("old", 0o644, b"old")
                        .symlink("o", "/")
                        .finish(),
                    Layer::new()
                        .file("new", 0o644, b"new")
                        .whiteout("o/.wh..wh..opq")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, _| {
                let mut left: Vec<_> = fs::read_dir(r)
                    .expect("ls")
                    .map(|e| e.expect("entry").file_name())
                    .collect();
                left.sort();
                assert_eq!(left, ["new"]);
            }),
        },
        Case {
            name: "root replaced by a file",
            layers: |_| vec![Layer::new().file(".", 0o644, b"x").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "root replaced by a symlink",
            layers: |c| vec![Layer::new().symlink("./", &c.outside_abs).finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "root replaced by a hardlink",
            layers: |_| {
                vec![Layer::new()
                    .file("f", 0o644, b"f")
                    .hardlink("/", "f")
                    .finish()]
            },
            expect: Expect::Unsafe,
        },
        Case {
            name: "root replaced by a fifo",
            layers: |_| vec![Layer::new().fifo("/", 0o644).finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "whiteout of . and ..",
            layers: |_| vec![Layer::new().whiteout("sub/.wh..").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "whiteout of .. at the top",
            layers: |_| vec![Layer::new().whiteout(".wh...").finish()],
            expect: Expect::Unsafe,
        },
        Case {
            name: "symlink then a file of the same name, same layer",
            layers: |_| {
                vec![Layer::new()
                    .symlink("f", "../outside/file")
                    .file("f", 0o644, b"pwned")
                    .finish()]
            },
            expect: Expect::Confined(|r, _| {
                assert!(fs::symlink_metadata(r.join("f")).expect("f").is_file());
                assert_eq!(read(r, "f"), "pwned");
            }),
        },
        Case {
            name: "symlink then a file, fifo, dir, hardlink of the same name, next layer",
            layers: |c| {
                vec![
                    Layer::new()
                        .file("real", 0o644, b"real")
                        .symlink("f", &format!("{}/file", c.outside_abs))
                        .symlink("p", &format!("{}/file", c.outside_abs))
                        .symlink("d", &format!("{}/dir", c.outside_abs))
                        .symlink("h", &format!("{}/file", c.outside_abs))
                        .finish(),
                    Layer::new()
                        .file("f", 0o666, b"pwned")
                        .fifo("p", 0o666)
                        .dir("d/", 0o000)
                        .file("d/x", 0o644, b"x")
                        .hardlink("h", "real")
                        .finish(),
                ]
            },
            expect: Expect::Confined(|r, _| {
                assert_eq!(read(r, "f"), "pwned");
                assert!(fs::symlink_metadata(r.join("p"))
                    .expect("p")
                    .file_type()
                    .is_fifo());
                let d = fs::symlink_metadata(r.join("d")).expect("d");
                assert!(d.is_dir());
                assert_eq!(d.mode() & 0o7777, 0o000);
                assert_eq!(read(r, "h"), "real");
                fs::set_permissions(r.join("d"), fs::Permissions::from_mode(0o700)).expect("chmod");
                assert_eq!(read(r, "d/x"), "x");
            }),
        },
        Case {
            name: "a symlinked parent pointing at a file",
            layers: |_| {
                vec![Layer::new()
                    .file("file", 0o644, b"f")
                    .symlink("p", "/file")
                    .file("p/x", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Fails,
        },
        Case {
            name: "symlink loop in the parent",
            layers: |_| {
                vec![Layer::new()
                    .symlink("l1", "l2")
                    .symlink("l2", "/l1")
                    .file("l1/x", 0o644, b"x")
                    .finish()]
            },
            expect: Expect::Fails,
        },
    ]
}

/// Runs one case with one resolver and checks its outcome and the sentinel.
fn run(case: &Case, mode: ResolveMode) {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let ctx = sandbox.ctx();
    let layers = (case.layers)(&ctx);
    let result = apply_all(&sandbox.root(), &layers, mode);
    let label = format!("{} ({mode:?})", case.name);
    match (&case.expect, result) {
        (Expect::Unsafe, Err(LayerError::Unsafe { .. })) => {}
        (Expect::Fails, Err(_)) => {}
        (Expect::Confined(check), Ok(_)) => check(&sandbox.root(), &ctx),
        (_, other) => panic!("{label}: unexpected outcome {other:?}"),
    }
    assert!(
        fs::symlink_metadata(sandbox.root()).expect("root").is_dir(),
        "{label}: the root is still a directory"
    );
    assert_eq!(sandbox.snapshot(), before, "{label}: the sentinel changed");
    crate::layer::remove_tree(&sandbox.root()).expect("clean up");
}

#[test]
fn hostile_layers_stay_inside_the_root() {
    for case in cases() {
        for mode in MODES {
            run(&case, mode);
        }
    }
}

#[test]
fn unsafe_errors_name_the_entry() {
    let sandbox = Sandbox::new();
    let layer = Layer::new().file("a/../../escape", 0o644, b"x").finish();
    let err = apply_all(&sandbox.root(), &[layer], ResolveMode::Walk).expect_err("unsafe");
    assert!(err.to_string().contains("a/../../escape"), "{err}");
}

#[test]
fn a_symlinked_parent_created_by_the_host_is_followed_inside() {
    // A root that already contains an absolute symlink (as a Debian rootfs has
    // /var/run -> /run) must resolve it inside the root.
    for mode in MODES {
        let sandbox = Sandbox::new();
        let root = sandbox.root();
        fs::create_dir(root.join("run")).expect("mkdir");
        fs::create_dir(root.join("var")).expect("mkdir");
        symlink("/run", root.join("var/run")).expect("symlink");
        let before = sandbox.snapshot();
        let layer = Layer::new().file("var/run/pid", 0o644, b"1").finish();
        apply_all(&root, &[layer], mode).expect("apply");
        assert_eq!(read(&root, "run/pid"), "1");
        assert_eq!(sandbox.snapshot(), before);
    }
}
