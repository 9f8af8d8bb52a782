# shellcheck shell=bash disable=SC2034  # sets variables for the scripts that source it
# Shell functions shared by bench/run-*.sh: environment, build, server start/stop pinned to a
# core, waiting for a quiet machine, one generator run repeated while other processes disturb
# it, the idle-RSS measurement, and reading the generator's JSON line. Sourced, never run.
#
# bench_init NAME sets, from the environment: DURATION (BENCH_DURATION, 10), WARMUP
# (BENCH_WARMUP, 2), IDLE_CONNS (BENCH_IDLE_CONNECTIONS, 10000), BUILD_DIR (BENCH_BUILD_DIR,
# build), SERVER_CPU / LOADGEN_CPU (BENCH_SERVER_CPU 0, BENCH_LOADGEN_CPU 1), QUIET_WAIT
# (BENCH_QUIET_WAIT, 120), REPEAT (BENCH_REPEAT, 2), MULTI_CPUS (BENCH_MULTI_SERVER_CPUS, every
# CPU: the cores a server with more than one shard may use); and WORK (a temporary directory
# removed on exit, with every server started through start_server and the running generator
# stopped).
#
# bench_shards DEFAULT ARGS...: sets SHARDS (Herald's shard counts to measure, one server per
# count) from `--shards LIST` among ARGS, else BENCH_SHARDS, else DEFAULT.

bench_init() {
  BENCH_NAME=$1
  DURATION=${BENCH_DURATION:-10}
  WARMUP=${BENCH_WARMUP:-2}
  IDLE_CONNS=${BENCH_IDLE_CONNECTIONS:-10000}
  BUILD_DIR=${BENCH_BUILD_DIR:-build}
  SERVER_CPU=${BENCH_SERVER_CPU:-0}
  LOADGEN_CPU=${BENCH_LOADGEN_CPU:-1}
  QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
  REPEAT=${BENCH_REPEAT:-2}
  MULTI_CPUS=${BENCH_MULTI_SERVER_CPUS:-0-$(($(nproc) - 1))}
  ulimit -n 20000 # generator and servers each hold IDLE_CONNS sockets
  WORK=$(mktemp -d /tmp/herald-bench.XXXXXX)
  SERVER_PIDS=()
  GEN_PID=""
  : >"$WORK/raw.jsonl"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
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

log() { echo "$BENCH_NAME: $*" >&2; }

bench_shards() {
  SHARDS=${BENCH_SHARDS:-$1}
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --shards) [ $# -ge 2 ] || { echo "--shards needs a list, e.g. --shards \"1 2\"" >&2; exit 2; }
        SHARDS=$2; shift 2 ;;
      --shards=*) SHARDS=${1#--shards=}; shift ;;
      *) echo "unknown argument: $1 (only --shards LIST)" >&2; exit 2 ;;
    esac
  done
  local n
  for n in $SHARDS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "--shards: \"$n\" is not a shard count (1, 2, ...)" >&2; exit 2; }
  done
}

# server_cpus SHARDS: the cores a server with that many shards is pinned to: SERVER_CPU for one
# (its other threads share that core, as Node's do), MULTI_CPUS for more.
server_cpus() { if [ "$1" -gt 1 ]; then echo "$MULTI_CPUS"; else echo "$SERVER_CPU"; fi; }

