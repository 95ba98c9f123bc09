#!/usr/bin/env bash
# Builds oci2bin's end-to-end test images from Debian bookworm packages, without docker or a
# registry: mmdebstrap makes each root filesystem, `cargo oci2bin pack` turns it into an OCI
# layout OUTDIR/NAME (tag `latest`).
#
#   busybox        busybox-static with applet symlinks, Cmd ["sh"]
#   redis          like the official image: docker-entrypoint.sh + redis-server (flags as
#                  arguments go to redis-server), protected mode off, WorkingDir /data
#   nginx          nginx-light on 127.0.0.1:$NGINX_PORT (default 8080), no user switch
#   postgres       postgresql 15, official-image-like entrypoint (root, then setpriv postgres)
#   postgres-user  the same root filesystem with User postgres
#   attack         the busybox root filesystem plus /usr/local/bin/attack, tests/attack/attack.c
#                  built with musl-gcc -static (confinement probes), Cmd ["sh"]
# and OUTDIR/busybox.docker-archive.tar (skopeo copy of the busybox layout).
#
# Usage: scripts/build-test-images.sh OUTDIR [NAME...]   (as root: mmdebstrap, chroot)
#        (no NAME: all of them; postgres also makes postgres-user)
# Environment:
#   CARGO_OCI2BIN      the cargo-oci2bin binary (default: cargo-oci2bin on PATH)
#   OCI2BIN_DEB_CACHE  where downloaded .debs are kept between runs
#                      (default: $HOME/.cache/oci2bin-debs)
#   OCI2BIN_APT_SOURCES  apt sources for mmdebstrap: a sources file or a mirror URL
#                      (default: this machine's /etc/apt/sources.list.d/debian.sources,
#                      else http://deb.debian.org/debian)
#   SOURCE_DATE_EPOCH  passed to mmdebstrap and pack (pack's default is 0)
#
# Idempotent: an image whose OUTDIR/NAME/index.json exists is not rebuilt (delete the
# directory to rebuild it); attack is also rebuilt when attack.c changes (its sha256 is kept
# in OUTDIR/attack.c.sha256). Work happens in OUTDIR/.work and each layout is moved into
# place only when complete.
set -euo pipefail

usage() {
    echo "usage: $0 OUTDIR [busybox|redis|nginx|postgres|attack|docker-archive]..." >&2
    exit 2
}
[ "$#" -ge 1 ] || usage

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FILES="$SCRIPT_DIR/test-images"
ATTACK_SRC="$(cd "$SCRIPT_DIR/.." && pwd)/tests/attack/attack.c"
OUTDIR=$(mkdir -p "$1" && cd "$1" && pwd)
CARGO_OCI2BIN=${CARGO_OCI2BIN:-cargo-oci2bin}
DEB_CACHE=${OCI2BIN_DEB_CACHE:-$HOME/.cache/oci2bin-debs}
SUITE=bookworm
MERGED_USR_HOOKS=/usr/share/mmdebstrap/hooks/merged-usr
WORK="$OUTDIR/.work"

if [ -n "${OCI2BIN_APT_SOURCES:-}" ]; then
    APT_SOURCES=$OCI2BIN_APT_SOURCES
elif [ -f /etc/apt/sources.list.d/debian.sources ] &&
    grep -q "$SUITE" /etc/apt/sources.list.d/debian.sources; then
    APT_SOURCES=/etc/apt/sources.list.d/debian.sources
else
    APT_SOURCES=http://deb.debian.org/debian
fi

log() { echo "build-test-images: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

check_tools() {
    [ "$(id -u)" = 0 ] || die "run as root: mmdebstrap builds in root mode and the packed files belong to several users"
    local tool
    for tool in mmdebstrap skopeo chroot; do
        command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install mmdebstrap skopeo)"
    done
    command -v "$CARGO_OCI2BIN" >/dev/null || [ -x "$CARGO_OCI2BIN" ] ||
        die "cargo-oci2bin not found as '$CARGO_OCI2BIN': build it (cargo build -p cargo-oci2bin) and set CARGO_OCI2BIN"
    [ -d "$MERGED_USR_HOOKS" ] || die "$MERGED_USR_HOOKS is missing (mmdebstrap too old?)"
}

# debootstrap_rootfs ROOTFS MMDEBSTRAP-OPTION...: builds bookworm into the directory ROOTFS,
# reusing cached .debs: sync-in before apt runs, sync-out after; essential/unlink is skipped
# so the downloaded packages are still in /var/cache/apt/archives when sync-out runs.
debootstrap_rootfs() {
    local rootfs=$1
    shift
    mkdir -p "$DEB_CACHE"
    # shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap's hook shell, not here.
    mmdebstrap --quiet \
        --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $DEB_CACHE /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $DEB_CACHE" \
        "$@" "$SUITE" "$rootfs" "$APT_SOURCES" </dev/null
}

