//! Harness for oci2bin's end-to-end tests.
//!
//! The end-to-end tests build real executables with `cargo oci2bin` and run them as an
//! ordinary user, the way people use them: so the harness creates unprivileged users (with and
//! without subordinate id ranges), runs commands as them with a clean environment, builds the
//! Debian-based test images and the fixture images once per run, builds `cargo-oci2bin`, and
//! talks to the servers in the images (redis, nginx) over loopback with `std::net` only.
//!
//! Tests that need root, the mmdebstrap images or minutes of time are marked
//! `#[ignore = "e2e: ..."]`; run them with `cargo test -p oci2bin-tests -- --include-ignored`.
#![deny(missing_docs)]

pub mod arm64;
pub mod built;
pub mod cache_state;
pub mod cargo_bin;
pub mod dockerd;
pub mod elf;
pub mod file_lock;
pub mod image_tree;
pub mod images;
pub mod net;
pub mod oci_layout;
pub mod paths;
pub mod process;
pub mod procs;
pub mod registry;
pub mod run_as;
pub mod shared_bin;
pub mod test_dir;
pub mod timed;
pub mod tmpfs;
pub mod tools;
pub mod users;

pub use cache_state::CacheState;
pub use cargo_bin::{build_binary, cargo_oci2bin};
pub use images::{fixture_images, image_source, test_images};
pub use net::{
    free_port, http_get, postgres_query, redis_command, redis_ping, wait_for_port, HttpResponse,
};
pub use process::ChildGuard;
pub use run_as::{assert_echo_hi, UserCommand};
pub use shared_bin::shared_binary;
pub use test_dir::TestDir;
pub use timed::{output_within, user_output};
pub use tmpfs::TmpfsMount;
pub use users::{ensure_subids, is_root, nosub_user, test_user, TestUser};