# bench_build: builds herald and herald-loadgen (Release) unless BENCH_SKIP_BUILD=1. Sets
# LOADGEN, and HERALD_OK=0 with HERALD_WHY when Herald cannot be used (the generator is then
# built on its own from bench/loadgen.c and src/core, so the reference can still be measured).
bench_build() {
  HERALD_OK=1
  HERALD_WHY=""
  LOADGEN="$BUILD_DIR/herald-loadgen"
  if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building ($BUILD_DIR, Release)"
    # Only the two targets used here: a broken unit test elsewhere must not stop the benchmark.
    if ! { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
           cmake --build "$BUILD_DIR" -j2 --target herald herald-loadgen herald-floor herald-echo-floor; } >"$WORK/build.log" 2>&1; then
      tail -n 20 "$WORK/build.log" >&2
      HERALD_OK=0
      HERALD_WHY="the build failed"
      log "build failed; building only the generator, from bench/loadgen.c and src/core"
      LOADGEN="$WORK/herald-loadgen"
      gcc -O2 -g -Wall -Wextra -Werror -fno-strict-aliasing -Isrc bench/loadgen.c src/core/*.c \
        $(pkg-config --cflags --libs libuv libssl libcrypto) -lm -o "$LOADGEN"
    fi
  fi
  [ -x "$LOADGEN" ] || { log "no generator at $LOADGEN"; exit 1; }
  if [ "$HERALD_OK" = 1 ] && [ ! -x "$BUILD_DIR/herald" ]; then
    HERALD_OK=0
    HERALD_WHY="$BUILD_DIR/herald does not exist"
  fi
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# jget JSON KEY: a number or string field of a flat JSON line ("" if absent).
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

# start_server NAME CMD...: starts a server pinned to SRV_CPUS (SERVER_CPU when unset or
# empty); sets SRV_PID.
start_server() {
  local name=$1
  shift
  taskset -c "${SRV_CPUS:-$SERVER_CPU}" "$@" >"$WORK/$name.log" 2>&1 &
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

# run_gen NAME TAG GENERATOR-ARGS...: one generator run against the running server (SRV_PID),
# generator pinned to LOADGEN_CPU, repeated (up to REPEAT more times) while other processes took
# more than 10% of a core during it; the least disturbed attempt counts. Sets GEN_JSON (its JSON
# line, also appended to raw.jsonl), GEN_TICKS (server CPU ticks over the whole generator run),
# GEN_ATTEMPTS; and, when the caller defines server_counters (prints one line about the
# server), GEN_CNT_BEFORE / GEN_CNT_AFTER around the kept attempt.
run_gen() {
  local name=$1 tag=$2 before after json attempt other best_other="" cb="" ca=""
  shift 2
  GEN_JSON="" GEN_TICKS=0 GEN_ATTEMPTS=0 GEN_CNT_BEFORE="" GEN_CNT_AFTER=""
  for attempt in $(seq 0 "$REPEAT"); do
    wait_quiet
    log "$name: $tag, ${WARMUP}+${DURATION} s"
    ! declare -F server_counters >/dev/null || cb=$(server_counters)
    before=$(cpu_ticks "$SRV_PID")
    taskset -c "$LOADGEN_CPU" "$LOADGEN" "$@" --warmup "$WARMUP" --duration "$DURATION" \
      --server-pid "$SRV_PID" --quiet >"$WORK/$name-$tag.out" 2>"$WORK/$name-$tag.err" || true
    after=$(cpu_ticks "$SRV_PID")
    ! declare -F server_counters >/dev/null || ca=$(server_counters)
    GEN_ATTEMPTS=$((attempt + 1))
    sed '$d' "$WORK/$name-$tag.out" | sed "s/^/  /" >&2
    json=$(tail -n 1 "$WORK/$name-$tag.out")
    other=$(jget "$json" other_cpu_pct)
    if [ -z "$GEN_JSON" ] || awk -v a="${other:-0}" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
      GEN_JSON=$json best_other=${other:-0} GEN_TICKS=$((after - before))
      GEN_CNT_BEFORE=$cb GEN_CNT_AFTER=$ca
    fi
    awk -v a="${other:-0}" 'BEGIN { exit !(a > 10) }' || break
    [ "$attempt" = "$REPEAT" ] || log "$name: other processes took ${other}% of a core; running again"
  done
  echo "$GEN_JSON" >>"$WORK/raw.jsonl"
}

# per_msg_run TICKS COUNT: server CPU µs per item over the whole generator run ("" if COUNT is 0).
per_msg_run() {
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v m="${2:-0}" 'BEGIN { if (m > 0) printf "%.2f", t / hz * 1e6 / m; }'
}

# run_idle NAME MODE [GENERATOR-ARGS...]: on the freshly started server (SRV_PID, SRV_PORT), RSS
# before and with IDLE_CONNS connections of MODE (idle, sio-idle) open, read 2 s after the last
# one opened. Sets IDLE_OPEN, IDLE_BEFORE, IDLE_AFTER (kB), IDLE_BYTES (per connection), IDLE_JSON.
run_idle() {
  local name=$1 mode=$2 ready="$WORK/$1-$2.ready" gen
  shift 2
  wait_quiet
  sleep 1
  IDLE_BEFORE=$(rss_kb "$SRV_PID")
  log "$name: $mode, $IDLE_CONNS connections (RSS before: $IDLE_BEFORE kB)"
  taskset -c "$LOADGEN_CPU" "$LOADGEN" "$mode" --port "$SRV_PORT" --connections "$IDLE_CONNS" --hold 0 \
    --server-pid "$SRV_PID" "$@" \
    --ready-file "$ready" --quiet >"$WORK/$name-$mode.out" 2>"$WORK/$name-$mode.err" &
  gen=$!
  GEN_PID=$gen
  for _ in $(seq 1 1200); do [ -f "$ready" ] || ! kill -0 "$gen" 2>/dev/null && break; sleep 0.1; done
  sleep 2 # let the server finish any deferred work
  IDLE_AFTER=$(rss_kb "$SRV_PID")
  kill -INT "$gen" 2>/dev/null || true
  wait "$gen" || true
  GEN_PID=""
  sed '$d' "$WORK/$name-$mode.out" | sed "s/^/  /" >&2
  IDLE_JSON=$(tail -n 1 "$WORK/$name-$mode.out")
  echo "$IDLE_JSON" >>"$WORK/raw.jsonl"
  IDLE_OPEN=$(sed -n 's/^open=\([0-9]*\).*/\1/p' "$ready" 2>/dev/null || true)
  IDLE_OPEN=${IDLE_OPEN:-0}
  IDLE_BYTES=""
  if [ "$IDLE_OPEN" -gt 0 ]; then IDLE_BYTES=$(( (IDLE_AFTER - IDLE_BEFORE) * 1024 / IDLE_OPEN )); fi
  log "$name: RSS $IDLE_BEFORE kB -> $IDLE_AFTER kB with $IDLE_OPEN open"
}

