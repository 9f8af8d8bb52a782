#!/usr/bin/env bash
# TLS against plain, Herald beside Node: the same generator (herald-loadgen, `--tls` for wss://)
# drives, each pinned to its own core, Herald (`--tls-cert/--tls-key` on --port, or plain) and the
# Node references over Node's https server (bench/ws-echo-server.js for echo, bench/sio-server.js
# for Socket.IO, both with BENCH_TLS_CERT/BENCH_TLS_KEY). Measured per server and transport:
#   echo      raw WebSocket echo at ECHO_CONNS connections: messages/s, server CPU µs per echo
#   fan-out   Socket.IO broadcast to FANOUT_RECEIVERS sockets (window 8): deliveries/s, CPU µs per
#             delivery (with TLS every recipient encrypts its own copy; plain shares one frame)
#   connect   Socket.IO connection churn (TCP + TLS full handshake + WebSocket + CONNECT, then
#             close) at CONNECT_SLOTS parallel slots: handshakes/s, CPU µs per connection
# Prints a markdown table and writes it to bench/results/tls-<date>.md. Runs are short on purpose
# (the machine is shared): BENCH_DURATION 3 s, BENCH_WARMUP 1 s by default.
#
# Usage: bench/run-tls.sh
# Environment: BENCH_DURATION (3), BENCH_WARMUP (1), BENCH_SIZE (32), BENCH_TLS_ECHO_CONNS (100),
# BENCH_TLS_FANOUT_RECEIVERS (200), BENCH_TLS_CONNECT_SLOTS (20), BENCH_REPEAT (0),
# BENCH_QUIET_WAIT (30), BENCH_BUILD_DIR (build), BENCH_SKIP_BUILD, BENCH_SERVER_CPU (0),
# BENCH_LOADGEN_CPU (1). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DURATION=${BENCH_DURATION:-3} BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_REPEAT=${BENCH_REPEAT:-0} BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
export BENCH_DURATION BENCH_WARMUP BENCH_REPEAT BENCH_QUIET_WAIT
SIZE=${BENCH_SIZE:-32}
ECHO_CONNS=${BENCH_TLS_ECHO_CONNS:-100}
RECEIVERS=${BENCH_TLS_FANOUT_RECEIVERS:-200}
CONNECT_SLOTS=${BENCH_TLS_CONNECT_SLOTS:-20}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-tls
bench_build
[ "$HERALD_OK" = 1 ] || { log "herald unavailable: $HERALD_WHY"; exit 1; }

# ---- a certificate for 127.0.0.1 (the generator does not verify it; Node and Herald load it) ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null

# launch NAME: herald-plain, herald-tls, node-ws-plain, node-ws-tls, node-sio-plain, node-sio-tls.
# Sets SRV_PID and SRV_PORT.
launch() {
  local tls_env=()
  SRV_PORT=$(free_port)
  case $1 in *-tls) tls_env=(env BENCH_TLS_CERT="$WORK/cert.pem" BENCH_TLS_KEY="$WORK/key.pem") ;; esac
  case $1 in
    herald-*)
      local tls_args=()
      [ "$1" = herald-tls ] && tls_args=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" --tls-max-handshakes-per-shard 10000)
      mkdir -p "$WORK/$1-data"
      start_server "$1" "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$SRV_PORT" --shards 1 --echo-endpoint \
        --test-handlers --recovery-window 0 --eio-handshake-rate 1000000 --eio-handshake-burst 1000000 \
        --log-level warn --data-dir "$WORK/$1-data" --shutdown-grace 1000 "${tls_args[@]}" ;;
    node-ws-*) start_server "$1" "${tls_env[@]}" node bench/ws-echo-server.js "$SRV_PORT" ;;
    node-sio-*) start_server "$1" "${tls_env[@]}" node bench/sio-server.js "$SRV_PORT" ;;
  esac
  wait_port "$SRV_PORT" "$SRV_PID" || { log "$1 did not start:"; tail -n 5 "$WORK/$1.log" >&2; return 1; }
}

declare -A R
# measure SERVER TRANSPORT KIND GENERATOR-ARGS...: one run; R[SERVER-TRANSPORT,KIND] = rate,
# R[...,KIND-cpu] = server CPU µs per item.
measure() {
  local key="$1-$2" kind=$3 tls=()
  shift 3
  [ "${key##*-}" = tls ] && tls=(--tls)
  run_gen "$key" "$kind" "$@" --port "$SRV_PORT" "${tls[@]}"
  R[$key,$kind]=$(jget "$GEN_JSON" msgs_per_s)
  R[$key,$kind-cpu]=$(jget "$GEN_JSON" server_cpu_us_per_msg)
  R[$key,$kind-err]=$(jget "$GEN_JSON" errors)
}

for transport in plain tls; do
  launch "herald-$transport"
  measure herald "$transport" echo echo --connections "$ECHO_CONNS" --size "$SIZE"
  measure herald "$transport" fanout sio-fanout --connections "$RECEIVERS" --window 8 --size "$SIZE"
  measure herald "$transport" connect sio-connect --connections "$CONNECT_SLOTS"
  stop_server "$SRV_PID"
  launch "node-ws-$transport"
  measure node "$transport" echo echo --connections "$ECHO_CONNS" --size "$SIZE"
  stop_server "$SRV_PID"
  launch "node-sio-$transport"
  measure node "$transport" fanout sio-fanout --connections "$RECEIVERS" --window 8 --size "$SIZE"
  measure node "$transport" connect sio-connect --connections "$CONNECT_SLOTS"
  stop_server "$SRV_PID"
done

# ---- report --------------------------------------------------------------------------------
mkdir -p bench/results
OUT="bench/results/tls-$(date -u +%Y%m%d-%H%M%S).md"
{
  echo "### TLS vs plain, Herald vs Node ($(date -u +%F), ${BENCH_WARMUP}+${BENCH_DURATION} s per run, one shard / one Node process on one core)"
  echo
  echo "| | Herald plain | Herald TLS | Node plain | Node TLS |"
  echo "|---|---|---|---|---|"
  row() { # LABEL KEY [FORMAT]
    printf '| %s |' "$1"
    for s in herald-plain herald-tls node-plain node-tls; do printf ' %s |' "$(fmt "$(val "$s" "$2")" "${3:-int}")"; done
    echo
  }
  fmt() { if [ "$2" = int ]; then fmt_int "$1"; else echo "$1"; fi; }
  row "echo: messages/s ($ECHO_CONNS conns, ${SIZE} B)" echo
  row "echo: server CPU µs per echo" echo-cpu us
  row "fan-out: deliveries/s ($RECEIVERS sockets)" fanout
  row "fan-out: server CPU µs per delivery" fanout-cpu us
  row "connect: handshakes/s ($CONNECT_SLOTS slots; TCP+TLS+WS+CONNECT)" connect
  row "connect: server CPU µs per connection" connect-cpu us
  printf '| errors (echo / fan-out / connect) |'
  for s in herald-plain herald-tls node-plain node-tls; do printf ' %s / %s / %s |' "$(val "$s" echo-err)" "$(val "$s" fanout-err)" "$(val "$s" connect-err)"; done
  echo
  echo
  echo "- $(machine_line); a shared machine (other jobs running): figures are indicative, ratios more than absolutes"
  echo "- $(commit_line)"
  echo "- TLS: ECDSA P-256 certificate, TLS 1.3 (the generator's default), full handshakes (no resumption), certificate not verified by the generator"
} | tee "$OUT"
log "written to $OUT"
