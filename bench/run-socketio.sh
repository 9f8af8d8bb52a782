#!/usr/bin/env bash
# Side-by-side Socket.IO benchmark: Herald (`--test-handlers --recovery-window 0`) against the
# Node reference, plain socket.io 4.7.2 (bench/sio-server.js), driven by the same generator
# (herald-loadgen, raw Engine.IO v4 / Socket.IO v5 over WebSocket). Herald runs once per shard
# count of `--shards LIST` (BENCH_SHARDS, "1 2"), side by side. Node and a one-shard Herald run
# pinned to one core, the generator to the other; a Herald with more shards may use every core
# (BENCH_MULTI_SERVER_CPUS), the generator's included. Figures: (a) fan-out to 1,000 receivers,
# (a') the same at a fixed publish rate (Herald only), (b) emit with ack at 100 connections, (c)
# RSS per idle connection at 10,000 (fresh server), (d) new connections per second. Prints a
# markdown table and writes it to bench/results/socketio-<date>.md. See bench/README.md.
#
# Usage: bench/run-socketio.sh [--shards LIST]
#
# Environment (besides those of bench/lib.sh: BENCH_DURATION, BENCH_WARMUP,
# BENCH_IDLE_CONNECTIONS, BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_SERVER_CPU,
# BENCH_LOADGEN_CPU, BENCH_QUIET_WAIT, BENCH_REPEAT): BENCH_SIZE (payload characters, 32),
# BENCH_FANOUT_RECEIVERS (1000), BENCH_WINDOWS (fan-out runs, one per number of broadcasts in
# flight, "1 16 64"), BENCH_ACK_CONNECTIONS
# (100), BENCH_CONNECT_SLOTS (connections churning at once, 100), BENCH_SERVERS ("node herald"),
# BENCH_FANOUT_RATE (broadcasts/s of the fixed-rate fan-out (a'), 500; 0 skips it),
# BENCH_SHARDS ("1 2"), BENCH_MULTI_SERVER_CPUS (every CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
RECEIVERS=${BENCH_FANOUT_RECEIVERS:-1000}
WINDOWS=${BENCH_WINDOWS:-"1 16 64"}
ACK_CONNS=${BENCH_ACK_CONNECTIONS:-100}
CONNECT_SLOTS=${BENCH_CONNECT_SLOTS:-100}
SERVERS=${BENCH_SERVERS:-"node herald"}
FANOUT_RATE=${BENCH_FANOUT_RATE:-500}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-socketio
bench_shards "1 2" "$@"
HERALDS=""
for n in $SHARDS; do HERALDS="$HERALDS herald$n"; done
HERALDS=${HERALDS# }
H1=${HERALDS%% *} # the first shard count: compared with Node, and the base of the shard ratios

bench_build

# probe PORT: 0 when a Socket.IO emit with ack to "echo" comes back.
probe() {
  local out
  out=$("$LOADGEN" sio-ack --port "$1" --connections 1 --warmup 0 --duration 0.5 --quiet 2>/dev/null | tail -n 1) || return 1
  [ "$(jget "$out" errors)" = 0 ] && [ -n "$(jget "$out" messages)" ] && [ "$(jget "$out" messages)" != 0 ]
}

# launch NAME: starts server NAME (node, or heraldN: Herald with N shards) on a free port; sets
# SRV_PID, SRV_PORT, CUR; 1 if unusable.
launch() {
  SRV_PORT=$(free_port)
  CUR=$1
  case $1 in
    node) SRV_CPUS=$SERVER_CPU start_server node node bench/sio-server.js "$SRV_PORT" ;;
    herald*)
      mkdir -p "$WORK/$1-data"
      SRV_CPUS=$(server_cpus "${1#herald}") start_server "$1" "$BUILD_DIR/herald" serve --host 127.0.0.1 \
        --port "$SRV_PORT" --shards "${1#herald}" --test-handlers \
        $([ "${LAUNCH_RECOVERY:-0}" = 1 ] || echo --recovery-window 0) --eio-handshake-rate 0 --max-connections $((IDLE_CONNS + 1000)) --max-eio-sessions $((IDLE_CONNS + 1000)) --log-level warn \
        --data-dir "$WORK/$1-data" --shutdown-grace 1000 --demo-users false ;;
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

