#!/usr/bin/env bash
# Installs Debian's PostgreSQL when missing, starts a throwaway cluster on 127.0.0.1 and
# prints the URL of a test database (the reference backend's PostgreSQL tests read it from
# TOKENKEEPER_TEST_PG_URL). Idempotent: a cluster already running is reused.
#
#   export TOKENKEEPER_TEST_PG_URL=$(scripts/setup-postgres.sh)
#
# Settings: TOKENKEEPER_PG_DIR (data directory, default /tmp/tokenkeeper-pg),
# TOKENKEEPER_PG_PORT (default 55432). Everything but the URL goes to stderr.
set -euo pipefail
DIR="${TOKENKEEPER_PG_DIR:-/tmp/tokenkeeper-pg}"
PORT="${TOKENKEEPER_PG_PORT:-55432}"
DB=tokenkeeper_test
log() { printf 'setup-postgres: %s\n' "$*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(bindir)" ] || [ ! -x "$(bindir)/initdb" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL is not installed; run as root or: apt-get install -y postgresql"
        exit 1
    fi
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi
BIN="$(bindir)"

# PostgreSQL refuses to run as root: the cluster belongs to the 'postgres' user when we are root.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" postgres
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER=$(id -un)
fi

mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
    log "initdb in $DIR/data"
    as_pg "$BIN/initdb" -D "$DIR/data" -U "$OWNER" -A trust --no-sync -E UTF8 >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >&2
fi
psql_() { as_pg psql -h 127.0.0.1 -p "$PORT" -U "$OWNER" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_ -c "CREATE DATABASE $DB" >&2
fi
# Databases the tests made in earlier runs (each test makes its own from this one's URL).
for old in $(psql_ -c "SELECT datname FROM pg_database WHERE datname LIKE 'tk\_%'"); do
    psql_ -c "DROP DATABASE IF EXISTS \"$old\"" >&2 || true
done
echo "postgres://$OWNER@127.0.0.1:$PORT/$DB"
