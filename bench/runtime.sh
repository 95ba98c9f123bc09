#!/usr/bin/env bash
# Benchmarks the runtime of oci2bin executables against the tools a user would otherwise
# reach for, as unprivileged users, and prints the figures and their ratios:
#
#   warm start   `./busybox /bin/true` with the image already unpacked in the cache, against
#                `bwrap --unshare-all --share-net --bind ROOT / --proc /proc --dev /dev
#                /bin/true` on the same unpacked root (hyperfine, mean; goal: ratio <= 1.5).
#                Measured per user: a user with a subordinate id range pays for newuidmap and
#                newgidmap (two setuid helper execs), a user without one does not.
#   one volume   the warm start with `-v DIR:/data` against the same without it, in the same
#                hyperfine run (goal: ratio <= 1.2)
#   cold start   the redis binary with an empty cache (`--entrypoint /bin/true`), against
#                `zstd -dc LAYER | tar -x` of the same zstd layers (taken out of the binary)
#                into an empty directory (hyperfine, mean)
#   peak RSS     of a cold start of the redis binary (/usr/bin/time -v; goal: <= 32 MiB)
#
# Usage: bench/runtime.sh [WORKDIR]
#   Run as root: commands run as the BENCH_USERS through runuser (never as root, which would
#   hide user-namespace costs). Run as another user: commands run as that user.
# Environment:
#   BENCH_USERS     unprivileged users, space-separated; the first also runs the cold-start and
#                   RSS measurements (default "oci2bin-test oci2bin-nosub", those that exist;
#                   the e2e tests create them, oci2bin-test with subordinate ids once
#                   runtime_services has run; root only)
#   CARGO_OCI2BIN   the cargo-oci2bin binary (default target/debug/cargo-oci2bin, built if
#                   missing; the executables it makes are release builds either way)
#   TEST_IMAGES     the OCI layouts of scripts/build-test-images.sh (default
#                   target/test-images; needs busybox and redis)
#   BUSYBOX_BIN, REDIS_BIN   use these executables instead of building them
#   WARM_RUNS (200), COLD_RUNS (10), RSS_RUNS (5)
# Needs: hyperfine, bwrap, zstd, tar, python3, /usr/bin/time.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WARM_RUNS=${WARM_RUNS:-200}
COLD_RUNS=${COLD_RUNS:-10}
RSS_RUNS=${RSS_RUNS:-5}
TEST_IMAGES=${TEST_IMAGES:-$ROOT/target/test-images}
USER_PATH=/usr/local/bin:/usr/bin:/bin

log() { echo "bench-runtime: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for tool in hyperfine bwrap zstd tar python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt install hyperfine bubblewrap zstd tar python3 time)"
done

USERS=()
if [ "$(id -u)" = 0 ]; then
    for u in ${BENCH_USERS:-oci2bin-test oci2bin-nosub}; do
        if id "$u" >/dev/null 2>&1; then
            USERS+=("$u")
        else
            log "user $u does not exist, skipping it"
        fi
    done
    [ "${#USERS[@]}" -gt 0 ] || die "no benchmark user exists (the e2e tests create oci2bin-test; or set BENCH_USERS)"
else
    USERS=("$(id -un)")
fi

WORK=${1:-}
KEEP=1
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/oci2bin-bench-runtime.XXXXXX)
    KEEP=
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
chmod 755 "$WORK"

# home USER: the user's own directory (caches, extraction, results).
home() { echo "$WORK/u-$1"; }
for u in "${USERS[@]}"; do
    mkdir -p "$(home "$u")"
    [ "$(id -u)" != 0 ] || chown "$u:" "$(home "$u")"
    chmod 700 "$(home "$u")"
done

# as_user USER CMD...: runs CMD as USER with a clean environment.
as_user() {
    local u=$1
    shift
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$u" -- env -i HOME="$(home "$u")" PATH="$USER_PATH" "$@"
    else
        env -i HOME="$(home "$u")" PATH="$USER_PATH" "$@"
    fi
}