# run_fanout_rate NAME: fan-out at FANOUT_RATE broadcasts/s (window 16 as a bound), so that
# servers with different shard counts get the same load; figures under R[NAME,fanrate_*].
run_fanout_rate() {
  local name=$1 j
  run_gen "$name" fanout-rate sio-fanout --port "$SRV_PORT" --connections "$RECEIVERS" --window 16 \
    --rate "$FANOUT_RATE" --size "$SIZE"
  keep "$name" fanrate
  j=$GEN_JSON
  R[$name,fanrate_check]="$(jget "$j" deliveries_total) of $(jget "$j" deliveries_expected) copies, drained $(jget "$j" drained)"
  R[$name,fanrate_server]="$(cnt_delta frames_out) frames out (gen: $(jget "$j" frames_in) in)"
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
  if [ "$name" != node ] && gt "$FANOUT_RATE" 0; then run_fanout_rate "$name"; fi
  run_ack "$name"
  run_connect "$name"
  stop_server "$SRV_PID"
  launch "$name" || return 1
  record_idle "$name" sio-idle
  stop_server "$SRV_PID"
  if [ "$name" != node ]; then # Herald's default: connection state recovery on
    LAUNCH_RECOVERY=1 launch "$name" || return 1
    record_idle "$name-rec" sio-idle
    R[$name,bytes_idle_rec]=${R[$name-rec,bytes_idle]:-}
    stop_server "$SRV_PID"
  fi
}

# ---- runs --------------------------------------------------------------------------------
# The loopback floor at the fan-out's socket count, K frames per write for each K of the fan-out
# runs (with K broadcasts in flight a recipient's write carries at most K frames).
if [ "${BENCH_FLOOR:-1}" = 1 ]; then
  for k in $WINDOWS; do run_floor $((RECEIVERS + 1)) "$k"; done
fi
for s in $SERVERS; do
  if [ "$s" = node ]; then
    bench node || { log "the Node reference server failed"; exit 1; }
    continue
  fi
  for h in $HERALDS; do
    [ "$HERALD_OK" = 1 ] || break
    if ! bench "$h"; then
      HERALD_OK=0
      HERALD_WHY="it does not serve Socket.IO on 127.0.0.1:PORT/socket.io/ ($h)"
    fi
  done
done
[ "$HERALD_OK" = 1 ] || log "herald unavailable: $HERALD_WHY; Node figures only"

