#!/usr/bin/env bash
# Side-by-side WebSocket echo benchmark: Herald's /ws/echo against the Node `ws` reference
# (bench/ws-echo-server.js), driven by the same generator (herald-loadgen). Each server runs
# pinned to one core, the generator to the other. Prints a markdown table and writes it to
# bench/results/echo-<date>.md. See bench/README.md for what each figure means.
#
# Environment: BENCH_DURATION (s measured, 10), BENCH_WARMUP (s, 2), BENCH_SIZE (bytes, 32),
# BENCH_CONNECTIONS ("100 1000"), BENCH_IDLE_CONNECTIONS (10000), BENCH_BUILD_DIR (build),
# BENCH_SERVER_CPU (0), BENCH_LOADGEN_CPU (1), BENCH_QUIET_WAIT (s to wait for an idle machine, 120),
# BENCH_SKIP_BUILD (1: use the binaries already in BENCH_BUILD_DIR), BENCH_REPEAT (extra attempts
# of an echo run disturbed by other processes, 2).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-"100 1000"}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-echo # DURATION, WARMUP, IDLE_CONNS, BUILD_DIR, CPUs, QUIET_WAIT, REPEAT, WORK

# ---- build -------------------------------------------------------------------------------
bench_build

# ---- helpers -----------------------------------------------------------------------------
# probe PORT: 0 when ws://127.0.0.1:PORT/ws/echo echoes.
probe() {
  local out
  out=$("$LOADGEN" echo --port "$1" --connections 1 --warmup 0 --duration 0.5 --quiet 2>/dev/null | tail -n 1) || return 1
  [ "$(jget "$out" errors)" = 0 ] && [ "$(jget "$out" messages)" != 0 ] && [ -n "$(jget "$out" messages)" ]
}

# launch NAME: starts server NAME on a free port; sets SRV_PID and SRV_PORT; 1 if unusable.
launch() {
  SRV_PORT=$(free_port)
  case $1 in
    node) start_server node node bench/ws-echo-server.js "$SRV_PORT" ;;
    herald)
      mkdir -p "$WORK/herald-data"
      start_server herald "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$SRV_PORT" --echo-endpoint \
        --max-connections $((IDLE_CONNS + 1000)) --log-level warn --data-dir "$WORK/herald-data" \
        --shutdown-grace 1000 ;;
  esac
  if ! wait_port "$SRV_PORT" "$SRV_PID"; then
    log "$1 did not start listening on $SRV_PORT:"; tail -n 5 "$WORK/$1.log" >&2; return 1
  fi
  if ! probe "$SRV_PORT"; then
    log "$1 does not echo on ws://127.0.0.1:$SRV_PORT/ws/echo"; return 1
  fi
}

declare -A R # R[server,key] = value

# run_echo NAME CONNS: one echo run against the running server, repeated (up to REPEAT more
# times) while other processes took more than 10% of a core during it; the least disturbed counts.
run_echo() {
  local name=$1 n=$2 json
  run_gen "$name" "echo-$n" echo --port "$SRV_PORT" --connections "$n" --size "$SIZE"
  json=$GEN_JSON
  R[$name,rate$n]=$(jget "$json" msgs_per_s)
  R[$name,p99$n]=$(jget "$json" p99_us)
  R[$name,cpu$n]=$(jget "$json" server_cpu_us_per_msg)
  R[$name,err$n]=$(jget "$json" errors)
  R[$name,other$n]=$(jget "$json" other_cpu_pct)
  R[$name,gen$n]=$(jget "$json" loadgen_cpu_pct)
  # Cross-check over the whole run (connects, warm-up and closes included).
  R[$name,cpurun$n]=$(per_msg_run "$GEN_TICKS" "$(jget "$json" messages_total)")
}

# bench NAME: every run against one server.
bench() {
  local name=$1 n
  launch "$name" || return 1
  for n in $CONNECTIONS; do run_echo "$name" "$n"; done
  stop_server "$SRV_PID"
  # The idle figure comes from a fresh process: memory freed by the echo runs (heap, allocator
  # caches) would otherwise absorb new connections and hide their cost.
  launch "$name" || return 1
  record_idle "$name" idle
  stop_server "$SRV_PID"
}