# Runs a shell command inside the root filesystem, so that every path (and its symlinks, such
# as the absolute /var/run -> /run) resolves inside it and never on the host.
in_root() {
    local rootfs=$1
    shift
    chroot "$rootfs" /bin/sh -c "$@"
}

# put_file ROOTFS SOURCE DEST MODE: copies a host file into the root filesystem (written from
# inside the chroot, for the same reason as in_root).
put_file() {
    # shellcheck disable=SC2016 # the inner script gets its arguments as $1 and $2.
    chroot "$1" /bin/sh -c 'umask 022; mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"' \
        put_file "$3" "$4" <"$2"
}

# Removes what a container image does not need: device nodes (a rootless runtime cannot
# create them and provides its own /dev), apt's caches and lists, documentation.
slim_rootfs() {
    local rootfs=$1
    find "$rootfs" -xdev \( -type b -o -type c \) -delete
    rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info \
        "$rootfs"/usr/share/locale "$rootfs"/usr/share/lintian "$rootfs"/var/log/*.log \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
    mkdir -p "$rootfs"/usr/share/doc "$rootfs"/usr/share/man
}

# pack ROOTFS NAME PACK-ARGS...: packs into $WORK/NAME, then moves it to OUTDIR/NAME.
pack() {
    local rootfs=$1 name=$2
    shift 2
    rm -rf "${WORK:?}/$name"
    "$CARGO_OCI2BIN" oci2bin pack "$rootfs" -o "$WORK/$name" --tag latest "$@"
    rm -rf "${OUTDIR:?}/$name"
    mv "$WORK/$name" "$OUTDIR/$name"
    log "packed $OUTDIR/$name"
}

built() {
    if [ -f "$OUTDIR/$1/index.json" ]; then
        log "$1: already built ($OUTDIR/$1), skipping"
        return 0
    fi
    return 1
}

# busybox_rootfs ROOTFS: the busybox image's root filesystem in the directory ROOTFS:
# busybox-static with its applets as symlinks, minimal /etc/passwd and /etc/group, slimmed.
busybox_rootfs() {
    local rootfs=$1
    rm -rf "$rootfs"
    debootstrap_rootfs "$rootfs" --variant=extract --include=busybox-static
    [ -x "$rootfs/bin/busybox" ] || die "busybox-static did not provide $rootfs/bin/busybox"
    # busybox --install -s, without chroot: the image's busybox is static, so it runs here
    # and lists its applets with their install paths (bin/sh, usr/bin/wget, ...).
    local applet dir
    for dir in bin sbin usr/bin usr/sbin; do
        [ ! -L "$rootfs/$dir" ] || die "$rootfs/$dir is a symlink; refusing to write through it"
        mkdir -p "$rootfs/$dir"
    done
    "$rootfs/bin/busybox" --list-full | while read -r applet; do
        case "$applet" in
            */*) ;;
            *) applet="bin/$applet" ;;
        esac
        [ -e "$rootfs/$applet" ] || [ -L "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
    done
    [ -L "$rootfs/bin/sh" ] || die "busybox did not list sh"
    mkdir -p "$rootfs"/{etc,root,tmp,proc,sys,dev,var/tmp,home}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    chmod 700 "$rootfs/root"
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
        >"$rootfs/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
    rm -rf "$rootfs/var/cache/apt" "$rootfs/var/lib/apt" "$rootfs/usr/share/doc"
    slim_rootfs "$rootfs"
}

build_busybox() {
    built busybox && return 0
    local rootfs="$WORK/busybox-rootfs"
    busybox_rootfs "$rootfs"
    pack "$rootfs" busybox --cmd sh
    rm -rf "$rootfs"
}

