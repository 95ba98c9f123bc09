#!/usr/bin/env bash
# Build-side benchmarks of `cargo oci2bin` (not a test: it prints figures and ratios).
#
#   1. cold and warm builds of the busybox and redis test images: cold = a fresh oci2bin home
#      (--cache-dir), so the runtime and its dependencies compile; warm = the same build again
#      with another -o (hyperfine mean);
#   2. embedding a 100 MB and a 500 MB payload (one layer of random bytes, --compress none)
#      with the runtime already built: the first build of the image (the layer verified and
#      copied into the build cache), then the whole `cargo oci2bin` again (the layer cached:
#      embedding alone) against a plain `cp` of the same bytes, both means of hyperfine runs;
#   3. peak RSS of a build of a 1 GiB random layer (default zstd): GNU time's maximum (the
#      largest single process of the tree) and the sampled sum over the whole process tree;
#   4. the executable's size minus its payload (inspect's runtime_size) per codec, against
#      the 1 MiB goal on x86_64;
#   5. image edits on postgres, each from an empty build cache (runtime warm) against a plain
#      postgres build of the same run, as ratios (goal: within 2x): --strip (defaults and
#      globs), --squash (the test image has one layer: nothing to merge), --add-file with
#      --squash (two layers really merged), and a rebuild of the strip with its result cached.
#
# Usage: bench/build.sh            (as root or any user with the test images readable)
# Environment:
#   CARGO_OCI2BIN       cargo-oci2bin to measure (default: `cargo build --release` of it)
#   OCI2BIN_TEST_IMAGES the test images (default: target/test-images; build them with the
#                       e2e tests or scripts/build-test-images.sh)
#   BENCH_DIR           scratch directory (default: target/bench; big files are deleted at
#                       the end, the warm oci2bin home is kept unless BENCH_CLEAN=1)
#   BENCH_SIZES         payload sizes in MB for part 2 (default: "100 500")
#   BENCH_BIG_MB        layer size in MiB for part 3 (default: 1024; 0 skips it)
#   BENCH_SKIP_COLD=1   skip the cold builds (part 1 then reuses the home from a former run)
#   BENCH_SKIP_EDITS=1  skip part 5 (it needs the postgres test image)
# Needs: /usr/bin/time (GNU time), hyperfine, python3, ps.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES=${OCI2BIN_TEST_IMAGES:-$ROOT/target/test-images}
WORK=${BENCH_DIR:-$ROOT/target/bench}
SIZES=${BENCH_SIZES:-"100 500"}
BIG_MB=${BENCH_BIG_MB:-1024}
TARGET=$(uname -m)-unknown-linux-musl
HOME_DIR=$WORK/home # the oci2bin home of every build after the cold ones

