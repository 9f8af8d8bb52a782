#!/usr/bin/env bash
# The Socket.IO figures with two independently written generators: herald-loadgen (C on libuv) and
# bench/sio_load.py (Python asyncio + python3-websockets), one after the other against the same
# server process, for Herald (`--shards 1 --test-handlers --recovery-window 0`) and the Node
# reference (bench/sio-server.js), so that a figure is not an artefact of one generator. Runs:
# fan-out to BENCH_FANOUT_RECEIVERS (1000) receivers at K=1 and K=16, and echo with ack on
# BENCH_ACK_CONNECTIONS (100) connections: as fast as each generator goes, and with herald-loadgen
# held to BENCH_ACK_RATE (20000) emits/s, about what sio_load.py offers (moderate load). The echo
# floor (bench/echo_floor.c, herald-echo-floor: a minimal epoll loop that answers each `echo`) runs
# the ack runs under the same generators, and the table divides each server's CPU per ack by its
# CPU per ack. Server CPU per item from /proc (each generator reads it over its own window).
# Prints a markdown table and writes it to bench/results/generators-<date>.md.
#
# Usage: bench/run-generators.sh   (BENCH_* of bench/lib.sh apply; BENCH_SERVERS "floor node herald")
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
RECEIVERS=${BENCH_FANOUT_RECEIVERS:-1000}
ACK_CONNS=${BENCH_ACK_CONNECTIONS:-100}
ACK_RATE=${BENCH_ACK_RATE:-20000}
SERVERS=${BENCH_SERVERS:-"floor node herald"}
PY=${BENCH_PYTHON:-/usr/bin/python3}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-generators
bench_build
"$PY" -c 'import websockets' 2>/dev/null || { log "$PY has no websockets module (apt-get install python3-websockets)"; exit 1; }

declare -A R # R[server,run,generator] = "rate cpu_us gen_pct"

launch() {
  SRV_PORT=$(free_port)
  case $1 in
    node) start_server node node bench/sio-server.js "$SRV_PORT" ;;
    floor) start_server floor "$BUILD_DIR/herald-echo-floor" --port "$SRV_PORT" ;;
    herald)
      mkdir -p "$WORK/herald-data"
      start_server herald "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$SRV_PORT" --shards 1 --test-handlers \
        --recovery-window 0 --eio-handshake-rate 0 --log-level warn --data-dir "$WORK/herald-data" --shutdown-grace 1000 ;;
  esac
  wait_port "$SRV_PORT" "$SRV_PID" || { log "$1 did not start"; tail -n 5 "$WORK/$1.log" >&2; exit 1; }
  sleep 0.5
}

# c_gen SERVER RUN ARGS...: herald-loadgen's figures of one run.
c_gen() {
  local s=$1 run=$2 j
  shift 2
  wait_quiet
  log "$s: $run with herald-loadgen"
  j=$(taskset -c "$LOADGEN_CPU" "$LOADGEN" "$@" --port "$SRV_PORT" --size "$SIZE" --warmup "$WARMUP" \
        --duration "$DURATION" --server-pid "$SRV_PID" --quiet 2>/dev/null | tail -n 1) || true
  echo "$j" >>"$WORK/raw.jsonl"
  R[$s,$run,c]="$(jget "$j" msgs_per_s) $(jget "$j" server_cpu_us_per_msg) $(jget "$j" loadgen_cpu_pct) $(jget "$j" errors)"
}

# py_gen SERVER RUN ARGS...: sio_load.py's figures of one run.
py_gen() {
  local s=$1 run=$2 j
  shift 2
  wait_quiet
  log "$s: $run with sio_load.py"
  j=$(taskset -c "$LOADGEN_CPU" "$PY" bench/sio_load.py "$@" --port "$SRV_PORT" --size "$SIZE" --warmup "$WARMUP" \
        --duration "$DURATION" --server-pid "$SRV_PID" 2>"$WORK/py.err" | tail -n 1) || true
  [ -n "$j" ] || log "sio_load.py failed: $(tail -n 2 "$WORK/py.err")"
  echo "$j" >>"$WORK/raw.jsonl"
  j=$(tr -d ' ' <<<"$j")
  local bad
  bad=$(jget "$j" bad_acks)
  [ "$(jget "$j" drained)" = false ] && bad=undrained
  R[$s,$run,py]="$(jget "$j" items_per_s) $(jget "$j" server_cpu_us_per_item) $(jget "$j" generator_cpu_pct) ${bad:-0}"
}