# ---- runs --------------------------------------------------------------------------------
bench node || { log "the Node reference server failed"; exit 1; }
if [ "$HERALD_OK" = 1 ]; then
  if ! bench herald; then HERALD_OK=0; HERALD_WHY="it does not serve ws://127.0.0.1:PORT/ws/echo"; fi
fi
[ "$HERALD_OK" = 1 ] || log "herald unavailable: $HERALD_WHY; Node figures only"

# ---- report ------------------------------------------------------------------------------
# rate NAME CONNS: msgs/s, marked when the generator was saturated (the figure is then its limit).
rate() {
  local r
  r=$(fmt_int "$(val "$1" "rate$2")")
  saturated "$1" "$2" && r="$r ⁽ᵍ⁾"
  echo "$r"
}
saturated() { awk -v g="${R[$1,gen$2]:-0}" 'BEGIN { exit !(g > 90) }'; }
SATURATED=0
for name in herald node; do
  for n in $CONNECTIONS; do saturated "$name" "$n" && SATURATED=1; done
done

DATE=$(date +%Y-%m-%d-%H%M%S)
COMMIT=$(commit_line)
mkdir -p bench/results
OUT="bench/results/echo-$DATE.md"
{
  echo "# WebSocket echo: Herald vs Node ws ($DATE)"
  echo
  echo "- commit $COMMIT; $(machine_line)"
  echo "- server pinned to CPU $SERVER_CPU, generator (herald-loadgen) to CPU $LOADGEN_CPU"
  echo "- echo: $SIZE-byte text messages, 1 in flight per connection, ${WARMUP} s warm-up + ${DURATION} s measured"
  echo "- idle: $IDLE_CONNS connections on a freshly started server; (RSS open - RSS before) / connections open"
  [ "$HERALD_OK" = 1 ] || echo "- **herald unavailable**: $HERALD_WHY"
  echo
  echo "| metric | herald | node ws | herald/node |"
  echo "|---|---:|---:|---:|"
  for n in $CONNECTIONS; do
    echo "| msgs/s @$n (higher is better) | $(rate herald "$n") | $(rate node "$n") | $(ratio rate$n) |"
  done
  for n in $CONNECTIONS; do
    echo "| server CPU µs/echo @$n | $(val herald cpu$n) | $(val node cpu$n) | $(ratio cpu$n) |"
  done
  for n in $CONNECTIONS; do
    echo "| p99 latency µs @$n | $(val herald p99$n) | $(val node p99$n) | $(ratio p99$n) |"
  done
  echo "| bytes/idle connection @$IDLE_CONNS | $(val herald bytes_idle) | $(val node bytes_idle) | $(ratio bytes_idle) |"
  echo
  [ "$SATURATED" = 0 ] || { echo "⁽ᵍ⁾ the generator used over 90% of its core: this is its limit, the server could do more (CPU µs/echo still holds)."; echo; }
  echo "Checks (should be: errors 0, every idle connection open, other load near 0, generator below 90%):"
  echo
  echo "| check | herald | node ws |"
  echo "|---|---:|---:|"
  for n in $CONNECTIONS; do
    echo "| errors @$n | $(val herald err$n) | $(val node err$n) |"
    echo "| generator CPU % @$n | $(val herald gen$n) | $(val node gen$n) |"
    echo "| other processes, % of a core @$n | $(val herald other$n) | $(val node other$n) |"
    echo "| CPU µs/echo @$n, whole run incl. connect/close | $(val herald cpurun$n) | $(val node cpurun$n) |"
  done
  echo "| idle connections open | $(val herald idle_open) | $(val node idle_open) |"
  echo "| idle errors | $(val herald idle_err) | $(val node idle_err) |"
  echo "| RSS before / with idle connections, kB | $(val herald rss_before) / $(val herald rss_after) | $(val node rss_before) / $(val node rss_after) |"
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
