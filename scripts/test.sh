#!/usr/bin/env bash
# Builds Herald and runs every test: unit tests (cmocka/ctest), interop tests with real clients
# (node:test + ws + socket.io-client, python3-websockets, python3-socketio) and end-to-end tests in
# headless Chromium (tests/e2e) against the release server, the unit and interop tests again
# under AddressSanitizer + UBSan, and a short libFuzzer pass. Installs what it needs first.
#   FUZZ_SECONDS=N   seconds per fuzz target (default 15; 0 skips fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
JOBS=$(nproc 2>/dev/null || echo 2)
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bash scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }

passed=0; failed=0; failures=()
suite() { # suite NAME COMMAND...: runs one suite, records its result
  local name=$1; shift
  echo; echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok"
  else failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED"; fi
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

suite "build (release)" build build -DCMAKE_BUILD_TYPE=Release
suite "unit tests" ctest --test-dir build --output-on-failure
suite "interop tests" interop "$ROOT/build/herald"

suite "build (asan+ubsan)" build build-san -DCMAKE_BUILD_TYPE=Sanitize
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suite "unit tests (asan+ubsan)" ctest --test-dir build-san --output-on-failure
suite "interop tests (asan+ubsan)" interop "$ROOT/build-san/herald"
unset ASAN_OPTIONS UBSAN_OPTIONS

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
if [ "$failed" -gt 0 ]; then echo "failed suites: ${failures[*]}"; fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
