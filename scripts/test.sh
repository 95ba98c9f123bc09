#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine (run as root: the end-to-end tests
# build images with mmdebstrap, create unprivileged test users and start a private dockerd):
# formatting, lints, unit tests, and the end-to-end tests that build real executables from
# real images and run them as an unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== build cargo-oci2bin and the test images"
cargo build -p cargo-oci2bin
CARGO_OCI2BIN="$PWD/target/debug/cargo-oci2bin" scripts/build-test-images.sh target/test-images
echo "== tests (unit, integration and end-to-end)"
cargo test --workspace --all-features --no-fail-fast -- --include-ignored --test-threads "${OCI2BIN_TEST_THREADS:-2}"
