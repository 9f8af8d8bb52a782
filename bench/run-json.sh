#!/usr/bin/env bash
# Herald's JSON-protocol fan-out beside its Socket.IO fan-out, measured in the same run on the
# same server: 1,000 subscribers of topic `bench` on /api/v1/ws, the publisher either a JSON
# connection with an admin token (`data` frames, acked by the server) or the HTTP publish API
# (POST /api/v1/publish, keep-alive, X-API-Key); and 1,000 Socket.IO receivers of a `broadcast`
# (--test-handlers). Server pinned to one core, generator (herald-loadgen) to the other. Prints a
# markdown table and writes it to bench/results/json-<date>.md. See bench/README.md.
#
# Environment (besides those of bench/lib.sh): BENCH_SIZE (payload characters, 32),
# BENCH_FANOUT_RECEIVERS (1000), BENCH_WINDOWS (runs, one per number of publishes in flight, "1 16").
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

bench_build
[ "$HERALD_OK" = 1 ] || { log "herald unavailable: $HERALD_WHY"; exit 1; }

# launch: starts Herald on a free port; sets SRV_PID, SRV_PORT, TOKEN (an admin JWT).
# --json-rate/--json-burst: the JSON protocol limits each connection to 50 frames/s by default,
# which would throttle the publisher; --recovery-window 0 as in run-socketio.sh.
launch() {
  SRV_PORT=$(free_port)
  mkdir -p "$WORK/herald-data"
  start_server herald "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$SRV_PORT" --test-handlers \
    --recovery-window 0 --jwt-secret "$SECRET" --api-key "$API_KEY" --json-rate 1000000 \
    --json-burst 1000000 --max-connections $((RECEIVERS + 1000)) --log-level warn \
    --data-dir "$WORK/herald-data" --shutdown-grace 1000
  wait_port "$SRV_PORT" "$SRV_PID" || { log "herald did not start:"; tail -n 5 "$WORK/herald.log" >&2; exit 1; }
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
  run_gen herald "$k" "$mode" --port "$SRV_PORT" --connections "$RECEIVERS" --window "$w" --size "$SIZE" "$@"
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
launch
for w in $WINDOWS; do
  fanout "sio$w" "$w" sio-fanout
  fanout "ws$w" "$w" json-fanout --token "$TOKEN"
  fanout "api$w" "$w" json-fanout --token "$TOKEN" --via-api --api-key "$API_KEY"
done
stop_server "$SRV_PID"

# ---- report ------------------------------------------------------------------------------
rel() { # KEY K: CPU per delivery relative to the Socket.IO fan-out with the same window
  awk -v a="${R[$1,cpu]:-}" -v b="${R[sio$2,cpu]:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
verdict() { # KEY K
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
row() { # KEY K LABEL
  local r
  r=$(fmt_int "$(val "$1$2" rate)")
  gt "${R[$1$2,gen]:-}" 90 && r="$r ⁽ᵍ⁾"
  echo "| $3 | $2 | ${R[$1$2,members]:-n/a} | $r | $(val "$1$2" cpu) | $(val "$1$2" p50) | $(val "$1$2" p99) | $(rel "$1$2" "$2") |"
}

DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
OUT="bench/results/json-$DATE.md"
{
  echo "# Herald fan-out: JSON protocol vs Socket.IO ($DATE)"
  echo
  echo "- commit $(commit_line); $(machine_line)"
  echo "- one Herald process (\`serve --test-handlers --recovery-window 0 --json-rate 1000000 --json-burst 1000000\`) pinned to CPU $SERVER_CPU, generator to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run"
  echo "- $RECEIVERS receivers each; payload a $SIZE-character string; K publishes in flight (released by the publisher's own copy; over the API by the HTTP answer)"
  echo "- JSON: subscribers of topic \`bench\` (admin JWT in \`?token=\`); publisher a JSON connection (admin token, also subscribed) sending \`{\"type\":\"data\",\"topic\":\"bench\",...}\`, or \`POST /api/v1/publish\` on one keep-alive connection (pipelined)"
  echo "- Socket.IO: receivers on \`/\`, a publisher emitting \`broadcast\` (\`io.emit('msg', arg)\`)"
  echo
  echo "| publisher | K | copies per publish | deliveries/s | server CPU µs/delivery | p50 µs | p99 µs | CPU vs Socket.IO |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for w in $WINDOWS; do
    row sio "$w" "Socket.IO \`broadcast\` emit"
    row ws "$w" "JSON over /api/v1/ws"
    row api "$w" "JSON, POST /api/v1/publish"
  done
  echo
  for key in "${!R[@]}"; do
    if [[ $key == *,gen ]] && gt "${R[$key]}" 90; then
      echo "⁽ᵍ⁾ the generator used over 90% of its core: the rate is (also) its limit; CPU µs per delivery still holds."
      echo
      break
    fi
  done
  echo "| target: JSON CPU per delivery within 10% of Socket.IO's (ratio ≤ 1.10) | ratio | |"
  echo "|---|---:|---|"
  for w in $WINDOWS; do
    echo "| publisher over /api/v1/ws, K=$w | $(rel "ws$w" "$w") | $(verdict "ws$w" "$w") |"
    echo "| publisher over POST /api/v1/publish, K=$w | $(rel "api$w" "$w") | $(verdict "api$w" "$w") |"
  done
  echo
  echo "Checks (clean, errors 0, every copy delivered, the server's counts matching; Herald's frame"
  echo "counter leaves out the close frame it returns to a client's close, so frames out = frames in − connections):"
  echo
  echo "| check | K | Socket.IO | JSON ws | JSON API |"
  echo "|---|---:|---|---|---|"
  for w in $WINDOWS; do
    echo "| run | $w | $(clean "sio$w"), $(val "sio$w" attempts) attempt(s) | $(clean "ws$w"), $(val "ws$w" attempts) attempt(s) | $(clean "api$w"), $(val "api$w" attempts) attempt(s) |"
    echo "| server / generator CPU % of a core | $w | $(val "sio$w" srvpct) / $(val "sio$w" gen) | $(val "ws$w" srvpct) / $(val "ws$w" gen) | $(val "api$w" srvpct) / $(val "api$w" gen) |"
    echo "| copies received | $w | $(val "sio$w" copies) | $(val "ws$w" copies) | $(val "api$w" copies) |"
    echo "| server's delivery counts | $w | n/a | $(val "ws$w" reported) | $(val "api$w" reported) |"
    echo "| WebSocket frames | $w | $(val "sio$w" frames) | $(val "ws$w" frames) | $(val "api$w" frames) |"
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
