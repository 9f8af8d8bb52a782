#!/usr/bin/env bash
# Side-by-side Socket.IO benchmark: Herald (`--test-handlers --recovery-window 0`) against the
# Node reference, plain socket.io 4.7.2 (bench/sio-server.js), driven by the same generator
# (herald-loadgen, raw Engine.IO v4 / Socket.IO v5 over WebSocket). Each server runs pinned to
# one core, the generator to the other. Figures: (a) fan-out to 1,000 receivers, (b) emit with
# ack at 100 connections, (c) RSS per idle connection at 10,000 (fresh server), (d) new
# connections per second. Prints a markdown table and writes it to
# bench/results/socketio-<date>.md. See bench/README.md for what each figure means.
#
# Environment (besides those of bench/lib.sh: BENCH_DURATION, BENCH_WARMUP,
# BENCH_IDLE_CONNECTIONS, BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_SERVER_CPU,
# BENCH_LOADGEN_CPU, BENCH_QUIET_WAIT, BENCH_REPEAT): BENCH_SIZE (payload characters, 32),
# BENCH_FANOUT_RECEIVERS (1000), BENCH_WINDOWS (fan-out runs, one per number of broadcasts in
# flight, "1 16"), BENCH_ACK_CONNECTIONS
# (100), BENCH_CONNECT_SLOTS (connections churning at once, 100), BENCH_SERVERS ("node herald").
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
RECEIVERS=${BENCH_FANOUT_RECEIVERS:-1000}
WINDOWS=${BENCH_WINDOWS:-"1 16"}
ACK_CONNS=${BENCH_ACK_CONNECTIONS:-100}
CONNECT_SLOTS=${BENCH_CONNECT_SLOTS:-100}
SERVERS=${BENCH_SERVERS:-"node herald"}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-socketio

bench_build

# probe PORT: 0 when a Socket.IO emit with ack to "echo" comes back.
probe() {
  local out
  out=$("$LOADGEN" sio-ack --port "$1" --connections 1 --warmup 0 --duration 0.5 --quiet 2>/dev/null | tail -n 1) || return 1
  [ "$(jget "$out" errors)" = 0 ] && [ -n "$(jget "$out" messages)" ] && [ "$(jget "$out" messages)" != 0 ]
}

# launch NAME: starts server NAME on a free port; sets SRV_PID, SRV_PORT, CUR; 1 if unusable.
launch() {
  SRV_PORT=$(free_port)
  CUR=$1
  case $1 in
    node) start_server node node bench/sio-server.js "$SRV_PORT" ;;
    herald)
      mkdir -p "$WORK/herald-data"
      start_server herald "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$SRV_PORT" --test-handlers \
        --recovery-window 0 --max-connections $((IDLE_CONNS + 1000)) --log-level warn \
        --data-dir "$WORK/herald-data" --shutdown-grace 1000 ;;
  esac
  if ! wait_port "$SRV_PORT" "$SRV_PID"; then
    log "$1 did not start listening on $SRV_PORT:"; tail -n 5 "$WORK/$1.log" >&2; return 1
  fi
  if ! probe "$SRV_PORT"; then
    log "$1 does not answer a Socket.IO emit with ack on 127.0.0.1:$SRV_PORT"; return 1
  fi
}

# The server's own counters, for the cross-checks: Node's GET /stats; Herald's /metrics
# (WebSocket frames sent, TCP connections accepted). One line "k=v k=v ...".
server_counters() {
  if [ "$CUR" = node ]; then
    curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/stats" | tr -d '{}"' | tr ',:' ' =' || true
  else
    curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
      /^herald_ws_frames_total\{direction="out"\}/ { printf "frames_out=%s ", $2 }
      /^herald_connections_accepted_total / { printf "accepted=%s ", $2 }' || true
  fi
}
# cnt_delta KEY: the counter's growth over the kept attempt ("" if unknown).
cnt_delta() {
  local a b
  a=$(tr ' ' '\n' <<<"$GEN_CNT_BEFORE" | sed -n "s/^$1=//p")
  b=$(tr ' ' '\n' <<<"$GEN_CNT_AFTER" | sed -n "s/^$1=//p")
  [ -n "$a" ] && [ -n "$b" ] && echo $((b - a)) || echo ""
}

