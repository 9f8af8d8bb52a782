#!/usr/bin/env bash
# Builds Herald and runs every test: unit tests (cmocka/ctest), interop tests with real clients
# (node:test + ws + socket.io-client, python3-websockets, python3-socketio) and end-to-end tests in
# headless Chromium (tests/e2e) against the release server, twice and in parallel: with one shard
# (HERALD_SHARDS=1) and with two (HERALD_SHARDS=2); then the unit and interop tests again under
# AddressSanitizer + UBSan (2 shards) and under ThreadSanitizer (2 shards), and a short libFuzzer
# pass. The store tests run on both backends: a throw-away PostgreSQL (scripts/pg-test-server.sh) serves
# the store unit tests and a second run of the store-backed interop files (tests/interop/app_*.test.mjs,
# HERALD_STORE=postgres; with json_durable_inbox and json_history_restart). The Debian package
# (tests/package/test-package.sh) is built from the release binary, installed with dpkg, run with its
# packaged config and purged. Installs what it needs first. Every suite's time is printed with its
# result and at the end.
#   FUZZ_SECONDS=N   seconds per fuzz target (default 15; 0 skips fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
JOBS=$(nproc 2>/dev/null || echo 2)
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bash scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }

passed=0; failed=0; failures=(); suite_times=()
SUITE_SECONDS="" # a suite run in the background sets this to its own duration (see interop_wait)
suite() { # suite NAME COMMAND...: runs one suite, records its result and duration
  local name=$1; shift
  echo; echo "=== $name"
  local t0=$SECONDS result
  SUITE_SECONDS=""
  if "$@"; then passed=$((passed + 1)); result=ok
  else failed=$((failed + 1)); failures+=("$name"); result=FAILED; fi
  local took=${SUITE_SECONDS:-$((SECONDS - t0))}
  suite_times+=("$(printf '%5ss  %s (%s)' "$took" "$name" "$result")")
  echo "=== $name: $result (${took}s)"
}

build() { # build DIR CMAKE_ARGS...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$JOBS" 2>&1 | grep -Ev '^\[|^-- |Scanning|Built target|Consolidate' ; return "${PIPESTATUS[0]}"
}

