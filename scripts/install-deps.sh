#!/usr/bin/env bash
# Installs what building and testing oci2bin needs on Debian/Ubuntu (run as root or via sudo):
# musl and aarch64 C toolchains for the static runtime, the tools that build test images from
# Debian packages, and the real programs the tests compare against or talk to.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(
  musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static file
  mmdebstrap busybox-static skopeo umoci docker-registry apache2-utils
  bubblewrap uidmap zstd xz-utils hyperfine redis-tools postgresql-client
  python3 time procps iproute2 util-linux docker.io podman
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 \
  || rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# The runtime's static-PIE start-up applies packed (DT_RELR) relocations, which Rust's musl
# targets support from 1.90 (template/Cargo.toml's rust-version).
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rustc_minor" -lt 90 ]; then
  echo "error: $(rustc --version) is too old to build the oci2bin runtime: Rust 1.90 or newer is needed (rustup update stable)" >&2
  exit 1
fi
