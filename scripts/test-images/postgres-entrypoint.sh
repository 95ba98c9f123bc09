#!/bin/bash
# Entrypoint of oci2bin's postgres test image, behaving like the official image's:
# - started as root: create PGDATA and /var/run/postgresql, give them to the postgres user and
#   re-exec this script as postgres (setpriv);
# - as postgres: run initdb when PGDATA is empty (trust auth for local and 127.0.0.1,
#   listen_addresses='127.0.0.1'), then exec postgres on port $PGPORT (default 5432).
# Arguments: none or `postgres [OPTION...]` (options starting with '-' get `postgres` put
# before them); any other command is run as is.
set -euo pipefail

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGPORT="${PGPORT:-5432}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"

if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA"
if [ -z "$(ls -A "$PGDATA")" ]; then
    echo "postgres-entrypoint: initialising $PGDATA" >&2
    initdb --username=postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        --pgdata="$PGDATA" >&2
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
jit = off
unix_socket_directories = '/var/run/postgresql'
CONF
fi

shift
exec postgres -p "$PGPORT" "$@"