for s in $SERVERS; do
  [ "$s" = herald ] && [ "$HERALD_OK" != 1 ] && { log "herald unavailable: $HERALD_WHY"; continue; }
  [ "$s" = floor ] && [ ! -x "$BUILD_DIR/herald-echo-floor" ] && { log "no $BUILD_DIR/herald-echo-floor: no echo floor"; continue; }
  launch "$s"
  if [ "$s" != floor ]; then # the fan-out's floor is herald-floor's (run-socketio.sh)
    for k in 1 16; do
      c_gen "$s" "fan$k" sio-fanout --connections "$RECEIVERS" --window "$k"
      py_gen "$s" "fan$k" fanout --connections "$RECEIVERS" --window "$k"
    done
  fi
  c_gen "$s" ack sio-ack --connections "$ACK_CONNS"
  c_gen "$s" ack_rate sio-ack --connections "$ACK_CONNS" --rate "$ACK_RATE"
  py_gen "$s" ack ack --connections "$ACK_CONNS"
  stop_server "$SRV_PID"
done

field() { local v; v=$(cut -d' ' -f"$2" <<<"${R[$1]:-}"); echo "${v:-n/a}"; }
# ratio A B: A / B to 2 decimals, n/a when either is missing
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'; }
DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
OUT="bench/results/generators-$DATE.md"
{
  echo "# Socket.IO with two generators: herald-loadgen (C, libuv) and sio_load.py (Python asyncio + websockets) ($DATE)"
  echo
  echo "- commit $(commit_line); $(machine_line)"
  echo "- server pinned to CPU $SERVER_CPU, generator to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run; both generators against the same server process, one after the other"
  echo "- herald: \`serve --shards 1 --test-handlers --recovery-window 0\`; node: \`bench/sio-server.js\`; floor: \`herald-echo-floor\`; fan-out: $RECEIVERS receivers + 1 publisher, K broadcasts in flight; ack: $ACK_CONNS connections, one \`echo\` in flight each (ack_rate: herald-loadgen \`--rate $ACK_RATE\`)"
  echo
  echo "| server | run | generator | items/s | server CPU µs/item | generator CPU % | errors |"
  echo "|---|---|---|---:|---:|---:|---:|"
  for s in $SERVERS; do
    for run in fan1 fan16 ack ack_rate; do
      for g in c py; do
        [ -n "${R[$s,$run,$g]:-}" ] || continue
        name=herald-loadgen; [ "$g" = py ] && name=sio_load.py
        echo "| $s | $run | $name | $(field "$s,$run,$g" 1) | $(field "$s,$run,$g" 2) | $(field "$s,$run,$g" 3) | $(field "$s,$run,$g" 4) |"
      done
    done
  done
  echo
  echo "Echo with ack, server CPU per ack as ratios (floor: the least any server spends per ack here; floor/node: the lowest herald/node any server could reach at that load):"
  echo
  echo "| run | generator | acks/s (herald) | herald/node | herald/floor | node/floor | floor/node |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for run in ack ack_rate; do
    for g in c py; do
      [ -n "${R[herald,$run,$g]:-}${R[node,$run,$g]:-}" ] || continue
      name=herald-loadgen; [ "$g" = py ] && name=sio_load.py
      h=$(field "herald,$run,$g" 2) n=$(field "node,$run,$g" 2) f=$(field "floor,$run,$g" 2)
      echo "| $run | $name | $(field "herald,$run,$g" 1) | $(ratio "$h" "$n") | $(ratio "$h" "$f") | $(ratio "$n" "$f") | $(ratio "$f" "$n") |"
    done
  done
  echo
  echo '```'
  cat "$WORK/raw.jsonl"
  echo '```'
} >"$OUT"
cat "$OUT"
log "written to $OUT"
