#!/usr/bin/env bash
# Benchmarks a registry pull by `cargo oci2bin pull` against `skopeo copy docker://... oci:DIR`
# of the same image from the same local registry, in the same run: wall time and peak RSS
# (from /usr/bin/time -v), each the median of RUNS cold pulls (empty cache / destination each
# time), and the ratios oci2bin/skopeo.
#
# The image (~100 MB) is generated: LAYERS gzip layers of incompressible data, so the bytes on
# the wire are what is measured, pushed to Debian's docker-registry on a free loopback port.
#
# Usage: bench/pull.sh [WORKDIR]
# Environment:
#   CARGO_OCI2BIN  the cargo-oci2bin binary (default: target/release/cargo-oci2bin, built if
#                  missing)
#   MB             image size in MB (default 100)
#   LAYERS         number of layers (default 4)
#   RUNS           pulls per tool (default 3)
# Needs: docker-registry, skopeo, python3, /usr/bin/time (apt: docker-registry skopeo time).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
MB=${MB:-100}
LAYERS=${LAYERS:-4}
RUNS=${RUNS:-3}

log() { echo "bench-pull: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for tool in docker-registry skopeo python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt install docker-registry skopeo python3 time)"
done

if [ -n "${CARGO_OCI2BIN:-}" ]; then
    BIN=$CARGO_OCI2BIN
else
    BIN=$ROOT/target/release/cargo-oci2bin
    if [ ! -x "$BIN" ]; then
        log "building cargo-oci2bin (release)"
        cargo build --release -p cargo-oci2bin --manifest-path "$ROOT/Cargo.toml" >&2
    fi
fi
[ -x "$BIN" ] || die "$BIN is not executable"

WORK=${1:-}
KEEP=1
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/bench-pull.XXXXXX)
    KEEP=
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

REG_PID=
cleanup_registry() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
    fi
}
trap 'cleanup_registry; if [ -z "$KEEP" ]; then rm -rf "$WORK"; fi' EXIT

# 1. The image: an OCI layout written directly (layers of random data, gzip level 1).
LAYOUT=$WORK/layout
if [ ! -f "$LAYOUT/index.json" ]; then
    log "generating a ${MB} MB image in $LAYERS layers"
    python3 - "$LAYOUT" "$MB" "$LAYERS" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
out, mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(out, "blobs/sha256"), exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs/sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
layers, diff_ids = [], []
per = mb * 1000 * 1000 // n
for i in range(n):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        data = os.urandom(per)
        info = tarfile.TarInfo("data/layer%d.bin" % i)
        info.size, info.mtime = len(data), 0
        t.addfile(info, io.BytesIO(data))
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    d, size = put(gzip.compress(tar, compresslevel=1, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                       "layers": layers}).encode()
md, ms = put(manifest)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
EOF
fi

# 2. A registry on a free loopback port, with the image pushed as is.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/storage"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/storage
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && break
    sleep 0.1
done
REF=127.0.0.1:$PORT/bench/big:latest
log "pushing to $REF"
skopeo copy --quiet --dest-tls-verify=false --preserve-digests "oci:$LAYOUT:latest" "docker://$REF"

# 3. Cold pulls, alternating tools. `measure NAME CMD...` appends "seconds kbytes" to NAME.txt.
measure() {
    local name=$1
    shift
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >/dev/null 2>"$WORK/$name.err" ||
        { cat "$WORK/$name.err" >&2; die "$name failed"; }
    python3 - "$WORK/$name.time" >>"$WORK/$name.txt" <<'EOF'
import sys
wall = rss = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("Elapsed (wall clock) time"):
        parts = [float(p) for p in line.rsplit(" ", 1)[1].split(":")]
        wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    elif line.startswith("Maximum resident set size"):
        rss = int(line.rsplit(" ", 1)[1])
print(wall, rss)
EOF
}
rm -f "$WORK/oci2bin.txt" "$WORK/skopeo.txt"
for i in $(seq "$RUNS"); do
    log "run $i/$RUNS"
    rm -rf "$WORK/home" "$WORK/skopeo-dest"
    measure oci2bin "$BIN" pull --quiet --cache-dir "$WORK/home" "$REF"
    measure skopeo skopeo copy --quiet --src-tls-verify=false "docker://$REF" "oci:$WORK/skopeo-dest:latest"
done

# 4. Medians and ratios.
python3 - "$WORK" "$MB" "$LAYERS" "$RUNS" <<'EOF'
import statistics, sys
work, mb, layers, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def load(name):
    rows = [l.split() for l in open("%s/%s.txt" % (work, name)) if l.strip()]
    return statistics.median(float(r[0]) for r in rows), statistics.median(int(r[1]) for r in rows)
o, s = load("oci2bin"), load("skopeo")
print("pull of a %s MB image (%s layers), median of %s cold runs" % (mb, layers, runs))
print("%-8s %10s %12s" % ("tool", "wall (s)", "peak RSS (MB)"))
print("%-8s %10.2f %12.1f" % ("oci2bin", o[0], o[1] / 1024))
print("%-8s %10.2f %12.1f" % ("skopeo", s[0], s[1] / 1024))
print("ratio oci2bin/skopeo: time %.2f, peak RSS %.2f" % (o[0] / s[0], o[1] / s[1]))
EOF