# ---- report helpers: R[server,key] = value (declared by the caller: declare -A R) -----------
val() { local v=${R[$1,$2]:-}; echo "${v:-n/a}"; }
ratio() { ratio_of herald node "$1"; } # herald/node of key $1
ratio_of() { # R[$1,$3] / R[$2,$3]
  awk -v h="${R[$1,$3]:-}" -v n="${R[$2,$3]:-}" \
    'BEGIN { if (h == "" || n == "" || n + 0 == 0) print "n/a"; else printf "%.2f\n", h / n }'
}
fmt_int() { awk -v v="$1" 'BEGIN { if (v == "n/a" || v == "") print "n/a"; else printf "%.0f\n", v }'; }
# gt A B: true when the number A > B (false when either is empty)
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 > b + 0) }'; }
machine_line() {
  echo "$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), Node $(node --version)"
}
commit_line() {
  local c
  c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src 2>/dev/null || c="$c (src modified)"
  echo "$c"
}

# record_idle NAME MODE: run_idle on the current (fresh) server, results into R[NAME,*].
record_idle() {
  local name=$1
  run_idle "$name" "$2"
  R[$name,idle_open]=$IDLE_OPEN
  R[$name,rss_before]=$IDLE_BEFORE
  R[$name,rss_after]=$IDLE_AFTER
  R[$name,idle_err]=$(jget "$IDLE_JSON" errors)
  [ -z "$IDLE_BYTES" ] || R[$name,bytes_idle]=$IDLE_BYTES
}

# ---- the loopback floor (bench/floor.c) ------------------------------------------------------
# run_floor SOCKETS BATCH: herald-floor with SOCKETS connected pairs, BATCH frames of
# BENCH_FLOOR_SIZE (66) bytes per write, the writer pinned like a one-shard server (SERVER_CPU),
# the reader like the generator (LOADGEN_CPU), DURATION s after WARMUP s. Sets R[floor,bB_*]:
# us_write (writer CPU µs per write: the floor of one delivery written on its own), us_frame,
# reader_us_frame, rate (writes/s); nothing when the program is missing or fails.
run_floor() {
  local n=$1 b=$2 bin="$BUILD_DIR/herald-floor" j
  if [ ! -x "$bin" ]; then log "no $bin: no loopback floor"; return 0; fi
  wait_quiet
  log "loopback floor: $n sockets, $b frame(s) per write, ${WARMUP}+${DURATION} s"
  j=$("$bin" --sockets "$n" --batch "$b" --size "${BENCH_FLOOR_SIZE:-66}" --duration "$DURATION" \
        --warmup "$WARMUP" --writer-cpu "$SERVER_CPU" --reader-cpu "$LOADGEN_CPU" 2>"$WORK/floor.err" | tail -n 1) ||
    { log "herald-floor failed: $(tail -n 1 "$WORK/floor.err")"; return 0; }
  echo "$j" >>"$WORK/raw.jsonl"
  R[floor,b${b}_us_write]=$(jget "$j" writer_cpu_us_per_write)
  R[floor,b${b}_us_frame]=$(jget "$j" writer_cpu_us_per_frame)
  R[floor,b${b}_reader_us_frame]=$(jget "$j" reader_cpu_us_per_frame)
  R[floor,b${b}_rate]=$(jget "$j" writes_per_s)
}

# floor_ratio VALUE BATCH: VALUE (server CPU µs per delivery) / the floor's writer µs per frame at
# BATCH frames per write, 2 decimals ("n/a" when either is missing).
floor_ratio() {
  awk -v v="$1" -v f="${R[floor,b${2}_us_frame]:-}" \
    'BEGIN { if (v == "" || v == "n/a" || f == "" || f + 0 == 0) print "n/a"; else printf "%.2f\n", v / f }'
}
