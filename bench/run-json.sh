#!/usr/bin/env bash
# Herald's JSON-protocol fan-out beside its Socket.IO fan-out, measured in the same run on the
# same server: 1,000 subscribers of topic `bench` on /api/v1/ws, the publisher either a JSON
# connection with an admin token (`data` frames, acked by the server) or the HTTP publish API
# (POST /api/v1/publish, keep-alive, X-API-Key); and 1,000 Socket.IO receivers of a `broadcast`
# (--test-handlers). One Herald process per shard count of `--shards LIST` (BENCH_SHARDS, "1 2"):
# with one shard pinned to one core, the generator (herald-loadgen) to the other; with more, the
# server may use every core (BENCH_MULTI_SERVER_CPUS), the generator's included. Prints a markdown
# table and writes it to bench/results/json-<date>.md. See bench/README.md.
#
# Usage: bench/run-json.sh [--shards LIST]
#
# Environment (besides those of bench/lib.sh): BENCH_SIZE (payload characters, 32),
# BENCH_FANOUT_RECEIVERS (1000), BENCH_WINDOWS (runs, one per number of publishes in flight, "1 16"),
# BENCH_SHARDS ("1 2"), BENCH_MULTI_SERVER_CPUS (every CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${BENCH_SIZE:-32}
RECEIVERS=${BENCH_FANOUT_RECEIVERS:-1000}
WINDOWS=${BENCH_WINDOWS:-"1 16"}
SECRET="bench-jwt-secret-$$-$RANDOM$RANDOM"
API_KEY="bench-api-key-$$-$RANDOM$RANDOM"

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-json
bench_shards "1 2" "$@"
S1=${SHARDS%% *} # the first shard count: the base of the shard ratios

bench_build
[ "$HERALD_OK" = 1 ] || { log "herald unavailable: $HERALD_WHY"; exit 1; }

# launch N: starts Herald with N shards on a free port; sets SRV_PID, SRV_PORT, TOKEN (an admin JWT).
# --json-rate/--json-burst: the JSON protocol limits each connection to 50 frames/s by default,
# which would throttle the publisher; --recovery-window 0 as in run-socketio.sh.
launch() {
  SRV_PORT=$(free_port)
  mkdir -p "$WORK/herald-data"
  SRV_CPUS=$(server_cpus "$1") start_server "herald$1" "$BUILD_DIR/herald" serve --host 127.0.0.1 \
    --port "$SRV_PORT" --shards "$1" --test-handlers \
    --recovery-window 0 --eio-handshake-rate 0 --jwt-secret "$SECRET" --api-key "$API_KEY" --json-rate 1000000 \
    --json-burst 1000000 --max-connections $((RECEIVERS + 1000)) --log-level warn \
    --data-dir "$WORK/herald-data" --shutdown-grace 1000
  wait_port "$SRV_PORT" "$SRV_PID" || { log "herald did not start:"; tail -n 5 "$WORK/herald$1.log" >&2; exit 1; }
  TOKEN=$("$BUILD_DIR/herald" token --sub bench --role admin --ttl 86400 --jwt-secret "$SECRET")
}

# Herald's counters for the cross-checks: WebSocket frames sent, publish API 200 answers.
server_counters() {
  curl -s --max-time 5 "http://127.0.0.1:$SRV_PORT/metrics" | awk '
    /^herald_ws_frames_total\{direction="out"\}/ { printf "frames_out=%s ", $2 }
    /^herald_http_requests_total\{status="200"\}/ { printf "http200=%s ", $2 }' || true
}
cnt_delta() {
  local a b
  a=$(tr ' ' '\n' <<<"$GEN_CNT_BEFORE" | sed -n "s/^$1=//p")
  b=$(tr ' ' '\n' <<<"$GEN_CNT_AFTER" | sed -n "s/^$1=//p")
  [ -n "$a" ] && [ -n "$b" ] && echo $((b - a)) || echo ""
}

declare -A R # R[run,key] = value