interop() { # interop HERALD_BINARY: node and python interop tests against that binary
  local bin=$1 rc=0
  local dirs=(tests/interop/)
  [ -d tests/e2e ] && dirs+=(tests/e2e/)
  HERALD_BIN="$bin" node --test --test-concurrency=1 "${dirs[@]}" || rc=1
  for t in tests/interop/*_test.py; do
    [ -e "$t" ] || continue
    HERALD_BIN="$bin" /usr/bin/python3 "$t" || rc=1
  done
  return $rc
}

# interop_start SHARDS BINARY: the interop suite with HERALD_SHARDS=SHARDS in a background job, its
# output in build/logs/interop-shards-SHARDS.log (tests use --port 0 and their own temporary
# directories; screenshots go to test-artifacts/shards-SHARDS/), so runs do not clash.
declare -A interop_pid
interop_start() {
  local n=$1 bin=$2
  mkdir -p build/logs
  rm -f "build/logs/interop-shards-$n.seconds"
  (
    start=$SECONDS
    HERALD_SHARDS=$n HERALD_TEST_ARTIFACTS="$ROOT/test-artifacts/shards-$n" interop "$bin"
    rc=$?
    echo $((SECONDS - start)) >"build/logs/interop-shards-$n.seconds"
    exit $rc
  ) >"build/logs/interop-shards-$n.log" 2>&1 &
  interop_pid[$n]=$!
}
# interop_wait SHARDS: waits for that run; prints its log when it failed.
interop_wait() {
  local n=$1 rc=0
  wait "${interop_pid[$n]}" || rc=$?
  SUITE_SECONDS=$(cat "build/logs/interop-shards-$n.seconds" 2>/dev/null)
  echo "log: build/logs/interop-shards-$n.log ($(grep -E '^# (pass|fail) ' "build/logs/interop-shards-$n.log" | tr '\n' ' '))"
  [ "$rc" -eq 0 ] || cat "build/logs/interop-shards-$n.log"
  return "$rc"
}

# A redis-server for the cluster tests (tests/interop/cluster.test.mjs): a free loopback port, no
# persistence, stopped on exit whatever happens (also when a suite fails or the script is interrupted).
REDIS_PID=""
stop_redis() {
  if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
  REDIS_PID=""
}
start_redis() {
  command -v redis-server >/dev/null || { echo "redis-server not found (scripts/install-deps.sh installs it)"; return 1; }
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
  mkdir -p build/logs
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >build/logs/redis.log 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      export HERALD_TEST_REDIS_URL="redis://127.0.0.1:$port"
      echo "redis-server on port $port (pid $REDIS_PID)"
      return 0
    fi
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat build/logs/redis.log
  stop_redis
  return 1
}

# A PostgreSQL server for the store tests (scripts/pg-test-server.sh: initdb into a temporary
# directory as an unprivileged user, a free loopback port, fsync on), stopped on exit whatever
# happens. The store unit tests use it through HERALD_TEST_POSTGRES_URL; the store-backed interop
# files (PG_INTEROP below) run a second time with HERALD_STORE=postgres.
PG_DIR=""
# (the kill -9 durability tests among them: app_durability, json_durable_inbox, json_history_restart)
PG_INTEROP=(tests/interop/app_*.test.mjs tests/interop/json_durable_inbox.test.mjs tests/interop/json_history_restart.test.mjs)
stop_postgres() {
  [ -n "$PG_DIR" ] && bash scripts/pg-test-server.sh stop "$PG_DIR"
  PG_DIR=""
}
start_postgres() {
  local env
  env=$(bash scripts/pg-test-server.sh start) || return 1
  eval "$env"
  PG_DIR=$HERALD_TEST_POSTGRES_DIR
  echo "postgres for the store tests: ${HERALD_TEST_POSTGRES_URL} ($PG_DIR)"
}
interop_postgres() { # interop_postgres HERALD_BINARY: the store-backed interop files on PostgreSQL
  HERALD_STORE=postgres HERALD_SHARDS=2 HERALD_BIN="$1" node --test --test-concurrency=1 "${PG_INTEROP[@]}"
}
cleanup() { stop_redis; stop_postgres; }
trap cleanup EXIT
trap 'exit 130' INT TERM

suite "build (release)" build build -DCMAKE_BUILD_TYPE=Release
suite "redis-server for the cluster tests" start_redis
suite "postgres for the store tests" start_postgres
suite "unit tests" ctest --test-dir build --output-on-failure
# the Debian package of the release binary, installed with dpkg, run with its config, removed (root)
suite "package (deb: build, install, run, purge)" bash tests/package/test-package.sh "$ROOT/build/herald"
interop_start 1 "$ROOT/build/herald"
interop_start 2 "$ROOT/build/herald"
suite "interop tests (1 shard)" interop_wait 1
suite "interop tests (2 shards)" interop_wait 2
suite "store interop tests on postgres (2 shards)" interop_postgres "$ROOT/build/herald"

suite "build (asan+ubsan)" build build-san -DCMAKE_BUILD_TYPE=Sanitize
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suite "unit tests (asan+ubsan)" ctest --test-dir build-san --output-on-failure
HERALD_SHARDS=2 suite "interop tests (asan+ubsan)" interop "$ROOT/build-san/herald"
suite "store interop tests on postgres (asan+ubsan)" interop_postgres "$ROOT/build-san/herald"
unset ASAN_OPTIONS UBSAN_OPTIONS

# ThreadSanitizer: data races between shards (and the store thread). A report stops the process
# (halt_on_error) and the harness also fails a test whose server log holds "WARNING: ThreadSanitizer".
suite "build (tsan)" build build-tsan -DCMAKE_BUILD_TYPE=Tsan
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp"
suite "unit tests (tsan)" ctest --test-dir build-tsan --output-on-failure
HERALD_SHARDS=2 suite "interop tests (tsan)" interop "$ROOT/build-tsan/herald"
unset TSAN_OPTIONS

if [ "$FUZZ_SECONDS" -gt 0 ]; then
  fuzz() {
    CC=clang build build-fuzz -DHERALD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug || return 1
    local rc=0
    mkdir -p build-fuzz/logs
    for f in build-fuzz/fuzz_*; do
      [ -f "$f" ] && [ -x "$f" ] || continue
      local name; name=$(basename "$f")
      mkdir -p "fuzz/corpus-$name"
      echo "--- $name (${FUZZ_SECONDS}s)"
      local dirs=("fuzz/corpus-$name")
      [ -d "fuzz/seeds/$name" ] && dirs+=("fuzz/seeds/$name")
      "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -print_final_stats=0 "${dirs[@]}" \
        >"build-fuzz/logs/$name.log" 2>&1 || { rc=1; tail -40 "build-fuzz/logs/$name.log"; }
      grep -E '^Done|#[0-9]+.*DONE' "build-fuzz/logs/$name.log" | tail -1
    done
    return $rc
  }
  suite "fuzz (${FUZZ_SECONDS}s per target)" fuzz
fi

echo
echo "suite times (the two release interop runs overlap):"
printf '  %s\n' "${suite_times[@]}"
echo "total: $((SECONDS / 60))m $((SECONDS % 60))s"
if [ "$failed" -gt 0 ]; then echo "failed suites: ${failures[*]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
