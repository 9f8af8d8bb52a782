#!/usr/bin/env bash
# The store under write load, SQLite beside PostgreSQL in one run: notifications created per second
# through the REST API (POST /api/v4/notifications/send, answered 201 after the commit) and chat
# messages per second through Socket.IO (chat:send_message, acked with the stored message), from
# BENCH_CONCURRENCY closed-loop clients, with p50/p99 latency to the acknowledgement and store
# commits per second (the gap between writes/s and commits/s is group commit at work). PostgreSQL
# is a throw-away local server (scripts/pg-test-server.sh, fsync on); SQLite is WAL with
# synchronous=FULL. One Herald per backend, --shards BENCH_SHARDS (2). Prints a markdown table.
#
# Usage: bench/run-store.sh        Environment: BENCH_DURATION (seconds per phase, 5),
#   BENCH_CONCURRENCY (clients, 32), BENCH_SHARDS (2), BENCH_BUILD_DIR (build).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
SHARDS=${BENCH_SHARDS:-2}
BUILD_DIR=${BENCH_BUILD_DIR:-build}
SECRET="bench-store-secret-$$-$RANDOM$RANDOM"
API_KEY="bench-store-key-$$-$RANDOM"
WORK=$(mktemp -d /tmp/herald-bench-store.XXXXXX)
SRV_PID=""
PG_DIR=""

cleanup() {
  [ -z "$SRV_PID" ] || { kill -TERM "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null || true; }
  [ -z "$PG_DIR" ] || bash scripts/pg-test-server.sh stop "$PG_DIR"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$BUILD_DIR/herald" ] || { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD_DIR" -j"$(nproc)" >/dev/null; }
eval "$(bash scripts/pg-test-server.sh start)"
PG_DIR=$HERALD_TEST_POSTGRES_DIR
psql "$HERALD_TEST_POSTGRES_URL" -qc "CREATE DATABASE herald_bench"
PG_URL="${HERALD_TEST_POSTGRES_URL%/*}/herald_bench"

# run NAME STORE_ARGS...: one Herald on that store, the load, its JSON lines into $WORK/NAME.jsonl
run() {
  local name=$1; shift
  local port log=$WORK/$name.log
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$port" --data-dir "$WORK/$name-data" --shards "$SHARDS" \
    --jwt-secret "$SECRET" --api-key "$API_KEY" --demo-users false --log-level warn --chat-rate 0 "$@" >"$log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  node bench/store-load.mjs "$port" "$SECRET" "$API_KEY" "$DURATION" "$CONCURRENCY" >"$WORK/$name.jsonl"
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
}

run sqlite
run postgres --postgres-url "$PG_URL"

echo "store write load: $CONCURRENCY closed-loop clients, ${DURATION}s per phase, $SHARDS shards, $(nproc) cores ($(date -u +%F))"
echo
echo "| store | writes | per second | p50 ms | p99 ms | commits/s | errors |"
echo "|---|---|---:|---:|---:|---:|---:|"
for name in sqlite postgres; do
  python3 - "$name" "$WORK/$name.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[2]):
    r = json.loads(line)
    what = {"notifications": "notifications (REST)", "chat_messages": "chat messages (Socket.IO)",
            "inbox_publishes": "JSON inbox publishes (REST)"}[r["phase"]]
    print(f"| {sys.argv[1]} | {what} | {r['writes_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['commits_per_s']} | {r['errors']} |")
PY
done