# ---- report ------------------------------------------------------------------------------
# mark NAME KEY VALUE: VALUE, flagged ⁽ᵍ⁾ when the generator was saturated during that run.
mark() { if gt "${R[$1,${2}_gen]:-}" 90; then echo "$3 ⁽ᵍ⁾"; else echo "$3"; fi; }
# target LABEL KEY OP LIMIT: one row of the targets table (OP: ge or le, on the herald/node ratio,
# Herald at the first shard count).
target() {
  local r verdict
  r=$(ratio_of "$H1" node "$2")
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

# Columns: Herald at each shard count, the ratio of each further count to the first, Node and
# herald/node (first shard count), as far as they were measured.
WITH_NODE=0
case " $SERVERS " in *" node "*) WITH_NODE=1 ;; esac
WITH_HERALD=0
case " $SERVERS " in *" herald "*) WITH_HERALD=1 ;; esac
shard_label() { if [ "$1" = 1 ]; then echo "1 shard"; else echo "$1 shards"; fi; }
header() {
  local h="| metric" l="|---" n
  if [ "$WITH_HERALD" = 1 ]; then
    for n in $SHARDS; do h="$h | herald $(shard_label "$n")"; l="$l|---:"; done
    for n in $SHARDS; do
      [ "herald$n" = "$H1" ] && continue
      h="$h | ${n}/${H1#herald} shards"; l="$l|---:"
    done
  fi
  if [ "$WITH_NODE" = 1 ]; then h="$h | node"; l="$l|---:"; fi
  if [ "$WITH_NODE" = 1 ] && [ "$WITH_HERALD" = 1 ]; then h="$h | herald ($(shard_label "${H1#herald}"))/node"; l="$l|---:"; fi
  echo "$h |"
  echo "$l|"
}
# row LABEL KEY [RUN]: one table row of R[*,KEY]; RUN (the run's key prefix) marks rates ⁽ᵍ⁾;
# ROW_INT=1 prints whole numbers.
row() {
  local label=$1 key=$2 run=${3:-} line n v
  fmtv() {
    local v
    v=$(val "$1" "$key")
    [ "${ROW_INT:-0}" = 1 ] && v=$(fmt_int "$v")
    if [ -n "$run" ]; then mark "$1" "$run" "$v"; else echo "$v"; fi
  }
  line="| $label"
  if [ "$WITH_HERALD" = 1 ]; then
    for n in $SHARDS; do line="$line | $(fmtv "herald$n")"; done
    for n in $SHARDS; do
      [ "herald$n" = "$H1" ] && continue
      line="$line | $(ratio_of "herald$n" "$H1" "$key")"
    done
  fi
  [ "$WITH_NODE" = 1 ] && line="$line | $(fmtv node)"
  [ "$WITH_NODE" = 1 ] && [ "$WITH_HERALD" = 1 ] && line="$line | $(ratio_of "$H1" node "$key")"
  echo "$line |"
}
# check LABEL CMD...: one row of the checks table, CMD NAME run for every measured server.
check() {
  local label=$1 line n
  shift
  line="| $label"
  if [ "$WITH_HERALD" = 1 ]; then for n in $SHARDS; do line="$line | $("$@" "herald$n")"; done; fi
  [ "$WITH_NODE" = 1 ] && line="$line | $("$@" node)"
  echo "$line |"
}
check_header() {
  local h="| check" l="|---" n
  if [ "$WITH_HERALD" = 1 ]; then for n in $SHARDS; do h="$h | herald $(shard_label "$n")"; l="$l|---"; done; fi
  [ "$WITH_NODE" = 1 ] && { h="$h | node"; l="$l|---"; }
  echo "$h |"
  echo "$l|"
}
c_run() { echo "$(clean "$2" "$1"), $(val "$2" "${1}_attempts") attempt(s)"; }
c_pct() { echo "$(val "$2" "${1}_srvpct") / $(val "$2" "${1}_gen")"; }
c_val() { val "$2" "$1"; }
c_idle() { echo "$(val "$1" idle_open) / $(val "$1" idle_err)"; }
c_rss() { echo "$(val "$1" rss_before) / $(val "$1" rss_after)"; }
MULTI=0
for n in $SHARDS; do [ "$n" -gt 1 ] && MULTI=1; done

DATE=$(date +%Y-%m-%d-%H%M%S)
COMMIT=$(commit_line)
mkdir -p bench/results
OUT="bench/results/socketio-$DATE.md"
{
  echo "# Socket.IO: Herald vs Node socket.io 4.7.2 ($DATE)"
  echo
  echo "- commit $COMMIT; $(machine_line)"
  echo "- node and a 1-shard herald pinned to CPU $SERVER_CPU (\`taskset -c $SERVER_CPU\`: every thread of the process), generator (herald-loadgen) to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run"
  if [ "$MULTI" = 1 ]; then
    echo "- herald with more than one shard: \`taskset -c $MULTI_CPUS\` (\`--shards N\`, one event loop per thread), the generator still on CPU $LOADGEN_CPU: on a machine with $(nproc) CPUs the extra shards time-slice with the generator (and the loopback TCP work it causes), so deliveries/s and acks/s at N shards vs 1 show what the extra shards gain from the generator's idle time, not how Herald scales on free cores. Server CPU µs per item (from /proc, every thread) is the figure that compares the shard counts"
  fi
  echo "- herald: \`serve --shards N --test-handlers --recovery-window 0\` (no offset argument on broadcasts, like Node without connectionStateRecovery); node: \`bench/sio-server.js\` (perMessageDeflate off, recovery off)"
  echo "- WebSocket transport only (\`/socket.io/?EIO=4&transport=websocket\`), payload a $SIZE-character string"
  echo "- (a) fan-out: $RECEIVERS receivers + 1 publisher emitting \`broadcast\`, K broadcasts in flight (one leaves the window when the publisher gets its own \`msg\`); $((RECEIVERS + 1)) copies per broadcast, all counted. K=1: one broadcast at a time, so every copy is its own write; larger K: broadcasts queue at the server, which may write several to a socket at once"
  gt "$FANOUT_RATE" 0 && echo "- (a') fixed-rate fan-out (herald only): as (a) with the publisher capped at $FANOUT_RATE broadcasts/s (\`--rate $FANOUT_RATE --window 16\`), i.e. $((FANOUT_RATE * (RECEIVERS + 1))) deliveries/s offered: the same load for every shard count, so CPU per delivery is compared at equal batching, and the server's CPU % shows the headroom"
  echo "- (b) emit with ack: $ACK_CONNS connections, each \`42<id>[\"echo\",payload]\` then wait for \`43<id>[payload]\`"
  echo "- (c) idle: $IDLE_CONNS Socket.IO sockets on a freshly started server; (RSS open - RSS before) / sockets open"
  echo "- (c') the same on a Herald started without \`--recovery-window 0\` (connection state recovery on, its default): the test handlers emit \`auth\` to each socket on connect, and recovery keeps that packet for the window"
  echo "- (d) connect churn: $CONNECT_SLOTS slots, each TCP + WebSocket + Engine.IO open + CONNECT, then \`41\` and close, again"
  [ "$HERALD_OK" = 1 ] || echo "- **herald unavailable**: $HERALD_WHY"
  echo
  header
  for k in $WINDOWS; do
    ROW_INT=1 row "(a) fan-out deliveries/s @$RECEIVERS receivers, K=$k" "fan${k}_rate" "fan$k"
    row "(a) server CPU µs/delivery, K=$k" "fan${k}_cpu"
    row "(a) p99 delivery latency µs, K=$k" "fan${k}_p99"
    row "(a) server CPU % of a core, K=$k" "fan${k}_srvpct"
  done
  if gt "$FANOUT_RATE" 0; then
    ROW_INT=1 row "(a') deliveries/s at $FANOUT_RATE broadcasts/s" fanrate_rate fanrate
    row "(a') server CPU µs/delivery at $FANOUT_RATE broadcasts/s" fanrate_cpu
    row "(a') server CPU % of a core at $FANOUT_RATE broadcasts/s" fanrate_srvpct
    row "(a') p99 delivery latency µs at $FANOUT_RATE broadcasts/s" fanrate_p99
  fi
  if [ -n "${R[floor,b1_us_write]:-}" ]; then
    echo
    echo "Against the loopback floor (\`herald-floor --sockets $((RECEIVERS + 1))\`: ${BENCH_FLOOR_SIZE:-66}-byte frames written round-robin, writer on CPU $SERVER_CPU, reader on CPU $LOADGEN_CPU; the writer's CPU per frame is what a delivery costs a server that only writes it): 1 frame per write ${R[floor,b1_us_frame]} µs (reader ${R[floor,b1_reader_us_frame]} µs)$(for k in $WINDOWS; do [ "$k" -gt 1 ] && printf ', %s frames per write %s µs per frame' "$k" "${R[floor,b${k}_us_frame]:-n/a}"; done)."
    echo
    line="| server CPU per delivery / loopback floor" sep="|---"
    if [ "$WITH_HERALD" = 1 ]; then for n in $SHARDS; do line="$line | herald $(shard_label "$n")"; sep="$sep|---:"; done; fi
    [ "$WITH_NODE" = 1 ] && { line="$line | node"; sep="$sep|---:"; }
    echo "$line |"
    echo "$sep|"
    for k in $WINDOWS; do
      b=$k
      line="| (a) server CPU per delivery / floor ($b frame(s) per write), K=$k"
      if [ "$WITH_HERALD" = 1 ]; then for n in $SHARDS; do line="$line | $(floor_ratio "${R[herald$n,fan${k}_cpu]:-}" "$b")"; done; fi
      [ "$WITH_NODE" = 1 ] && line="$line | $(floor_ratio "${R[node,fan${k}_cpu]:-}" "$b")"
      echo "$line |"
    done
    echo
    header
  fi
  ROW_INT=1 row "(b) acks/s @$ACK_CONNS connections" ack_rate ack
  row "(b) p99 emit-to-ack latency µs" ack_p99
  row "(b) server CPU µs/ack" ack_cpu
  row "(b) server CPU % of a core" ack_srvpct
  row "(c) bytes/idle connection @$IDLE_CONNS" bytes_idle
  row "(c') bytes/idle connection @$IDLE_CONNS, herald with recovery on (its default)" bytes_idle_rec
  ROW_INT=1 row "(d) new connections/s ($CONNECT_SLOTS slots)" conn_rate conn
  row "(d) server CPU µs/connection" conn_cpu
  row "(d) p99 connect-to-CONNECT-ack µs" conn_p99
  echo
  for key in "${!R[@]}"; do
    if [[ $key == *_gen ]] && gt "${R[$key]}" 90; then
      echo "⁽ᵍ⁾ the generator used over 90% of its core: the rate is (also) its limit; CPU µs per item still holds."
      echo
      break
    fi
  done
  if [ "$WITH_NODE" = 1 ] && [ "$WITH_HERALD" = 1 ]; then
    echo "| target (herald $(shard_label "${H1#herald}")) | herald/node | |"
    echo "|---|---:|---|"
    for k in $WINDOWS; do target "fan-out deliveries/s ≥ 10× Node, K=$k" "fan${k}_rate" ge 10; done
    target "server CPU per ack ≤ 1/4 of Node's" ack_cpu le 0.25
    target "memory per connection ≤ 1/10 of Node's" bytes_idle le 0.10
    echo
  fi
  if [ "$MULTI" = 1 ] && [ "$WITH_HERALD" = 1 ]; then
    echo "| target: server CPU per item at N shards ≤ 1.10 × at ${H1#herald} | N | ratio | |"
    echo "|---|---:|---:|---|"
    for n in $SHARDS; do
      [ "herald$n" = "$H1" ] && continue
      for key in $(printf 'fan%s_cpu ' $WINDOWS) $(gt "$FANOUT_RATE" 0 && echo fanrate_cpu) ack_cpu; do
        r=$(ratio_of "herald$n" "$H1" "$key")
        if [ "$r" = n/a ]; then v="not measured"
        elif awk -v r="$r" 'BEGIN { exit !(r <= 1.10) }'; then v="**met**"
        else v="**not met**"; fi
        echo "| ${key%_cpu} | $n | $r | $v |"
      done
    done
    echo
  fi
  echo "Checks (should be: clean, errors 0, every copy delivered, server counters matching the generator's;"
  echo "Herald's frame counter leaves out the close frame it returns to a client's close, so its frames out"
  echo "= generator frames in − connections; in churn, accepted − connects = attempts cut short at the end):"
  echo
  check_header
  for k in $(printf 'fan%s ' $WINDOWS) $(gt "$FANOUT_RATE" 0 && echo fanrate) ack conn; do
    check "$k: run" c_run "$k"
    check "$k: server / generator CPU % of a core" c_pct "$k"
  done
  for k in $(printf 'fan%s ' $WINDOWS) $(gt "$FANOUT_RATE" 0 && echo fanrate); do
    check "$k: copies" c_val "${k}_check"
    check "$k: server counters" c_val "${k}_server"
  done
  check "ack: server counters" c_val ack_server
  check "ack: CPU µs/ack, whole run incl. connect/close" c_val ack_cpurun
  check "conn: server counters" c_val conn_server
  check "idle sockets open / errors" c_idle
  check "RSS before / with idle sockets, kB" c_rss
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