declare -A R # R[server,key] = value

# keep NAME KEY: the run's usual fields under R[NAME,KEY*].
keep() {
  local name=$1 k=$2 j=$GEN_JSON
  R[$name,${k}_rate]=$(jget "$j" msgs_per_s)
  R[$name,${k}_p50]=$(jget "$j" p50_us)
  R[$name,${k}_p99]=$(jget "$j" p99_us)
  R[$name,${k}_cpu]=$(jget "$j" server_cpu_us_per_msg)
  R[$name,${k}_srvpct]=$(awk -v s="$(jget "$j" server_cpu_s)" -v d="$(jget "$j" duration_s)" \
    'BEGIN { if (d > 0 && s != "") printf "%.0f", 100 * s / d }')
  R[$name,${k}_err]=$(jget "$j" errors)
  R[$name,${k}_other]=$(jget "$j" other_cpu_pct)
  R[$name,${k}_gen]=$(jget "$j" loadgen_cpu_pct)
  R[$name,${k}_attempts]=$GEN_ATTEMPTS
  R[$name,${k}_complete]=$(jget "$j" complete)
}

# run_fanout NAME K: fan-out with K broadcasts in flight; figures under R[NAME,fanK_*].
run_fanout() {
  local name=$1 k=$2 j
  run_gen "$name" "fanout-$k" sio-fanout --port "$SRV_PORT" --connections "$RECEIVERS" --window "$k" --size "$SIZE"
  keep "$name" "fan$k"
  j=$GEN_JSON
  R[$name,fan${k}_check]="$(jget "$j" deliveries_total) of $(jget "$j" deliveries_expected) copies, drained $(jget "$j" drained)"
  if [ "$name" = node ]; then
    R[$name,fan${k}_server]="$(cnt_delta broadcasts) broadcasts (gen: $(jget "$j" broadcasts)), $(cnt_delta deliveries) deliveries (gen: $(jget "$j" deliveries_total))"
  else
    R[$name,fan${k}_server]="$(cnt_delta frames_out) frames out (gen: $(jget "$j" frames_in) in)"
  fi
}

run_ack() {
  local name=$1 j
  run_gen "$name" ack sio-ack --port "$SRV_PORT" --connections "$ACK_CONNS" --size "$SIZE"
  keep "$name" ack
  j=$GEN_JSON
  R[$name,ack_cpurun]=$(per_msg_run "$GEN_TICKS" "$(jget "$j" acks_total)")
  if [ "$name" = node ]; then
    R[$name,ack_server]="$(cnt_delta echoes) acks sent (gen: $(jget "$j" acks_total) received)"
  else
    R[$name,ack_server]="$(cnt_delta frames_out) frames out (gen: $(jget "$j" frames_in) in)"
  fi
}

run_connect() {
  local name=$1 j
  run_gen "$name" connect sio-connect --port "$SRV_PORT" --connections "$CONNECT_SLOTS"
  keep "$name" conn
  j=$GEN_JSON
  if [ "$name" = node ]; then
    R[$name,conn_server]="$(cnt_delta connects) connects (gen: $(jget "$j" connects_total))"
  else
    R[$name,conn_server]="$(cnt_delta accepted) accepted (gen: $(jget "$j" connects_total) connects)"
  fi
}

# bench NAME: every run against one server; the idle figure on a fresh process (memory freed
# by the earlier runs would otherwise absorb the new connections and hide their cost).
bench() {
  local name=$1 k
  launch "$name" || return 1
  for k in $WINDOWS; do run_fanout "$name" "$k"; done
  run_ack "$name"
  run_connect "$name"
  stop_server "$SRV_PID"
  launch "$name" || return 1
  record_idle "$name" sio-idle
  stop_server "$SRV_PID"
}