# wipe USER DIR...: removes directories of USER's (unpacked images have read-only
# directories, so they are made writable first).
wipe() {
    local u=$1
    shift
    # shellcheck disable=SC2016 # the inner script gets the directories as its arguments.
    as_user "$u" sh -c 'for d; do [ -e "$d" ] || continue; chmod -R u+rwX "$d" 2>/dev/null; rm -rf "$d"; done' wipe "$@"
}
cleanup() {
    if [ -z "$KEEP" ]; then
        for u in "${USERS[@]}"; do
            wipe "$u" "$(home "$u")" 2>/dev/null || true
        done
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# 1. The executables.
build() {
    local name=$1 out=$WORK/$1
    if [ -z "${CARGO_OCI2BIN:-}" ]; then
        CARGO_OCI2BIN=$ROOT/target/debug/cargo-oci2bin
        if [ ! -x "$CARGO_OCI2BIN" ]; then
            log "building cargo-oci2bin"
            cargo build --quiet -p cargo-oci2bin --manifest-path "$ROOT/Cargo.toml" >&2
        fi
    fi
    [ -f "$TEST_IMAGES/$name/index.json" ] ||
        die "$TEST_IMAGES/$name is not an OCI layout (run scripts/build-test-images.sh $TEST_IMAGES as root)"
    log "building $out"
    "$CARGO_OCI2BIN" oci2bin --quiet --image "oci:$TEST_IMAGES/$name:latest" -o "$out" >&2
    chmod 755 "$out"
    echo "$out"
}
if [ -n "${BUSYBOX_BIN:-}" ]; then BUSYBOX=$(realpath "$BUSYBOX_BIN"); else BUSYBOX=$(build busybox); fi
if [ -n "${REDIS_BIN:-}" ]; then REDIS=$(realpath "$REDIS_BIN"); else REDIS=$(build redis); fi

# 2. Warm start, per user: prime a cache, then the binary against bwrap on the root it
# unpacked. Results are listed in $WORK/warm.list as "USER<TAB>MAPPING<TAB>JSON".
: >"$WORK/warm.list"
for u in "${USERS[@]}"; do
    h=$(home "$u")
    debug=$(as_user "$u" env OCI2BIN_CACHE_DIR="$h/warm-cache" "$BUSYBOX" --debug /bin/true 2>&1) ||
        die "$BUSYBOX /bin/true failed as $u: $debug"
    mapping=$(printf '%s\n' "$debug" | sed -n 's/.*debug: user mapping: \([^(;]*\).*/\1/p' | head -n 1)
    roots=("$h"/warm-cache/images/*/rootfs)
    if [ "${#roots[@]}" != 1 ] || [ ! -d "${roots[0]}" ]; then
        die "expected one unpacked image in $h/warm-cache: ${roots[*]}"
    fi
    bwrap_cmd=(bwrap --unshare-all --share-net --bind "${roots[0]}" / --proc /proc --dev /dev /bin/true)
    as_user "$u" "${bwrap_cmd[@]}" || die "bwrap cannot run here as $u: ${bwrap_cmd[*]}"
    log "warm start as $u (${mapping:-unknown mapping}): $WARM_RUNS runs each"
    as_user "$u" mkdir -p "$h/volume"
    as_user "$u" env OCI2BIN_CACHE_DIR="$h/warm-cache" hyperfine --style basic -N \
        --warmup 20 --runs "$WARM_RUNS" --export-json "$h/warm.json" \
        -n oci2bin "$BUSYBOX /bin/true" \
        -n bwrap "${bwrap_cmd[*]}" \
        -n oci2bin-volume "$BUSYBOX -v $h/volume:/data /bin/true" >&2
    printf '%s\t%s\t%s\n' "$u" "${mapping:-unknown}" "$h/warm.json" >>"$WORK/warm.list"
done

# 3. Cold start (first user): the redis binary with an empty cache, against zstd | tar of its
# own layers.
U=${USERS[0]}
H=$(home "$U")
log "extracting the layers of $REDIS"
LAYERS=$(python3 - "$REDIS" "$H/layers" <<'EOF'
import json, os, sys, tarfile
binary, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with tarfile.open(binary) as t:  # the executable is also a tar of its payload
    read = lambda name: t.extractfile(name).read()
    index = json.loads(read("index.json"))
    manifest = json.loads(read("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
    for i, layer in enumerate(manifest["layers"]):
        if not layer["mediaType"].endswith("+zstd"):
            sys.exit("layer %d is %s, not zstd: build with --compress zstd" % (i + 1, layer["mediaType"]))
        with open(os.path.join(out, "%03d.zst" % i), "wb") as f:
            f.write(read("blobs/sha256/" + layer["digest"].split(":")[1]))
    print(len(manifest["layers"]))
EOF
)
[ "$(id -u)" != 0 ] || chown -R "$U:" "$H/layers"
log "cold start as $U: $COLD_RUNS runs each ($LAYERS layer(s), $(du -sh "$H/layers" | cut -f1) compressed)"
as_user "$U" hyperfine --style basic --runs "$COLD_RUNS" --export-json "$H/cold.json" \
    --prepare "sh -c 'for d in $H/cold-cache $H/extract; do [ -e \$d ] && chmod -R u+rwX \$d; rm -rf \$d; done; mkdir $H/extract'" \
    -n oci2bin "env OCI2BIN_CACHE_DIR=$H/cold-cache $REDIS --entrypoint /bin/true" \
    -n "zstd|tar" "for l in $H/layers/*.zst; do zstd -qdc \$l | tar -x -C $H/extract || exit 1; done" >&2

# 4. Peak RSS of cold starts (first user).
log "peak RSS as $U: $RSS_RUNS cold starts"
for i in $(seq "$RSS_RUNS"); do
    wipe "$U" "$H/rss-cache"
    as_user "$U" /usr/bin/time -v -o "$H/rss.$i" env OCI2BIN_CACHE_DIR="$H/rss-cache" "$REDIS" --entrypoint /bin/true ||
        die "cold start $i failed"
done

# 5. The figures.
python3 - "$WORK/warm.list" "$H" "$RSS_RUNS" "$U" <<'EOF'
import json, statistics, sys
warm_list, h, rss_runs, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def means(path):
    results = json.load(open(path))["results"]
    return {r["command"]: (r["mean"], r["stddev"] or 0.0, len(r["times"])) for r in results}
def verdict(ok):
    return "goal met" if ok else "GOAL MISSED"
print("oci2bin runtime benchmark")
for line in open(warm_list):
    user, mapping, path = line.rstrip("\n").split("\t")
    w = means(path)
    o, b = w["oci2bin"], w["bwrap"]
    print("warm start, /bin/true, %d runs, as %s (%s):" % (o[2], user, mapping.strip()))
    print("    oci2bin %.2f ms (± %.2f)   bwrap %.2f ms (± %.2f)   ratio %.2f  (goal <= 1.5: %s)"
          % (o[0] * 1e3, o[1] * 1e3, b[0] * 1e3, b[1] * 1e3, o[0] / b[0], verdict(o[0] / b[0] <= 1.5)))
    v = w["oci2bin-volume"]
    print("    with -v DIR:/data %.2f ms (± %.2f)   ratio to without %.2f  (goal <= 1.2: %s)"
          % (v[0] * 1e3, v[1] * 1e3, v[0] / o[0], verdict(v[0] / o[0] <= 1.2)))
c = means(h + "/cold.json")
o, t = c["oci2bin"], c["zstd|tar"]
print("cold start, redis --entrypoint /bin/true, %d runs, as %s:" % (o[2], first))
print("    oci2bin %.0f ms (± %.0f)   zstd|tar %.0f ms (± %.0f)   ratio %.2f"
      % (o[0] * 1e3, o[1] * 1e3, t[0] * 1e3, t[1] * 1e3, o[0] / t[0]))
rss = []
for i in range(1, rss_runs + 1):
    for line in open("%s/rss.%d" % (h, i)):
        if "Maximum resident set size" in line:
            rss.append(int(line.rsplit(" ", 1)[1]) / 1024)
print("peak RSS, redis cold start, %d runs, as %s:" % (len(rss), first))
print("    max %.1f MiB, median %.1f MiB  (goal <= 32 MiB: %s)"
      % (max(rss), statistics.median(rss), verdict(max(rss) <= 32)))
EOF