# fanout KEY K MODE ARGS...: one fan-out run with K publishes in flight; figures under R[KEY,*].
fanout() {
  local k=$1 w=$2 mode=$3 j
  shift 3
  run_gen "herald$SH" "${k#*/}" "$mode" --port "$SRV_PORT" --connections "$RECEIVERS" --window "$w" --size "$SIZE" "$@"
  j=$GEN_JSON
  R[$k,rate]=$(jget "$j" msgs_per_s)
  R[$k,cpu]=$(jget "$j" server_cpu_us_per_msg)
  R[$k,p50]=$(jget "$j" p50_us)
  R[$k,p99]=$(jget "$j" p99_us)
  R[$k,members]=$(jget "$j" members)
  R[$k,err]=$(jget "$j" errors)
  R[$k,other]=$(jget "$j" other_cpu_pct)
  R[$k,gen]=$(jget "$j" loadgen_cpu_pct)
  R[$k,srvpct]=$(awk -v s="$(jget "$j" server_cpu_s)" -v d="$(jget "$j" duration_s)" \
    'BEGIN { if (d > 0 && s != "") printf "%.0f", 100 * s / d }')
  R[$k,attempts]=$GEN_ATTEMPTS
  R[$k,copies]="$(jget "$j" deliveries_total) of $(jget "$j" deliveries_expected), drained $(jget "$j" drained)"
  R[$k,reported]="$(jget "$j" server_reported) reported in $(jget "$j" answers) answers"
  R[$k,frames]="$(cnt_delta frames_out) out (gen: $(jget "$j" frames_in) in)"
  case " $* " in
    *" --via-api "*) # minus the 200 of the /metrics read before the run, counted in the one after
      local ok
      ok=$(cnt_delta http200)
      R[$k,reported]="${R[$k,reported]}; ${ok:+$((ok - 1))} HTTP 200" ;;
  esac
}

# ---- runs --------------------------------------------------------------------------------
# Keys: R[<shards>/<publisher><K>,*], e.g. R[2/ws16,cpu].
for SH in $SHARDS; do
  launch "$SH"
  for w in $WINDOWS; do
    fanout "$SH/sio$w" "$w" sio-fanout
    fanout "$SH/ws$w" "$w" json-fanout --token "$TOKEN"
    fanout "$SH/api$w" "$w" json-fanout --token "$TOKEN" --via-api --api-key "$API_KEY"
  done
  stop_server "$SRV_PID"
done

