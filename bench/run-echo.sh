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

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
SIZE=${BENCH_SIZE:-32}
CONNECTIONS=${BENCH_CONNECTIONS:-"100 1000"}
IDLE_CONNS=${BENCH_IDLE_CONNECTIONS:-10000}
BUILD_DIR=${BENCH_BUILD_DIR:-build}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOADGEN_CPU=${BENCH_LOADGEN_CPU:-1}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
REPEAT=${BENCH_REPEAT:-2}

ulimit -n 20000 # generator and servers each hold IDLE_CONNS sockets

WORK=$(mktemp -d /tmp/herald-bench.XXXXXX)
SERVER_PIDS=()
GEN_PID=""
cleanup() {
  local pid
  [ -z "$GEN_PID" ] || kill -TERM "$GEN_PID" 2>/dev/null || true
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run-echo: $*" >&2; }

# ---- build -------------------------------------------------------------------------------
HERALD_OK=1
HERALD_WHY=""
LOADGEN="$BUILD_DIR/herald-loadgen"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  log "building ($BUILD_DIR, Release)"
  # Only the two targets used here: a broken unit test elsewhere must not stop the benchmark.
  if ! { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$BUILD_DIR" -j2 --target herald herald-loadgen; } >"$WORK/build.log" 2>&1; then
    tail -n 20 "$WORK/build.log" >&2
    HERALD_OK=0
    HERALD_WHY="the build failed"
    log "build failed; building only the generator, from bench/loadgen.c and src/core"
    LOADGEN="$WORK/herald-loadgen"
    gcc -O2 -g -Wall -Wextra -Werror -fno-strict-aliasing -Isrc bench/loadgen.c src/core/*.c \
      $(pkg-config --cflags --libs libuv libcrypto) -lm -o "$LOADGEN"
  fi
fi
[ -x "$LOADGEN" ] || { log "no generator at $LOADGEN"; exit 1; }
if [ "$HERALD_OK" = 1 ] && [ ! -x "$BUILD_DIR/herald" ]; then
  HERALD_OK=0
  HERALD_WHY="$BUILD_DIR/herald does not exist"
fi

# ---- helpers -----------------------------------------------------------------------------
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# jget JSON KEY: a number or string field of the generator's flat JSON line ("" if absent).
jget() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"; }

cpu_ticks() { # utime + stime of a process, in clock ticks
  local stat
  stat=$(cat "/proc/$1/stat") || return 1
  stat=${stat##*) } # comm may hold spaces
  awk '{ print $12 + $13 }' <<<"$stat"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# Waits (up to QUIET_WAIT s) for the machine to be idle, so other work does not skew a run.
wait_quiet() {
  local waited=0 a b hz
  hz=$(getconf CLK_TCK)
  while :; do
    a=$(machine_busy); sleep 1; b=$(machine_busy)
    if [ $(( (b - a) * 100 / hz )) -lt 15 ]; then return 0; fi
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "warning: the machine is still busy ($(( (b - a) * 100 / hz ))% of a core); running anyway"
      return 0
    fi
    [ "$waited" = 0 ] && log "waiting for other processes to finish (machine $(( (b - a) * 100 / hz ))% busy)"
    waited=$((waited + 1))
  done
}

# start_server NAME CMD...: starts a server pinned to SERVER_CPU; sets SRV_PID.
start_server() {
  local name=$1
  shift
  taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
  SRV_PID=$!
  SERVER_PIDS+=("$SRV_PID")
}

stop_server() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_port PORT PID: 0 once PORT accepts connections, 1 if PID died or 10 s passed.
wait_port() {
  for _ in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

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
  local name=$1 n=$2 before after json total attempt other best_other="" best_json="" best_ticks=0
  for attempt in $(seq 0 "$REPEAT"); do
    wait_quiet
    log "$name: echo, $n connections, ${WARMUP}+${DURATION} s"
    before=$(cpu_ticks "$SRV_PID")
    taskset -c "$LOADGEN_CPU" "$LOADGEN" echo --port "$SRV_PORT" --connections "$n" --size "$SIZE" \
      --warmup "$WARMUP" --duration "$DURATION" --server-pid "$SRV_PID" --quiet \
      >"$WORK/$name-echo-$n.out" 2>"$WORK/$name-echo-$n.err" || true
    after=$(cpu_ticks "$SRV_PID")
    sed '$d' "$WORK/$name-echo-$n.out" | sed "s/^/  /" >&2
    json=$(tail -n 1 "$WORK/$name-echo-$n.out")
    other=$(jget "$json" other_cpu_pct)
    if [ -z "$best_json" ] || awk -v a="${other:-0}" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
      best_json=$json best_other=${other:-0} best_ticks=$((after - before))
    fi
    awk -v a="${other:-0}" 'BEGIN { exit !(a > 10) }' || break
    [ "$attempt" = "$REPEAT" ] || log "$name: other processes took ${other}% of a core; running again"
  done
  json=$best_json
  echo "$json" >>"$WORK/raw.jsonl"
  R[$name,rate$n]=$(jget "$json" msgs_per_s)
  R[$name,p99$n]=$(jget "$json" p99_us)
  R[$name,cpu$n]=$(jget "$json" server_cpu_us_per_msg)
  R[$name,err$n]=$(jget "$json" errors)
  R[$name,other$n]=$(jget "$json" other_cpu_pct)
  R[$name,gen$n]=$(jget "$json" loadgen_cpu_pct)
  total=$(jget "$json" messages_total)
  # Cross-check over the whole run (connects, warm-up and closes included).
  R[$name,cpurun$n]=$(awk -v t="$best_ticks" -v hz="$(getconf CLK_TCK)" -v m="${total:-0}" \
    'BEGIN { if (m > 0) printf "%.2f", t / hz * 1e6 / m; }')
}

# run_idle NAME: fresh server, RSS before and with IDLE_CONNS idle connections open.
run_idle() {
  local name=$1 before after ready="$WORK/$name-idle.ready" gen open json
  wait_quiet
  sleep 1
  before=$(rss_kb "$SRV_PID")
  log "$name: idle, $IDLE_CONNS connections (RSS before: $before kB)"
  taskset -c "$LOADGEN_CPU" "$LOADGEN" idle --port "$SRV_PORT" --connections "$IDLE_CONNS" --hold 0 \
    --server-pid "$SRV_PID" \
    --ready-file "$ready" --quiet >"$WORK/$name-idle.out" 2>"$WORK/$name-idle.err" &
  gen=$!
  GEN_PID=$gen
  for _ in $(seq 1 1200); do [ -f "$ready" ] || ! kill -0 "$gen" 2>/dev/null && break; sleep 0.1; done
  sleep 2 # let the server finish any deferred work
  after=$(rss_kb "$SRV_PID")
  kill -INT "$gen" 2>/dev/null || true
  wait "$gen" || true
  GEN_PID=""
  sed '$d' "$WORK/$name-idle.out" | sed "s/^/  /" >&2
  json=$(tail -n 1 "$WORK/$name-idle.out")
  echo "$json" >>"$WORK/raw.jsonl"
  open=$(sed -n 's/^open=\([0-9]*\).*/\1/p' "$ready" 2>/dev/null || true)
  R[$name,idle_open]=${open:-0}
  R[$name,rss_before]=$before
  R[$name,rss_after]=$after
  R[$name,idle_err]=$(jget "$json" errors)
  if [ "${open:-0}" -gt 0 ]; then
    R[$name,bytes_idle]=$(( (after - before) * 1024 / open ))
  fi
  log "$name: RSS $before kB -> $after kB with $open open"
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
  run_idle "$name"
  stop_server "$SRV_PID"
}

# ---- runs --------------------------------------------------------------------------------
: >"$WORK/raw.jsonl"
bench node || { log "the Node reference server failed"; exit 1; }
if [ "$HERALD_OK" = 1 ]; then
  if ! bench herald; then HERALD_OK=0; HERALD_WHY="it does not serve ws://127.0.0.1:PORT/ws/echo"; fi
fi
[ "$HERALD_OK" = 1 ] || log "herald unavailable: $HERALD_WHY; Node figures only"

# ---- report ------------------------------------------------------------------------------
val() { local v=${R[$1,$2]:-}; echo "${v:-n/a}"; }
ratio() { # herald/node
  awk -v h="${R[herald,$1]:-}" -v n="${R[node,$1]:-}" \
    'BEGIN { if (h == "" || n == "" || n + 0 == 0) print "n/a"; else printf "%.2f\n", h / n }'
}
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "n/a" || v == "") print "n/a"; else printf "%.0f\n", v }'; }
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
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT (src modified)"
mkdir -p bench/results
OUT="bench/results/echo-$DATE.md"
{
  echo "# WebSocket echo: Herald vs Node ws ($DATE)"
  echo
  echo "- commit $COMMIT; $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), Node $(node --version)"
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
