#!/bin/sh
# Like the official redis image's docker-entrypoint.sh: arguments that are flags (or a .conf
# file) are redis-server's, so `docker run redis --port 6380` (and `./redis_latest --port
# 6380`) work; without a config file redis listens with protected mode off, as there.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