# ---- runs --------------------------------------------------------------------------------
for s in $SERVERS; do
  if [ "$s" = herald ] && [ "$HERALD_OK" != 1 ]; then continue; fi
  if ! bench "$s"; then
    if [ "$s" = node ]; then log "the Node reference server failed"; exit 1; fi
    HERALD_OK=0
    HERALD_WHY="it does not serve Socket.IO on 127.0.0.1:PORT/socket.io/"
  fi
done
[ "$HERALD_OK" = 1 ] || log "herald unavailable: $HERALD_WHY; Node figures only"

# ---- report ------------------------------------------------------------------------------
# mark NAME KEY VALUE: VALUE, flagged ⁽ᵍ⁾ when the generator was saturated during that run.
mark() { if gt "${R[$1,${2}_gen]:-}" 90; then echo "$3 ⁽ᵍ⁾"; else echo "$3"; fi; }
# target LABEL KEY OP LIMIT: one row of the targets table (OP: ge or le, on the herald/node ratio).
target() {
  local r verdict
  r=$(ratio "$2")
  if [ "$r" = n/a ]; then verdict="not measured"
  elif awk -v r="$r" -v l="$4" -v op="$3" 'BEGIN { exit !((op == "ge" && r >= l) || (op == "le" && r <= l)) }'; then
    verdict="**met**"
  else verdict="**not met**"
  fi
  echo "| $1 | $r | $verdict |"
}
# clean NAME KEY: "clean" when the run had no error and other processes stayed under 10%.
clean() {
  local e=${R[$1,${2}_err]:-} o=${R[$1,${2}_other]:-}
  if [ -z "$e" ]; then echo "n/a"
  elif [ "$e" != 0 ]; then echo "errors $e"
  elif gt "$o" 10; then echo "disturbed (other ${o}%)"
  else echo "clean (other ${o}%)"
  fi
}

