#!/bin/sh
# Entrypoint of oci2bin's nginx test image: writes /tmp/nginx.conf from the template with
# listen port $NGINX_PORT (default 8080), then runs the command, pointing nginx at that config.
#   (no args)                    nginx -g 'daemon off;' on 127.0.0.1:8080
#   NGINX_PORT=9000 in the env   the same on port 9000
#   any other command            run as is
set -eu
port="${NGINX_PORT:-8080}"
case "$port" in
    ''|*[!0-9]*) echo "nginx-entrypoint: NGINX_PORT must be a number, got '$port'" >&2; exit 2 ;;
esac
sed "s/@PORT@/$port/" /etc/nginx/nginx.conf.in > /tmp/nginx.conf
if [ "${1:-}" = nginx ]; then
    shift
    exec nginx -c /tmp/nginx.conf "$@"
fi
exec "$@"
