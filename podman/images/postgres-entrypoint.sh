#!/bin/sh
# Minimal twin of the official postgres image's entrypoint: initdb once (superuser
# $POSTGRES_USER, password from $POSTGRES_PASSWORD or $POSTGRES_PASSWORD_FILE, SCRAM everywhere),
# then exec the command. Databases are created by `chgate migrate up`, not here.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw="${POSTGRES_PASSWORD:-}"
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then pw="$(cat "$POSTGRES_PASSWORD_FILE")"; fi
    if [ -z "$pw" ]; then
        echo "docker-entrypoint.sh: POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required" >&2
        exit 1
    fi
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    pwfile="$(mktemp)"
    printf '%s\n' "$pw" > "$pwfile"
    initdb -D "$PGDATA" --username="${POSTGRES_USER:-postgres}" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec "$@"
