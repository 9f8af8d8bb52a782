#!/usr/bin/env bash
# Idle memory per connection, alone (no load runs): for each mode, a fresh Herald, then N idle
# connections from herald-loadgen; prints (RSS with them - RSS before) / connections open. The same
# measurement as the idle rows of run-socketio.sh and run-echo.sh, in seconds instead of minutes,
# for checking a memory change. Modes: sio (Socket.IO sockets, `--recovery-window 0`), sio-rec
# (Socket.IO with recovery on, Herald's default), ws (raw WebSocket on /ws/echo).
#
# Usage: bench/run-idle.sh [MODE...]   (default: sio sio-rec ws)
#
# Environment: BENCH_BUILD_DIR (build), BENCH_IDLE_CONNECTIONS (10000), BENCH_SHARDS (1),
# BENCH_REPEAT (runs per mode, 1). Needs `ulimit -n` above the connection count (twice it when
# the generator runs as the same user).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BENCH_BUILD_DIR:-build}
N=${BENCH_IDLE_CONNECTIONS:-10000}
SHARDS=${BENCH_SHARDS:-1}
REPEAT=${BENCH_REPEAT:-1}
MODES=${*:-sio sio-rec ws}
WORK=$(mktemp -d)
SRV_PID="" GEN_PID=""
cleanup() {
  [ -z "$GEN_PID" ] || kill "$GEN_PID" 2>/dev/null || true
  [ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# idle MODE: one measurement; prints "MODE bytes_per_connection (open, RSS before -> after kB)".
idle() {
  local mode=$1 gen_mode=sio-idle port flags=(--test-handlers --recovery-window 0)
  case $mode in
    sio) ;;
    sio-rec) flags=(--test-handlers) ;;
    ws) gen_mode=idle flags=(--echo-endpoint) ;;
    *) echo "unknown mode $mode" >&2; return 1 ;;
  esac
  port=$(free_port)
  rm -rf "$WORK/data" "$WORK/ready" && mkdir -p "$WORK/data"
  "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$port" --shards "$SHARDS" "${flags[@]}" \
    --eio-handshake-rate 0 --max-connections $((N + 1000)) --max-eio-sessions $((N + 1000)) \
    --log-level warn --data-dir "$WORK/data" --shutdown-grace 1000 --demo-users false >"$WORK/server.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  sleep 1
  local before after open
  before=$(rss_kb "$SRV_PID")
  "$BUILD_DIR/herald-loadgen" "$gen_mode" --port "$port" --connections "$N" --hold 0 --server-pid "$SRV_PID" \
    --ready-file "$WORK/ready" --quiet >"$WORK/gen.out" 2>"$WORK/gen.err" &
  GEN_PID=$!
  for _ in $(seq 1 1200); do [ -f "$WORK/ready" ] || ! kill -0 "$GEN_PID" 2>/dev/null && break; sleep 0.1; done
  sleep 2 # let the server finish any deferred work
  after=$(rss_kb "$SRV_PID")
  open=$(sed -n 's/^open=\([0-9]*\).*/\1/p' "$WORK/ready" 2>/dev/null || true)
  kill -INT "$GEN_PID" 2>/dev/null || true
  wait "$GEN_PID" 2>/dev/null || true
  kill "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  GEN_PID="" SRV_PID=""
  if [ -z "$open" ] || [ "$open" -eq 0 ]; then
    echo "$mode: no connection opened: $(tail -n 2 "$WORK/gen.err")" >&2
    return 1
  fi
  echo "$mode $(((after - before) * 1024 / open)) B/connection ($open open, RSS $before -> $after kB, --shards $SHARDS)"
}

for mode in $MODES; do
  for _ in $(seq 1 "$REPEAT"); do idle "$mode"; done
done