build_attack() {
    [ -f "$ATTACK_SRC" ] || die "$ATTACK_SRC is missing"
    local digest stamp="$OUTDIR/attack.c.sha256"
    digest=$(sha256sum <"$ATTACK_SRC" | cut -d' ' -f1)
    if [ -f "$OUTDIR/attack/index.json" ]; then
        if [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
            log "attack: already built ($OUTDIR/attack), skipping"
            return 0
        fi
        log "attack: $ATTACK_SRC changed, rebuilding"
    fi
    command -v musl-gcc >/dev/null || die "musl-gcc is not installed (apt-get install musl-tools)"
    local rootfs="$WORK/attack-rootfs"
    busybox_rootfs "$rootfs"
    musl-gcc -static -O2 -Wall -Wextra -o "$WORK/attack" "$ATTACK_SRC"
    put_file "$rootfs" "$WORK/attack" /usr/local/bin/attack 0755
    rm -f "$WORK/attack"
    pack "$rootfs" attack --cmd sh
    echo "$digest" >"$stamp"
    rm -rf "$rootfs"
}

build_redis() {
    built redis && return 0
    local rootfs="$WORK/redis-rootfs"
    rm -rf "$rootfs"
    debootstrap_rootfs "$rootfs" --variant=essential --include=redis-server \
        --hook-dir="$MERGED_USR_HOOKS"
    in_root "$rootfs" 'install -d -m 0777 /data'
    put_file "$rootfs" "$FILES/redis-entrypoint.sh" /usr/local/bin/docker-entrypoint.sh 0755
    slim_rootfs "$rootfs"
    pack "$rootfs" redis \
        --entrypoint '["docker-entrypoint.sh"]' --cmd '["redis-server"]' \
        --workdir /data --expose 6379/tcp
    rm -rf "$rootfs"
}

build_nginx() {
    built nginx && return 0
    local rootfs="$WORK/nginx-rootfs"
    rm -rf "$rootfs"
    debootstrap_rootfs "$rootfs" --variant=essential --include=nginx-light \
        --hook-dir="$MERGED_USR_HOOKS"
    put_file "$rootfs" "$FILES/nginx.conf.in" /etc/nginx/nginx.conf.in 0644
    put_file "$rootfs" "$FILES/nginx-entrypoint.sh" /usr/local/bin/nginx-entrypoint 0755
    put_file "$rootfs" "$FILES/index.html" /usr/share/nginx/html/index.html 0644
    # Check the config's syntax (without /proc in the chroot, /dev/stdout cannot be opened,
    # so the check logs to a file instead).
    in_root "$rootfs" 'sed "s/@PORT@/8080/; s#/dev/stdout#/tmp/nginx-check.log#" /etc/nginx/nginx.conf.in >/tmp/nginx-check.conf &&
        nginx -t -q -c /tmp/nginx-check.conf && rm -f /tmp/nginx-check.conf /tmp/nginx-check.log'
    slim_rootfs "$rootfs"
    pack "$rootfs" nginx \
        --entrypoint '["nginx-entrypoint"]' --cmd '["nginx","-g","daemon off;"]' \
        --expose 8080/tcp
    rm -rf "$rootfs"
}

build_postgres() {
    if [ -f "$OUTDIR/postgres/index.json" ] && [ -f "$OUTDIR/postgres-user/index.json" ]; then
        log "postgres, postgres-user: already built, skipping"
        return 0
    fi
    local rootfs="$WORK/postgres-rootfs"
    rm -rf "$rootfs"
    debootstrap_rootfs "$rootfs" --variant=essential --include=postgresql \
        --hook-dir="$MERGED_USR_HOOKS"
    put_file "$rootfs" "$FILES/postgres-entrypoint.sh" /usr/local/bin/docker-entrypoint.sh 0755
    # postgresql-common creates a "main" cluster on install; the entrypoint makes its own.
    # Size: LLVM (+z3) only serves JIT compilation (the entrypoint sets jit = off), the
    # locale sources and perl's non-essential modules only serve postgresql-common's perl
    # wrappers, which PATH bypasses (the real binaries come first). About 100 MB less.
    in_root "$rootfs" 'rm -rf /etc/postgresql/15/main /var/lib/postgresql/15 &&
        install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data &&
        install -d -o postgres -g postgres -m 2775 /var/run/postgresql &&
        rm -rf /usr/lib/*/libLLVM-*.so* /usr/lib/*/libz3.so* /usr/lib/postgresql/15/lib/llvmjit* \
            /usr/lib/postgresql/15/lib/bitcode /usr/share/i18n /usr/share/perl/5.* \
            /usr/lib/*/perl/5.* /usr/lib/*/libperl.so*'
    slim_rootfs "$rootfs"
    local common=(--entrypoint '["docker-entrypoint.sh"]' --cmd '["postgres"]'
        --env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        --env PGDATA=/var/lib/postgresql/data --env LANG=C.UTF-8 --expose 5432/tcp)
    pack "$rootfs" postgres "${common[@]}"
    pack "$rootfs" postgres-user "${common[@]}" --user postgres
    rm -rf "$rootfs"
}

build_docker_archive() {
    local archive="$OUTDIR/busybox.docker-archive.tar"
    if [ -f "$archive" ]; then
        log "busybox.docker-archive.tar: already built, skipping"
        return 0
    fi
    rm -f "$WORK/busybox.docker-archive.tar"
    skopeo copy --quiet "oci:$OUTDIR/busybox:latest" \
        "docker-archive:$WORK/busybox.docker-archive.tar:busybox:latest"
    mv "$WORK/busybox.docker-archive.tar" "$archive"
    log "wrote $archive"
}

main() {
    check_tools
    mkdir -p "$WORK"
    # Layouts are read by unprivileged test users.
    chmod 755 "$OUTDIR"
    local images=("$@")
    [ "${#images[@]}" -gt 0 ] || images=(busybox redis nginx postgres attack docker-archive)
    for image in "${images[@]}"; do
        case "$image" in
        busybox) build_busybox ;;
        redis) build_redis ;;
        nginx) build_nginx ;;
        postgres) build_postgres ;;
        attack) build_attack ;;
        docker-archive) build_busybox && build_docker_archive ;;
        *) usage ;;
        esac
    done
    rm -rf "$WORK"
    log "images are in $OUTDIR"
}

main "${@:2}"
