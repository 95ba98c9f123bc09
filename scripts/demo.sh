#!/usr/bin/env bash
# The bundled example, end to end, on a fresh Debian/Ubuntu machine (run as root or with sudo
# available): installs the prerequisites, installs cargo-oci2bin, builds a busybox image from
# Debian's busybox-static package, turns it into one static executable, and runs that as an
# ordinary user, rootless.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/install-deps.sh

echo "== installing cargo-oci2bin into target/demo"
cargo install --quiet --locked --path cargo-oci2bin --root target/demo
export PATH="$ROOT/target/demo/bin:$PATH"

echo "== building the busybox image (OCI layout) from Debian packages"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -E env PATH=$PATH"
$SUDO env CARGO_OCI2BIN="$ROOT/target/demo/bin/cargo-oci2bin" \
    scripts/build-test-images.sh target/test-images busybox

echo "== cargo oci2bin --image oci:target/test-images/busybox:latest -o target/demo/busybox_latest"
cargo oci2bin --image oci:target/test-images/busybox:latest -o target/demo/busybox_latest
cargo oci2bin inspect target/demo/busybox_latest

echo "== running it"
RUN=(target/demo/busybox_latest)
if [ "$(id -u)" = 0 ]; then
    # Root hides user-namespace problems: show it as an ordinary user.
    id oci2bin-demo >/dev/null 2>&1 || useradd -m -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 oci2bin-demo
    chmod 755 target target/demo
    RUN=(runuser -u oci2bin-demo -- env HOME=/home/oci2bin-demo "$ROOT/target/demo/busybox_latest")
fi
"${RUN[@]}" sh -c 'echo "hello from $(hostname), as $(id -un) (uid $(id -u)) in a rootless container"; uname -a; ls /'
echo "== tar view of the same file:"
tar tf target/demo/busybox_latest | head -5