# ---- report ------------------------------------------------------------------------------
rel() { # KEY BASE: CPU per delivery of run KEY relative to run BASE ("n/a" if either is missing)
  awk -v a="${R[$1,cpu]:-}" -v b="${R[$2,cpu]:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
verdict() { # KEY BASE: ratio ≤ 1.10
  local r
  r=$(rel "$1" "$2")
  if [ "$r" = n/a ]; then echo "not measured"
  elif awk -v r="$r" 'BEGIN { exit !(r <= 1.10) }'; then echo "**met**"
  else echo "**not met**"
  fi
}
clean() {
  local e=${R[$1,err]:-} o=${R[$1,other]:-}
  if [ -z "$e" ]; then echo "n/a"
  elif [ "$e" != 0 ]; then echo "errors $e"
  elif gt "$o" 10; then echo "disturbed (other ${o}%)"
  else echo "clean (other ${o}%)"
  fi
}
row() { # SHARDS PUBLISHER K LABEL
  local key="$1/$2$3" r
  r=$(fmt_int "$(val "$key" rate)")
  gt "${R[$key,gen]:-}" 90 && r="$r ⁽ᵍ⁾"
  echo "| $1 | $4 | $3 | ${R[$key,members]:-n/a} | $r | $(val "$key" cpu) | $(val "$key" srvpct) | $(val "$key" p50) | $(val "$key" p99) | $(rel "$key" "$1/sio$3") | $(rel "$key" "$S1/$2$3") |"
}
MULTI=0
for n in $SHARDS; do [ "$n" -gt 1 ] && MULTI=1; done

DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
OUT="bench/results/json-$DATE.md"
{
  echo "# Herald fan-out: JSON protocol vs Socket.IO ($DATE)"
  echo
  echo "- commit $(commit_line); $(machine_line)"
  echo "- one Herald process per shard count ($SHARDS; \`serve --shards N --test-handlers --recovery-window 0 --json-rate 1000000 --json-burst 1000000\`); 1 shard pinned to CPU $SERVER_CPU, generator to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run"
  if [ "$MULTI" = 1 ]; then
    echo "- more than one shard: \`taskset -c $MULTI_CPUS\`, the generator still on CPU $LOADGEN_CPU: on $(nproc) CPUs the extra shards time-slice with the generator, so deliveries/s at N shards vs 1 is what they gain from its idle time, not scaling on free cores; server CPU µs per delivery (from /proc, every thread) compares the shard counts"
  fi
  echo "- $RECEIVERS receivers each; payload a $SIZE-character string; K publishes in flight (released by the publisher's own copy; over the API by the HTTP answer)"
  echo "- JSON: subscribers of topic \`bench\` (admin JWT in \`?token=\`); publisher a JSON connection (admin token, also subscribed) sending \`{\"type\":\"data\",\"topic\":\"bench\",...}\`, or \`POST /api/v1/publish\` on one keep-alive connection (pipelined)"
  echo "- Socket.IO: receivers on \`/\`, a publisher emitting \`broadcast\` (\`io.emit('msg', arg)\`)"
  echo
  echo "| shards | publisher | K | copies per publish | deliveries/s | server CPU µs/delivery | server CPU % of a core | p50 µs | p99 µs | CPU vs Socket.IO | CPU vs $S1 shard(s) |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for w in $WINDOWS; do
    for sh in $SHARDS; do
      row "$sh" sio "$w" "Socket.IO \`broadcast\` emit"
      row "$sh" ws "$w" "JSON over /api/v1/ws"
      row "$sh" api "$w" "JSON, POST /api/v1/publish"
    done
  done
  echo
  for key in "${!R[@]}"; do
    if [[ $key == *,gen ]] && gt "${R[$key]}" 90; then
      echo "⁽ᵍ⁾ the generator used over 90% of its core: the rate is (also) its limit; CPU µs per delivery still holds."
      echo
      break
    fi
  done
  echo "| target: JSON CPU per delivery within 10% of Socket.IO's (ratio ≤ 1.10) | shards | ratio | |"
  echo "|---|---:|---:|---|"
  for sh in $SHARDS; do
    for w in $WINDOWS; do
      echo "| publisher over /api/v1/ws, K=$w | $sh | $(rel "$sh/ws$w" "$sh/sio$w") | $(verdict "$sh/ws$w" "$sh/sio$w") |"
      echo "| publisher over POST /api/v1/publish, K=$w | $sh | $(rel "$sh/api$w" "$sh/sio$w") | $(verdict "$sh/api$w" "$sh/sio$w") |"
    done
  done
  echo
  if [ "$MULTI" = 1 ]; then
    echo "| target: CPU per delivery at N shards ≤ 1.10 × at $S1 | N | ratio | |"
    echo "|---|---:|---:|---|"
    for sh in $SHARDS; do
      [ "$sh" = "$S1" ] && continue
      for w in $WINDOWS; do
        for p in sio ws api; do
          echo "| $p, K=$w | $sh | $(rel "$sh/$p$w" "$S1/$p$w") | $(verdict "$sh/$p$w" "$S1/$p$w") |"
        done
      done
    done
    echo
  fi
  echo "Checks (clean, errors 0, every copy delivered, the server's counts matching; Herald's frame"
  echo "counter leaves out the close frame it returns to a client's close, so frames out = frames in − connections):"
  echo
  echo "| check | shards | K | Socket.IO | JSON ws | JSON API |"
  echo "|---|---:|---:|---|---|---|"
  for sh in $SHARDS; do
    for w in $WINDOWS; do
      a="$sh/sio$w" b="$sh/ws$w" c="$sh/api$w"
      echo "| run | $sh | $w | $(clean "$a"), $(val "$a" attempts) attempt(s) | $(clean "$b"), $(val "$b" attempts) attempt(s) | $(clean "$c"), $(val "$c" attempts) attempt(s) |"
      echo "| server / generator CPU % of a core | $sh | $w | $(val "$a" srvpct) / $(val "$a" gen) | $(val "$b" srvpct) / $(val "$b" gen) | $(val "$c" srvpct) / $(val "$c" gen) |"
      echo "| copies received | $sh | $w | $(val "$a" copies) | $(val "$b" copies) | $(val "$c" copies) |"
      echo "| server's delivery counts | $sh | $w | n/a | $(val "$b" reported) | $(val "$c" reported) |"
      echo "| WebSocket frames | $sh | $w | $(val "$a" frames) | $(val "$b" frames) | $(val "$c" frames) |"
    done
  done
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
