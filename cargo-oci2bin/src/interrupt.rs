//! Ctrl-C and `kill` during a build leave nothing behind.
//!
//! A build writes its output through a temporary file beside it and its downloads and
//! recompressed layers through a per-build directory in the build cache. Destructors do not
//! run when a signal ends the process, so SIGINT, SIGTERM and SIGHUP are blocked in every
//! thread and taken by one thread with `sigwait`: it removes what was registered here and what
//! the build cache has open, stops the cargo child, and exits as the signal would have.

use nix::sys::signal::{SigSet, Signal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// Temporary files of this process to remove on a signal.
static FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The cargo child building the runtime, if one runs (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Blocks the termination signals and starts the thread that handles them. Call first in
/// `main`, before any other thread exists (threads inherit the mask; children do not, as the
/// standard library resets it when it spawns a program).
pub fn install() {
    let set = signals();
    if set.thread_block().is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            let child = CHILD.load(Ordering::SeqCst);
            if child > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), signal);
            }
            cleanup();
            eprintln!("\ninterrupted ({signal}); temporary files removed");
            std::process::exit(128 + signal as i32);
        });
    if spawned.is_err() {
        let _ = set.thread_unblock();
    }
}

/// Removes the registered temporaries and the build cache's open per-build directories.
fn cleanup() {
    if let Ok(files) = FILES.lock() {
        for f in files.iter() {
            let _ = std::fs::remove_file(f);
        }
    }
    oci2bin_build::cache::remove_live_temporaries();
}

/// A temporary file registered for removal on a signal while this guard lives.
pub struct Registered(PathBuf);

/// Registers `path` for removal if a signal ends the build before the guard is dropped.
pub fn register(path: PathBuf) -> Registered {
    if let Ok(mut files) = FILES.lock() {
        files.push(path.clone());
    }
    Registered(path)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut files) = FILES.lock() {
            files.retain(|f| f != &self.0);
        }
    }
}

/// Records the running cargo child (so SIGTERM reaches it too); `None` when it has ended.
pub fn set_child(pid: Option<u32>) {
    CHILD.store(pid.map(|p| p as i32).unwrap_or(0), Ordering::SeqCst);
}
