#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests and benchmarks (Debian `postgresql`).
#   scripts/pg-test-server.sh start   initdb into a new temporary directory, start the server on a
#                                     free loopback port (unix socket in that directory, fsync on),
#                                     print two lines for eval:
#                                       export HERALD_TEST_POSTGRES_URL=postgresql://herald@127.0.0.1:PORT/postgres
#                                       export HERALD_TEST_POSTGRES_DIR=/tmp/herald-pg-XXXXXX
#   scripts/pg-test-server.sh stop DIR    stop the server of DIR and remove DIR (safe to repeat)
# PostgreSQL refuses to run as root: as root, the server runs as the system user `herald-test`
# (created when missing). Authentication is `trust` on loopback and the socket: tests only.
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "pg-test-server: initdb not found (scripts/install-deps.sh installs postgresql)" >&2; exit 1; }
RUN_AS=herald-test

as_owner() { # runs a command as the server's owner (ourselves unless we are root)
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

start() {
  if [ "$(id -u)" -eq 0 ] && ! id "$RUN_AS" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS"
  fi
  local dir port
  dir=$(mktemp -d /tmp/herald-pg-XXXXXX)
  [ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if ! as_owner "$PG_BIN/initdb" -D "$dir/data" -U herald -A trust -E UTF8 --no-locale --no-instructions \
      >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1
  fi
  if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
      "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200" \
      >/dev/null; then
    cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1
  fi
  echo "export HERALD_TEST_POSTGRES_URL=postgresql://herald@127.0.0.1:$port/postgres"
  echo "export HERALD_TEST_POSTGRES_DIR=$dir"
}

stop() {
  local dir=${1:-}
  case "$dir" in /tmp/herald-pg-*) ;; *) echo "pg-test-server: stop needs the directory start printed" >&2; exit 2 ;; esac
  [ -d "$dir" ] || return 0
  [ -f "$dir/data/postmaster.pid" ] && as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