DATE=$(date +%Y-%m-%d-%H%M%S)
COMMIT=$(commit_line)
mkdir -p bench/results
OUT="bench/results/socketio-$DATE.md"
{
  echo "# Socket.IO: Herald vs Node socket.io 4.7.2 ($DATE)"
  echo
  echo "- commit $COMMIT; $(machine_line)"
  echo "- server pinned to CPU $SERVER_CPU, generator (herald-loadgen) to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run"
  echo "- herald: \`serve --test-handlers --recovery-window 0\` (no offset argument on broadcasts, like Node without connectionStateRecovery); node: \`bench/sio-server.js\` (perMessageDeflate off, recovery off)"
  echo "- WebSocket transport only (\`/socket.io/?EIO=4&transport=websocket\`), payload a $SIZE-character string"
  echo "- (a) fan-out: $RECEIVERS receivers + 1 publisher emitting \`broadcast\`, K broadcasts in flight (one leaves the window when the publisher gets its own \`msg\`); $((RECEIVERS + 1)) copies per broadcast, all counted. K=1: one broadcast at a time, so every copy is its own write; larger K: broadcasts queue at the server, which may write several to a socket at once"
  echo "- (b) emit with ack: $ACK_CONNS connections, each \`42<id>[\"echo\",payload]\` then wait for \`43<id>[payload]\`"
  echo "- (c) idle: $IDLE_CONNS Socket.IO sockets on a freshly started server; (RSS open - RSS before) / sockets open"
  echo "- (d) connect churn: $CONNECT_SLOTS slots, each TCP + WebSocket + Engine.IO open + CONNECT, then \`41\` and close, again"
  [ "$HERALD_OK" = 1 ] || echo "- **herald unavailable**: $HERALD_WHY"
  echo
  echo "| metric | herald | node | herald/node |"
  echo "|---|---:|---:|---:|"
  for k in $WINDOWS; do
    echo "| (a) fan-out deliveries/s @$RECEIVERS receivers, K=$k | $(mark herald fan$k "$(fmt_int "$(val herald fan${k}_rate)")") | $(mark node fan$k "$(fmt_int "$(val node fan${k}_rate)")") | $(ratio fan${k}_rate) |"
    echo "| (a) server CPU µs/delivery, K=$k | $(val herald fan${k}_cpu) | $(val node fan${k}_cpu) | $(ratio fan${k}_cpu) |"
    echo "| (a) p99 delivery latency µs, K=$k | $(val herald fan${k}_p99) | $(val node fan${k}_p99) | $(ratio fan${k}_p99) |"
  done
  echo "| (b) acks/s @$ACK_CONNS connections | $(mark herald ack "$(fmt_int "$(val herald ack_rate)")") | $(mark node ack "$(fmt_int "$(val node ack_rate)")") | $(ratio ack_rate) |"
  echo "| (b) p99 emit-to-ack latency µs | $(val herald ack_p99) | $(val node ack_p99) | $(ratio ack_p99) |"
  echo "| (b) server CPU µs/ack | $(val herald ack_cpu) | $(val node ack_cpu) | $(ratio ack_cpu) |"
  echo "| (c) bytes/idle connection @$IDLE_CONNS | $(val herald bytes_idle) | $(val node bytes_idle) | $(ratio bytes_idle) |"
  echo "| (d) new connections/s ($CONNECT_SLOTS slots) | $(mark herald conn "$(fmt_int "$(val herald conn_rate)")") | $(mark node conn "$(fmt_int "$(val node conn_rate)")") | $(ratio conn_rate) |"
  echo "| (d) server CPU µs/connection | $(val herald conn_cpu) | $(val node conn_cpu) | $(ratio conn_cpu) |"
  echo "| (d) p99 connect-to-CONNECT-ack µs | $(val herald conn_p99) | $(val node conn_p99) | $(ratio conn_p99) |"
  echo
  for key in "${!R[@]}"; do
    if [[ $key == *_gen ]] && gt "${R[$key]}" 90; then
      echo "⁽ᵍ⁾ the generator used over 90% of its core: the rate is (also) its limit; CPU µs per item still holds."
      echo
      break
    fi
  done
  echo "| target | herald/node | |"
  echo "|---|---:|---|"
  for k in $WINDOWS; do target "fan-out deliveries/s ≥ 10× Node, K=$k" "fan${k}_rate" ge 10; done
  target "server CPU per ack ≤ 1/4 of Node's" ack_cpu le 0.25
  target "memory per connection ≤ 1/10 of Node's" bytes_idle le 0.10
  echo
  echo "Checks (should be: clean, errors 0, every copy delivered, server counters matching the generator's;"
  echo "Herald's frame counter leaves out the close frame it returns to a client's close, so its frames out"
  echo "= generator frames in − connections; in churn, accepted − connects = attempts cut short at the end):"
  echo
  echo "| check | herald | node |"
  echo "|---|---|---|"
  for k in $(printf 'fan%s ' $WINDOWS) ack conn; do
    echo "| $k: run | $(clean herald $k), $(val herald ${k}_attempts) attempt(s) | $(clean node $k), $(val node ${k}_attempts) attempt(s) |"
    echo "| $k: server / generator CPU % of a core | $(val herald ${k}_srvpct) / $(val herald ${k}_gen) | $(val node ${k}_srvpct) / $(val node ${k}_gen) |"
  done
  for k in $WINDOWS; do
    echo "| fan$k: copies | $(val herald fan${k}_check) | $(val node fan${k}_check) |"
    echo "| fan$k: server counters | $(val herald fan${k}_server) | $(val node fan${k}_server) |"
  done
  echo "| ack: server counters | $(val herald ack_server) | $(val node ack_server) |"
  echo "| ack: CPU µs/ack, whole run incl. connect/close | $(val herald ack_cpurun) | $(val node ack_cpurun) |"
  echo "| conn: server counters | $(val herald conn_server) | $(val node conn_server) |"
  echo "| idle sockets open / errors | $(val herald idle_open) / $(val herald idle_err) | $(val node idle_open) / $(val node idle_err) |"
  echo "| RSS before / with idle sockets, kB | $(val herald rss_before) / $(val herald rss_after) | $(val node rss_before) / $(val node rss_after) |"
  echo
  echo "<details><summary>generator JSON lines</summary>"
  echo
  echo '```'
  cat "$WORK/raw.jsonl"
  echo '```'
  echo "</details>"
} >"$OUT"
echo
cat "$OUT"
echo
log "written to $OUT"
