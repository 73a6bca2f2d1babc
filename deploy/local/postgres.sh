#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests (the production database option): start | stop | url.
# Runs as the `postgres` system user (the server refuses root), on 127.0.0.1:${PG_PORT:-5433}.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VAR="${VAR_DIR:-$ROOT/var}"
PGPORT="${PG_PORT:-5433}"
DATA="$VAR/pg/data"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$BIN" ] || { echo "postgres: no server binaries; run make install" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  mkdir -p "$VAR/pg" "$VAR/log"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$VAR/pg"
  touch "$VAR/log/postgres.log"; [ "$(id -u)" -eq 0 ] && chown postgres: "$VAR/log/postgres.log"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then return 0; fi
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$VAR/log/postgres.log" -w -t 60 \
        -o "-p $PGPORT -h 127.0.0.1 -k /tmp -c fsync=off -c full_page_writes=off" start >/dev/null
  as_pg "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='routemate'" \
    | grep -q 1 || as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres routemate
  echo "postgres: up on 127.0.0.1:$PGPORT"
}

stop() {
  [ -f "$DATA/PG_VERSION" ] || return 0
  as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "postgresql://postgres@127.0.0.1:$PGPORT/routemate" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
