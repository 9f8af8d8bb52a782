#!/usr/bin/env bash
# Side-by-side WebSocket echo benchmark: Herald's /ws/echo against the Node `ws` reference
# (bench/ws-echo-server.js), driven by the same generator (herald-loadgen). Each server runs
# pinned to one core, the generator to the other; Herald runs once per shard count of
# `--shards LIST` (BENCH_SHARDS; default "1", the figures comparable with those before shards
# existed), a server with more than one shard on every core (BENCH_MULTI_SERVER_CPUS). Prints a
# markdown table and writes it to bench/results/echo-<date>.md. See bench/README.md.
#
# Usage: bench/run-echo.sh [--shards LIST]
#
# Environment: BENCH_DURATION (s measured, 10), BENCH_WARMUP (s, 2), BENCH_SIZE (bytes, 32),
# BENCH_CONNECTIONS ("100 1000"), BENCH_IDLE_CONNECTIONS (10000), BENCH_BUILD_DIR (build),
# BENCH_SERVER_CPU (0), BENCH_LOADGEN_CPU (1), BENCH_QUIET_WAIT (s to wait for an idle machine, 120),
# BENCH_SKIP_BUILD (1: use the binaries already in BENCH_BUILD_DIR), BENCH_REPEAT (extra attempts
# of an echo run disturbed by other processes, 2), BENCH_SHARDS ("1").
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-"100 1000"}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-echo # DURATION, WARMUP, IDLE_CONNS, BUILD_DIR, CPUs, QUIET_WAIT, REPEAT, WORK
bench_shards 1 "$@"
HERALDS=""
for n in $SHARDS; do HERALDS="$HERALDS herald$n"; done
HERALDS=${HERALDS# }
H1=${HERALDS%% *} # compared with Node

# ---- build -------------------------------------------------------------------------------
bench_build

# ---- helpers -----------------------------------------------------------------------------
# probe PORT: 0 when ws://127.0.0.1:PORT/ws/echo echoes.
probe() {
  local out
  out=$("$LOADGEN" echo --port "$1" --connections 1 --warmup 0 --duration 0.5 --quiet 2>/dev/null | tail -n 1) || return 1
  [ "$(jget "$out" errors)" = 0 ] && [ "$(jget "$out" messages)" != 0 ] && [ -n "$(jget "$out" messages)" ]
}

# launch NAME: starts server NAME (node, or heraldN: Herald with N shards) on a free port; sets
# SRV_PID and SRV_PORT; 1 if unusable.
launch() {
  SRV_PORT=$(free_port)
  case $1 in
    node) SRV_CPUS=$SERVER_CPU start_server node node bench/ws-echo-server.js "$SRV_PORT" ;;
    herald*)
      mkdir -p "$WORK/$1-data"
      SRV_CPUS=$(server_cpus "${1#herald}") start_server "$1" "$BUILD_DIR/herald" serve --host 127.0.0.1 \
        --port "$SRV_PORT" --shards "${1#herald}" --echo-endpoint \
        --max-connections $((IDLE_CONNS + 1000)) --log-level warn --data-dir "$WORK/$1-data" \
        --shutdown-grace 1000 --demo-users false ;;
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
for h in $HERALDS; do
  [ "$HERALD_OK" = 1 ] || break
  if ! bench "$h"; then HERALD_OK=0; HERALD_WHY="it does not serve ws://127.0.0.1:PORT/ws/echo ($h)"; fi
done
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
for name in $HERALDS node; do
  for n in $CONNECTIONS; do saturated "$name" "$n" && SATURATED=1; done
done

c_val() { val "$2" "$1"; }
c_rss() { echo "$(val "$1" rss_before) / $(val "$1" rss_after)"; }

DATE=$(date +%Y-%m-%d-%H%M%S)
COMMIT=$(commit_line)
mkdir -p bench/results
OUT="bench/results/echo-$DATE.md"
{
  echo "# WebSocket echo: Herald vs Node ws ($DATE)"
  echo
  echo "- commit $COMMIT; $(machine_line)"
  echo "- node and a 1-shard herald pinned to CPU $SERVER_CPU, generator (herald-loadgen) to CPU $LOADGEN_CPU; herald \`serve --shards N --echo-endpoint\`"
  for n in $SHARDS; do
    [ "$n" -gt 1 ] && { echo "- herald with more than one shard: \`taskset -c $MULTI_CPUS\`, the generator still on CPU $LOADGEN_CPU (the extra shards time-slice with it); compare CPU µs/echo, not msgs/s"; break; }
  done
  echo "- echo: $SIZE-byte text messages, 1 in flight per connection, ${WARMUP} s warm-up + ${DURATION} s measured"
  echo "- idle: $IDLE_CONNS connections on a freshly started server; (RSS open - RSS before) / connections open"
  [ "$HERALD_OK" = 1 ] || echo "- **herald unavailable**: $HERALD_WHY"
  echo
  hdr="| metric" sep="|---"
  for h in $HERALDS; do hdr="$hdr | herald ${h#herald} shard(s)"; sep="$sep|---:"; done
  echo "$hdr | node ws | herald (${H1#herald})/node |"
  echo "$sep|---:|---:|"
  # erow LABEL KEY [rate]: one row, the Herald columns, Node, and herald (first count)/node
  erow() {
    local line="| $1" h
    for h in $HERALDS; do
      if [ "${3:-}" = rate ]; then line="$line | $(rate "$h" "${2#rate}")"; else line="$line | $(val "$h" "$2")"; fi
    done
    if [ "${3:-}" = rate ]; then line="$line | $(rate node "${2#rate}")"; else line="$line | $(val node "$2")"; fi
    echo "$line | $(ratio_of "$H1" node "$2") |"
  }
  for n in $CONNECTIONS; do erow "msgs/s @$n (higher is better)" "rate$n" rate; done
  for n in $CONNECTIONS; do erow "server CPU µs/echo @$n" "cpu$n"; done
  for n in $CONNECTIONS; do erow "p99 latency µs @$n" "p99$n"; done
  erow "bytes/idle connection @$IDLE_CONNS" bytes_idle
  echo
  [ "$SATURATED" = 0 ] || { echo "⁽ᵍ⁾ the generator used over 90% of its core: this is its limit, the server could do more (CPU µs/echo still holds)."; echo; }
  echo "Checks (should be: errors 0, every idle connection open, other load near 0, generator below 90%):"
  echo
  hdr="| check" sep="|---"
  for h in $HERALDS; do hdr="$hdr | herald ${h#herald} shard(s)"; sep="$sep|---:"; done
  echo "$hdr | node ws |"
  echo "$sep|---:|"
  crow() { # LABEL CMD...: CMD NAME for every server
    local line="| $1" h
    shift
    for h in $HERALDS node; do line="$line | $("$@" "$h")"; done
    echo "$line |"
  }
  for n in $CONNECTIONS; do
    crow "errors @$n" c_val "err$n"
    crow "generator CPU % @$n" c_val "gen$n"
    crow "other processes, % of a core @$n" c_val "other$n"
    crow "CPU µs/echo @$n, whole run incl. connect/close" c_val "cpurun$n"
  done
  crow "idle connections open" c_val idle_open
  crow "idle errors" c_val idle_err
  crow "RSS before / with idle connections, kB" c_rss
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