log() { echo "bench: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed: apt-get install time"
command -v hyperfine >/dev/null || die "hyperfine is needed: apt-get install hyperfine"
for img in busybox redis; do
    [ -f "$IMAGES/$img/index.json" ] || die "no test image $IMAGES/$img (run the e2e tests or scripts/build-test-images.sh first)"
done

if [ -z "${CARGO_OCI2BIN:-}" ]; then
    log "building cargo-oci2bin (release)"
    (cd "$ROOT" && cargo build --release --quiet -p cargo-oci2bin)
    CARGO_OCI2BIN=$ROOT/target/release/cargo-oci2bin
fi
C=$CARGO_OCI2BIN
mkdir -p "$WORK/out"

cleanup() {
    rm -rf "$WORK/embed" "$WORK/big" "$WORK/out" "$WORK/cp-copy"
    rm -rf "$HOME_DIR/build" "$WORK/home-redis"
    if [ "${BENCH_CLEAN:-0}" = 1 ]; then rm -rf "$HOME_DIR"; fi
}
trap cleanup EXIT

# timed FILE CMD...: runs CMD under GNU time, writing "wall_seconds max_rss_kb" to FILE.
timed() {
    local out=$1
    shift
    /usr/bin/time -f '%e %M' -o "$out" "$@"
}
secs() { cut -d' ' -f1 "$1"; }
rss_mb() { awk '{printf "%.0f", $2 / 1024}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
runtime_size() { "$C" oci2bin inspect --json "$1" | json_field runtime_size; }
payload_size() { "$C" oci2bin inspect --json "$1" | json_field payload_size; }

# build HOME OUT SOURCE EXTRA...
build() {
    local home=$1 out=$2 src=$3
    shift 3
    "$C" oci2bin -q --cache-dir "$home" --image "$src" -o "$out" "$@"
}

# hf_mean JSON: the mean of hyperfine's first command, in seconds.
hf_mean() { python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$1"; }

SUMMARY=()
add() { SUMMARY+=("$(printf '%-58s %s' "$1" "$2")"); }

echo "cargo-oci2bin: $C"
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), target $TARGET"
echo

# ---------------------------------------------------------------- 1. cold and warm builds
for img in busybox redis; do
    home=$HOME_DIR
    [ "$img" = redis ] && home=$WORK/home-redis
    src="oci:$IMAGES/$img:latest"
    if [ "${BENCH_SKIP_COLD:-0}" != 1 ]; then
        rm -rf "$home"
        log "$img: cold build (fresh home $home: the runtime compiles)"
        timed "$WORK/t" "$C" oci2bin -q --cache-dir "$home" --image "$src" -o "$WORK/out/$img-cold"
        cold=$(secs "$WORK/t")
    else
        build "$home" "$WORK/out/$img-cold" "$src"
        cold=0
    fi
    log "$img: warm build (hyperfine)"
    hyperfine --style none -N --warmup 1 --runs 10 --export-json "$WORK/warm.json" \
        "$C oci2bin -q --cache-dir $home --image $src -o $WORK/out/$img-warm" >/dev/null
    warm=$(hf_mean "$WORK/warm.json")
    add "$img: cold build (s)" "$cold"
    add "$img: warm build (s, mean)" "$warm"
    add "$img: cold / warm" "$(ratio "$cold" "$warm")"
    cmp -s "$WORK/out/$img-cold" "$WORK/out/$img-warm" || log "warning: $img cold and warm outputs differ"
done
rm -rf "$WORK/home-redis"

# ------------------------------------------------------------- 2. embedding 100 / 500 MB
# make_layout DIR MB: an OCI layout DIR/payload with one uncompressed layer of MB MB of random bytes.
make_layout() {
    local dir=$1 mb=$2
    rm -rf "$dir"
    mkdir -p "$dir/rootfs"
    head -c "$((mb * 1000 * 1000))" /dev/urandom >"$dir/rootfs/data"
    "$C" oci2bin pack "$dir/rootfs" -o "$dir/payload" --tag latest --compress none --cmd '["/data"]' 2>/dev/null
    rm -rf "$dir/rootfs"
}

# The runtime without a decoder (for --compress none) is built before anything is timed.
build "$HOME_DIR" "$WORK/out/bb-none" "oci:$IMAGES/busybox:latest" --compress none

for mb in $SIZES; do
    dir=$WORK/embed
    log "embedding ${mb} MB: making the layout"
    make_layout "$dir" "$mb"
    src="oci:$dir/payload:latest"
    blob=$(find "$dir/payload/blobs/sha256" -type f -size +1M | head -1)

    # A new image with the runtime already built: the layer is verified and copied into the
    # build cache (--compress none), then attached.
    log "embedding ${mb} MB: first build of the image"
    timed "$WORK/t" "$C" oci2bin -q --cache-dir "$HOME_DIR" --image "$src" -o "$WORK/out/embed" --compress none
    first=$(secs "$WORK/t")
    first_rss=$(rss_mb "$WORK/t")
    payload=$(payload_size "$WORK/out/embed")

    # Embedding alone: the same image again (its layer is in the build cache), against cp of
    # the layer; before each run the outputs are deleted and dirty pages written back, so
    # neither pays for the other's writeback.
    log "embedding ${mb} MB: embedding vs cp (hyperfine)"
    hyperfine --style none -N --warmup 2 --runs 15 \
        --prepare "sh -c 'rm -f $WORK/out/embed $WORK/cp-copy; sync'" --export-json "$WORK/embed.json" \
        "$C oci2bin -q --cache-dir $HOME_DIR --image $src -o $WORK/out/embed --compress none" >/dev/null
    hyperfine --style none -N --warmup 2 --runs 15 \
        --prepare "sh -c 'rm -f $WORK/out/embed $WORK/cp-copy; sync'" --export-json "$WORK/cp.json" \
        "cp $blob $WORK/cp-copy" >/dev/null
    embed=$(hf_mean "$WORK/embed.json")
    cp_s=$(hf_mean "$WORK/cp.json")
    rm -f "$WORK/cp-copy" "$WORK/out/embed"

    add "embed ${mb} MB (payload $payload B): first build of the image (s)" "$first (max RSS $first_rss MB)"
    add "embed ${mb} MB: cargo oci2bin, layer cached (s, mean)" "$embed"
    add "embed ${mb} MB: cp of the layer (s, mean)" "$cp_s"
    add "embed ${mb} MB: cargo oci2bin / cp (goal <= 1.5)" "$(ratio "$embed" "$cp_s")"
    rm -rf "$dir" "$HOME_DIR/build"
done

# ------------------------------------------------------------------ 3. peak RSS, 1 GiB layer
if [ "$BIG_MB" -gt 0 ]; then
    dir=$WORK/big
    log "peak RSS: making a ${BIG_MB} MiB layer"
    rm -rf "$dir"
    mkdir -p "$dir/rootfs"
    head -c "$((BIG_MB * 1024 * 1024))" /dev/urandom >"$dir/rootfs/data"
    "$C" oci2bin pack "$dir/rootfs" -o "$dir/payload" --tag latest --compress none 2>/dev/null
    rm -rf "$dir/rootfs"
    log "peak RSS: building (zstd:3, cold build cache, warm runtime)"
    # In its own session, so a sampler can sum the RSS of every process of the build.
    setsid /usr/bin/time -v -o "$dir/time" "$C" oci2bin -q --cache-dir "$HOME_DIR" \
        --image "oci:$dir/payload:latest" -o "$dir/out" &
    sid=$!
    peak_sum=0
    peak_who=""
    while kill -0 "$sid" 2>/dev/null; do
        read -r sum who < <(ps -s "$sid" -o rss=,comm= 2>/dev/null |
            awk '{ s += $1; if ($1 > m) { m = $1; w = $2 } } END { printf "%d %s:%dMB\n", s, w, m / 1024 }')
        if [ "${sum:-0}" -gt "$peak_sum" ]; then
            peak_sum=$sum
            peak_who=$who
        fi
        sleep 0.1
    done
    wait "$sid" || die "the ${BIG_MB} MiB build failed"
    max_rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$dir/time")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$dir/time")
    add "${BIG_MB} MiB layer: wall time (h:mm:ss or m:ss)" "$wall"
    add "${BIG_MB} MiB layer: max RSS of one process (MB, GNU time)" "$max_rss"
    add "${BIG_MB} MiB layer: peak sum over the process tree (MB, 0.1 s samples)" "$((peak_sum / 1024)) (largest then: $peak_who)"
    add "${BIG_MB} MiB layer: max single-process RSS / layer size" "$(ratio "$max_rss" "$BIG_MB")"
    rm -rf "$dir" "$HOME_DIR/build"
fi

# --------------------------------------------------------------- 4. runtime size per codec
src="oci:$IMAGES/busybox:latest"
for codec in zstd gzip xz none; do
    log "runtime size: busybox --compress $codec"
    build "$HOME_DIR" "$WORK/out/bb-$codec" "$src" --compress "$codec"
    size=$(runtime_size "$WORK/out/bb-$codec")
    add "runtime size, --compress $codec (bytes; goal <= 1048576)" "$size ($(ratio "$size" 1048576) MiB)"
done
build "$HOME_DIR" "$WORK/out/bb-plain" "$src" --no-polyglot
plain=$(runtime_size "$WORK/out/bb-plain")
add "runtime size, zstd --no-polyglot (bytes)" "$plain ($(ratio "$plain" 1048576) MiB)"

# --------------------------------------------------------------- 5. image edits on postgres
if [ "${BENCH_SKIP_EDITS:-0}" != 1 ] && [ -f "$IMAGES/postgres/index.json" ]; then
    src="oci:$IMAGES/postgres:latest"
    echo "bench" >"$WORK/added.txt"
    # edit_build NAME OPTIONS...: a build from an empty build cache, its wall time in $t.
    edit_build() {
        local name=$1
        shift
        rm -rf "$HOME_DIR/build"
        log "postgres edits: $name"
        timed "$WORK/t" "$C" oci2bin -q --cache-dir "$HOME_DIR" --image "$src" \
            -o "$WORK/out/pg-$name" --force "$@"
        t=$(secs "$WORK/t")
    }
    build "$HOME_DIR" "$WORK/out/pg-warmup" "$src" # the runtime is built by now; page cache warm
    edit_build plain
    plain_t=$t
    add "postgres: plain build, empty build cache (s)" "$plain_t"
    strip_args=(--strip --strip-path /usr/share/zoneinfo/right --strip-path '/usr/share/bash-completion/**')
    edit_build strip "${strip_args[@]}"
    add "postgres: --strip (s; ratio to plain, goal <= 2)" "$t ($(ratio "$t" "$plain_t"))"
    timed "$WORK/t" "$C" oci2bin -q --cache-dir "$HOME_DIR" --image "$src" -o "$WORK/out/pg-strip2" \
        --force "${strip_args[@]}"
    add "postgres: --strip again, result cached (s; ratio to plain)" "$(secs "$WORK/t") ($(ratio "$(secs "$WORK/t")" "$plain_t"))"
    add "postgres: size plain -> stripped (bytes)" "$(stat -c %s "$WORK/out/pg-plain") -> $(stat -c %s "$WORK/out/pg-strip")"
    edit_build squash --squash
    add "postgres: --squash, one layer: no-op (s; ratio to plain)" "$t ($(ratio "$t" "$plain_t"))"
    edit_build add-squash --add-file "$WORK/added.txt:/etc/bench.txt" --squash
    add "postgres: --add-file + --squash, 2 layers merged (s; ratio)" "$t ($(ratio "$t" "$plain_t"))"
    rm -f "$WORK"/out/pg-* "$WORK/added.txt"
    rm -rf "$HOME_DIR/build"
fi

echo
printf '%s\n' "${SUMMARY[@]}"
