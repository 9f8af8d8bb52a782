#!/usr/bin/env bash
# Cluster fan-out benchmark: Socket.IO broadcasts through Redis with 1, 2 and 3 nodes, Herald nodes
# (`serve --test-handlers --redis-url`) and, the same, Node.js socket.io 4.7.2 +
# @socket.io/redis-adapter 8.3.0 nodes (bench/sio-redis-server.js), driven by the same generator
# (herald-loadgen sio-fanout, the receivers spread evenly over the nodes, the publisher on node 1,
# a broadcast leaving the window once every receiver of every node has it). The script starts its
# own redis-server (free port, no persistence) and one cluster at a time, and stops every process
# it started, by pid, on exit. Figures: deliveries/s; server CPU µs per delivery (all nodes, from
# /proc over the measured window), on the publisher's node and on the others (the deliveries that
# crossed Redis); Redis CPU apart; Redis commands per broadcast from `INFO commandstats` deltas
# (PUBLISH must be 1 per broadcast whatever the recipients). Prints a markdown table and writes
# it to bench/results/cluster-<date>.md. See bench/README.md.
#
# Usage: bench/run-cluster.sh
#
# Environment (besides those of bench/lib.sh: BENCH_DURATION (5 here), BENCH_WARMUP (1 here),
# BENCH_BUILD_DIR, BENCH_SKIP_BUILD, BENCH_SERVER_CPU, BENCH_LOADGEN_CPU, BENCH_QUIET_WAIT,
# BENCH_REPEAT): BENCH_SIZE (payload characters, 32), BENCH_FANOUT_RECEIVERS (receivers over all
# nodes, 1000), BENCH_WINDOWS (one run per number of broadcasts in flight, "1 16"),
# BENCH_CLUSTER_NODES (node counts, "1 2 3"), BENCH_SERVERS ("node herald"),
# BENCH_CLUSTER_CPUS (the cores of every node and of Redis, BENCH_SERVER_CPU),
# BENCH_CLUSTER_SHARDS (Herald's --shards per node, 1).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BENCH_DURATION:=5}" "${BENCH_WARMUP:=1}"
export BENCH_DURATION BENCH_WARMUP
SIZE=${BENCH_SIZE:-32}
RECEIVERS=${BENCH_FANOUT_RECEIVERS:-1000}
WINDOWS=${BENCH_WINDOWS:-"1 16"}
NODE_COUNTS=${BENCH_CLUSTER_NODES:-"1 2 3"}
SERVERS=${BENCH_SERVERS:-"node herald"}
HERALD_SHARDS=${BENCH_CLUSTER_SHARDS:-1}

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init run-cluster
[ $# -eq 0 ] || { echo "usage: bench/run-cluster.sh (settings in BENCH_* variables)" >&2; exit 2; }
CLUSTER_CPUS=${BENCH_CLUSTER_CPUS:-$SERVER_CPU}
for n in $NODE_COUNTS; do
  [[ $n =~ ^[1-9]$ ]] || { echo "BENCH_CLUSTER_NODES: \"$n\" is not a node count (1-9)" >&2; exit 2; }
done
for k in $WINDOWS; do
  [[ $k =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_WINDOWS: \"$k\" is not a window (1, 16, ...)" >&2; exit 2; }
done
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  log "redis-server and redis-cli are needed"
  exit 1
fi

bench_build
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- Redis: one for the whole run, each cluster on its own prefix ---------------------------
REDIS_PORT=$(free_port)
SRV_CPUS=$CLUSTER_CPUS start_server redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
  --save '' --appendonly no --daemonize no
REDIS_PID=$SRV_PID
wait_port "$REDIS_PORT" "$REDIS_PID" || { log "redis-server did not start:"; tail -n 5 "$WORK/redis.log" >&2; exit 1; }
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# redis_calls: "publish=N all=M pub_us=U cpu_us=C t_us=T" from INFO commandstats (all: every
# command but INFO itself; pub_us: µs Redis spent executing PUBLISH, handing each message to
# its subscribers included) and INFO cpu (Redis's own user + system time, in µs: finer than
# /proc's 10 ms ticks), T the wall clock in µs.
redis_calls() {
  { rcli INFO commandstats; rcli INFO cpu; } | tr -d '\r' | awk -F'[:,=]' -v t="$(date +%s%6N)" '
    /^cmdstat_/ { name = substr($1, 9); calls = $3
                  if (name == "publish") { p += calls; u += $5 }
                  if (name != "info") a += calls }
    /^used_cpu_(sys|user):/ { c += $2 }
    END { printf "publish=%d all=%d pub_us=%d cpu_us=%.0f t_us=%s\n", p, a, u, c * 1e6, t }'
}
# delta AFTER BEFORE: "k=after-before ..." for every field of two redis_calls lines.
delta() {
  local k out=""
  for k in publish all pub_us cpu_us t_us; do out="$out $k=$(( $(field "$1" "$k") - $(field "$2" "$k") ))"; done
  echo "${out# }"
}
# user_sys PID...: "utime stime" (clock ticks) summed over the processes.
user_sys() {
  local pid stat u=0 s=0
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r _ _ _ _ _ _ _ _ _ _ _ ut st _ <<<"$stat"
    u=$((u + ut)) s=$((s + st))
  done
  echo "$u $s"
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# Redis's own CPU when nothing is published (its timers: serverCron, 10 times a second), per
# second, so that the figure per broadcast leaves it out.
rb=$(redis_calls); sleep 2; ra=$(redis_calls)
REDIS_IDLE=$(awk -v c="$(( $(field "$ra" cpu_us) - $(field "$rb" cpu_us) ))" -v t="$(( $(field "$ra" t_us) - $(field "$rb" t_us) ))" \
  'BEGIN { printf "%.0f", (t > 0 ? c * 1e6 / t : 0) }')
log "redis-server idle: $REDIS_IDLE µs of CPU per second"

# ---- clusters ----------------------------------------------------------------------------
NODE_PIDS=()  # the running cluster's nodes, node 1 first
NODE_PORTS=()

# probe: 0 once a broadcast from node 1 reaches a socket on every node (every node subscribed).
probe() {
  local ports out
  ports=$(IFS=,; echo "${NODE_PORTS[*]}")
  for _ in $(seq 1 20); do
    out=$("$LOADGEN" sio-fanout --port "$ports" --connections "${#NODE_PORTS[@]}" --window 1 --window-all \
      --warmup 0 --duration 0.3 --close-timeout 1 --quiet 2>/dev/null | tail -n 1) || true
    [ "$(jget "$out" errors)" = 0 ] && [ "$(jget "$out" drained)" = true ] && [ "$(jget "$out" broadcasts)" != 0 ] && return 0
    sleep 0.5
  done
  return 1
}

# launch SERVER N: starts N nodes (herald or node) on prefix SERVER-N, all pinned to
# CLUSTER_CPUS; sets NODE_PIDS, NODE_PORTS; 1 if the cluster does not work.
launch() {
  local server=$1 n=$2 i port name
  NODE_PIDS=() NODE_PORTS=()
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    name="$server$n-node$i"
    case $server in
      node) SRV_CPUS=$CLUSTER_CPUS start_server "$name" node bench/sio-redis-server.js "$port" "$REDIS_URL" "bench-$server-$n" ;;
      herald)
        mkdir -p "$WORK/$name-data"
        SRV_CPUS=$CLUSTER_CPUS start_server "$name" "$BUILD_DIR/herald" serve --host 127.0.0.1 --port "$port" \
          --shards "$HERALD_SHARDS" --test-handlers --recovery-window 0 --eio-handshake-rate 0 --log-level warn \
          --data-dir "$WORK/$name-data" --shutdown-grace 1000 \
          --redis-url "$REDIS_URL" --redis-prefix "bench-$server-$n" ;;
    esac
    NODE_PIDS+=("$SRV_PID")
    NODE_PORTS+=("$port")
    if ! wait_port "$port" "$SRV_PID"; then
      log "$name did not start listening on $port:"; tail -n 5 "$WORK/$name.log" >&2; return 1
    fi
  done
  if ! probe; then
    log "$server with $n nodes: a broadcast from node 1 does not reach every node"; return 1
  fi
}

stop_cluster() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do stop_server "$pid"; done
  NODE_PIDS=() NODE_PORTS=()
}

# Node's /stats broadcasts (summed over the nodes; Herald: frames out from /metrics), one line.
cluster_counters() {
  local port sum=0 v
  for port in "${NODE_PORTS[@]}"; do
    if [ "$CUR" = node ]; then
      v=$(curl -s --max-time 5 "http://127.0.0.1:$port/stats" | sed -n 's/.*"broadcasts":\([0-9]*\).*/\1/p')
    else
      v=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk '/^herald_ws_frames_total\{direction="out"\}/ { print $2 }')
    fi
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# run_cluster_gen NAME TAG K: one fan-out run against the running cluster, repeated (up to
# REPEAT more times) while other processes took more than 10% of a core; the least disturbed
# attempt counts. Sets GEN_JSON, GEN_ATTEMPTS, GEN_REDIS (redis_calls delta), GEN_COUNTER
# (cluster_counters delta), GEN_US_FIRST / GEN_US_REST ("utime stime" deltas of node 1 and of the
# other nodes, whole run).
run_cluster_gen() {
  local name=$1 tag=$2 k=$3 json attempt other best_other="" rb ra cb ca ports pids f0 f1 r0 r1
  ports=$(IFS=,; echo "${NODE_PORTS[*]}")
  pids=$(IFS=,; echo "${NODE_PIDS[*]}")
  GEN_JSON="" GEN_ATTEMPTS=0
  for attempt in $(seq 0 "$REPEAT"); do
    wait_quiet
    log "$name: $tag, ${WARMUP}+${DURATION} s"
    cb=$(cluster_counters)
    rb=$(redis_calls)
    f0=$(user_sys "${NODE_PIDS[0]}") r0=$(user_sys "${NODE_PIDS[@]:1}")
    taskset -c "$LOADGEN_CPU" "$LOADGEN" sio-fanout --port "$ports" --connections "$RECEIVERS" --window "$k" \
      --window-all --size "$SIZE" --warmup "$WARMUP" --duration "$DURATION" --server-pid "$pids" \
      --aux-pid "$REDIS_PID" --quiet >"$WORK/$name-$tag.out" 2>"$WORK/$name-$tag.err" || true
    ra=$(redis_calls)
    f1=$(user_sys "${NODE_PIDS[0]}") r1=$(user_sys "${NODE_PIDS[@]:1}")
    ca=$(cluster_counters)
    GEN_ATTEMPTS=$((attempt + 1))
    sed '$d' "$WORK/$name-$tag.out" | sed "s/^/  /" >&2
    json=$(tail -n 1 "$WORK/$name-$tag.out")
    other=$(jget "$json" other_cpu_pct)
    if [ -z "$GEN_JSON" ] || awk -v a="${other:-0}" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
      GEN_JSON=$json best_other=${other:-0}
      GEN_REDIS=$(delta "$ra" "$rb")
      GEN_US_FIRST="$(( ${f1% *} - ${f0% *} )) $(( ${f1#* } - ${f0#* } ))"
      GEN_US_REST="$(( ${r1% *} - ${r0% *} )) $(( ${r1#* } - ${r0#* } ))"
      GEN_COUNTER=$((ca - cb))
    fi
    awk -v a="${other:-0}" 'BEGIN { exit !(a > 10) }' || break
    [ "$attempt" = "$REPEAT" ] || log "$name: other processes took ${other}% of a core; running again"
  done
  echo "$GEN_JSON" >>"$WORK/raw.jsonl"
}

# jarr JSON KEY: the numbers of a flat array field, space-separated ("" if absent).
jarr() { sed -n "s/.*\"$2\":\[\([^]]*\)\].*/\1/p" <<<"$1" | tr ',' ' '; }
# calc EXPR: awk arithmetic on numbers given by the caller (through num, so never empty).
calc() { awk "BEGIN { $1 }"; }
# num VALUE: VALUE, or 0 when it is empty.
num() { echo "${1:-0}"; }

declare -A R # R[server-N,K_key] = value

# keep NAME K: figures of the kept run under R[NAME,K_*].
keep() {
  local name=$1 k=$2 j=$GEN_JSON n cpus ports dur msgs bc first_cpu rest_cpu first_del rest_del
  R[$name,${k}_rate]=$(jget "$j" msgs_per_s)
  R[$name,${k}_p99]=$(jget "$j" p99_us)
  R[$name,${k}_cpu]=$(jget "$j" server_cpu_us_per_msg)
  dur=$(num "$(jget "$j" duration_s)")
  msgs=$(num "$(jget "$j" messages)")
  bc=$(num "$(jget "$j" broadcasts)")
  R[$name,${k}_srvpct]=$(calc "if ($dur > 0) printf \"%.0f\", 100 * $(num "$(jget "$j" server_cpu_s)") / $dur")
  read -ra cpus <<<"$(jarr "$j" server_cpu_s_each)"
  read -ra ports <<<"$(jarr "$j" deliveries_by_port)"
  [ ${#cpus[@]} -gt 0 ] || cpus=("$(jget "$j" server_cpu_s)")
  [ ${#ports[@]} -gt 0 ] || ports=("$msgs")
  R[$name,${k}_pernode]=$(IFS=/; echo "${ports[*]}")
  first_cpu=${cpus[0]:-0} first_del=${ports[0]:-0} rest_cpu=0 rest_del=0
  for ((n = 1; n < ${#cpus[@]}; n++)); do
    rest_cpu=$(calc "print $rest_cpu + ${cpus[$n]}")
    rest_del=$((rest_del + ${ports[$n]:-0}))
  done
  R[$name,${k}_cpu1]=$(calc "if ($first_del > 0) printf \"%.3f\", $first_cpu * 1e6 / $first_del")
  R[$name,${k}_cpux]=$(calc "if ($rest_del > 0) printf \"%.3f\", $rest_cpu * 1e6 / $rest_del")
  R[$name,${k}_cpueach]=$(IFS=/; echo "${cpus[*]}")
  R[$name,${k}_redis_pct]=$(calc "t = $(num "$(field "$GEN_REDIS" t_us)"); if (t > 0) printf \"%.1f\", 100 * $(num "$(field "$GEN_REDIS" cpu_us)") / t")
  R[$name,${k}_redis_bc]=$(calc "c = $(num "$(field "$GEN_REDIS" cpu_us)") - $REDIS_IDLE * $(num "$(field "$GEN_REDIS" t_us)") / 1e6;
    if ($bc > 0) printf \"%.2f\", (c > 0 ? c : 0) / $bc")
  R[$name,${k}_redis_pub]=$(calc "if ($bc > 0) printf \"%.2f\", $(num "$(field "$GEN_REDIS" pub_us)") / $bc")
  # the kernel's share of the CPU of the nodes that receive from Redis (node 1 when it is alone)
  local us=$GEN_US_REST
  [ ${#cpus[@]} -gt 1 ] || us=$GEN_US_FIRST
  R[$name,${k}_sys]=$(calc "u = ${us% *}; s = ${us#* }; if (u + s > 0) printf \"%.0f\", 100 * s / (u + s)")
  R[$name,${k}_pub]=$(calc "if ($bc > 0) printf \"%.3f\", $(num "$(field "$GEN_REDIS" publish)") / $bc")
  R[$name,${k}_cmds]=$(calc "if ($bc > 0) printf \"%.3f\", $(num "$(field "$GEN_REDIS" all)") / $bc")
  R[$name,${k}_redis_raw]="$GEN_REDIS over $(jget "$j" broadcasts) broadcasts"
  R[$name,${k}_err]=$(jget "$j" errors)
  R[$name,${k}_other]=$(jget "$j" other_cpu_pct)
  R[$name,${k}_gen]=$(jget "$j" loadgen_cpu_pct)
  R[$name,${k}_attempts]=$GEN_ATTEMPTS
  R[$name,${k}_check]="$(jget "$j" deliveries_total) of $(jget "$j" deliveries_expected) copies, drained $(jget "$j" drained); per node in the window ${R[$name,${k}_pernode]}"
  if [ "$CUR" = node ]; then
    R[$name,${k}_server]="$GEN_COUNTER broadcast events (gen: $(jget "$j" broadcasts))"
  else
    R[$name,${k}_server]="$GEN_COUNTER frames out (gen: $(jget "$j" frames_in) in)"
  fi
}

# ---- runs --------------------------------------------------------------------------------
# The loopback floor at the fan-out's socket count (bench/floor.c): K=1 writes one frame per write.
if [ "${BENCH_FLOOR:-1}" = 1 ]; then
  run_floor $((RECEIVERS + 1)) 1
  run_floor $((RECEIVERS + 1)) 16
fi
RAN=""
for s in $SERVERS; do
  [ "$s" = herald ] && [ "$HERALD_OK" != 1 ] && { log "herald unavailable: $HERALD_WHY"; continue; }
  for n in $NODE_COUNTS; do
    CUR=$s
    if ! launch "$s" "$n"; then
      stop_cluster
      [ "$s" = herald ] && { HERALD_OK=0; HERALD_WHY="its cluster of $n nodes did not work"; }
      log "$s with $n nodes unavailable"
      continue
    fi
    for k in $WINDOWS; do
      run_cluster_gen "$s-$n" "k$k" "$k"
      keep "$s-$n" "$k"
    done
    stop_cluster
    RAN="$RAN $s-$n"
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ------------------------------------------------------------------------------
val() { local v=${R[$1,$2]:-}; echo "${v:-n/a}"; }
ratio_of() {
  awk -v h="${R[$1,$3]:-}" -v n="${R[$2,$3]:-}" \
    'BEGIN { if (h == "" || n == "" || n + 0 == 0) print "n/a"; else printf "%.3f\n", h / n }'
}
with() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
header() {
  local h="| metric" l="|---" n
  for n in $NODE_COUNTS; do
    with herald && { h="$h | herald, $n"; l="$l|---:"; }
    with node && { h="$h | node, $n"; l="$l|---:"; }
    with herald && with node && { h="$h | herald/node, $n"; l="$l|---:"; }
  done
  echo "$h |"
  echo "$l|"
}
# row LABEL KEY [INT]: one row, per node count: herald, node, ratio.
row() {
  local key=$2 int=${3:-0} line="| $1" n v
  for n in $NODE_COUNTS; do
    for s in herald node; do
      with "$s" || continue
      v=$(val "$s-$n" "$key")
      [ "$int" = 1 ] && [ "$v" != n/a ] && v=$(printf "%.0f" "$v")
      [[ $key == *_rate ]] && [ "$v" != n/a ] && gt "${R[$s-$n,${key%_rate}_gen]:-}" 90 && v="$v ⁽ᵍ⁾"
      line="$line | $v"
    done
    with herald && with node && line="$line | $(ratio_of "herald-$n" "node-$n" "$key")"
  done
  echo "$line |"
}
clean() {
  local e=${R[$1,${2}_err]:-} o=${R[$1,${2}_other]:-}
  if [ -z "$e" ]; then echo "n/a"
  elif [ "$e" != 0 ]; then echo "errors $e"
  elif gt "$o" 10; then echo "disturbed (other ${o}%)"
  else echo "clean (other ${o}%)"
  fi
}
BUSY=0
for key in "${!R[@]}"; do [[ $key == *_other ]] && gt "${R[$key]}" 10 && BUSY=1; done

DATE=$(date +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
OUT="bench/results/cluster-$DATE.md"
{
  echo "# Cluster fan-out through Redis: Herald vs Node socket.io 4.7.2 + @socket.io/redis-adapter 8.3.0 ($DATE)"
  echo
  echo "- commit $(commit_line); $(machine_line); $(redis-server --version | sed 's/ sha=.*//')"
  echo "- load average at the start: $LOAD_START; at the end: $LOAD_END"
  [ "$BUSY" = 1 ] && echo "- **busy machine**: other processes took over 10% of a core during at least one run (see the checks); the figures are disturbed"
  echo "- every node and redis-server pinned to CPU $CLUSTER_CPUS (\`taskset -c\`), the generator (herald-loadgen) to CPU $LOADGEN_CPU; ${WARMUP} s warm-up + ${DURATION} s measured per run; one redis-server (no persistence) for the run, each cluster on its own prefix"
  echo "- herald: \`serve --shards $HERALD_SHARDS --test-handlers --recovery-window 0 --redis-url … --redis-prefix …\`; node: \`bench/sio-redis-server.js\` (socket.io 4.7.2, @socket.io/redis-adapter 8.3.0 on redis 4.x clients, perMessageDeflate off, recovery off)"
  echo "- fan-out: $RECEIVERS receivers spread evenly over the nodes (connection i to node i mod N) + 1 publisher on node 1 emitting \`broadcast\` (\`io.emit('msg')\`: every socket of every node), a $SIZE-character payload; $((RECEIVERS + 1)) copies per broadcast, all counted; K broadcasts in flight, one leaving the window once **every** receiver (on every node) has it (\`--window-all\`). With N nodes, (N−1)/N of the deliveries cross Redis"
  echo "- server CPU: user + system of every node (all threads), from /proc over the measured window; *node 1* = the publisher's node per delivery to its own sockets (it also reads the publisher's emits and publishes); *other nodes* = the nodes that get each broadcast from Redis, per delivery to their sockets: the cost of a cross-node delivery. Redis CPU is reported apart"
  echo "- Redis commands per broadcast: \`INFO commandstats\` deltas over the whole generator run (warm-up and drain included; INFO itself left out) divided by the broadcasts of the run; Redis CPU µs per broadcast likewise from \`INFO cpu\` (used_cpu_user + used_cpu_sys, µs resolution) minus what it uses idle ($REDIS_IDLE µs per second, measured before the runs), and the time inside PUBLISH from commandstats' usec; Redis CPU % of a core: the same CPU time over the run's wall-clock time"
  echo "- kernel share: system / (user + system) time of the nodes that receive from Redis (node 1 when alone), whole generator run, from /proc"
  echo
  for k in $WINDOWS; do
    echo "## K = $k"
    echo
    header
    row "deliveries/s" "${k}_rate" 1
    row "server CPU µs/delivery, all nodes" "${k}_cpu"
    if [ -n "${R[floor,b1_us_frame]:-}" ]; then
      fb=1; [ "$k" -gt 1 ] && fb=16
      for n in $NODE_COUNTS; do for s in herald node; do
        R[$s-$n,${k}_floor]=$(floor_ratio "${R[$s-$n,${k}_cpu]:-}" "$fb")
      done; done
      row "all nodes' CPU per delivery / loopback floor ($fb frame(s) per write: ${R[floor,b${fb}_us_frame]} µs)" "${k}_floor"
    fi
    row "node 1 CPU µs/delivery (publisher's node)" "${k}_cpu1"
    row "other nodes CPU µs/delivery (crossed Redis)" "${k}_cpux"
    row "server CPU % of a core, all nodes" "${k}_srvpct"
    row "p99 delivery latency µs" "${k}_p99"
    row "other nodes: kernel (system) share of their CPU %" "${k}_sys"
    row "Redis CPU µs/broadcast (its idle timers left out)" "${k}_redis_bc"
    row "Redis µs executing PUBLISH per broadcast" "${k}_redis_pub"
    row "Redis CPU % of a core (whole run)" "${k}_redis_pct"
    row "Redis PUBLISH per broadcast" "${k}_pub"
    row "Redis commands per broadcast (all)" "${k}_cmds"
    echo
  done
  if with herald && with node; then
    echo "| target: Herald's CPU per cross-node delivery ≤ 1/10 of Node's | K | nodes | herald/node | |"
    echo "|---|---:|---:|---:|---|"
    for k in $WINDOWS; do
      for n in $NODE_COUNTS; do
        [ "$n" -gt 1 ] || continue
        r=$(ratio_of "herald-$n" "node-$n" "${k}_cpux")
        if [ "$r" = n/a ]; then v="not measured"
        elif awk -v r="$r" 'BEGIN { exit !(r <= 0.10) }'; then v="**met**"
        else v="**not met** ($(calc "printf \"%.1f\", $r / 0.10")× the target)"; fi
        echo "| other nodes' CPU µs/delivery | $k | $n | $r | $v |"
      done
    done
    echo
  fi
  echo "| target: 1 PUBLISH per broadcast | K | nodes | herald | node |"
  echo "|---|---:|---:|---:|---:|"
  for k in $WINDOWS; do
    for n in $NODE_COUNTS; do
      echo "| PUBLISH calls / broadcasts | $k | $n | $(val "herald-$n" "${k}_pub") | $(val "node-$n" "${k}_pub") |"
    done
  done
  echo
  echo "Checks (should be: clean, errors 0, every copy delivered and drained; Herald's frames out = generator frames in − connections, its close frames aside):"
  echo
  echo "| run | attempts, state | server / generator CPU % | CPU s per node in the window | copies | server counters | Redis commandstats delta |"
  echo "|---|---|---|---|---|---|---|"
  for name in $RAN; do
    for k in $WINDOWS; do
      echo "| $name K=$k | $(val "$name" "${k}_attempts"), $(clean "$name" "$k") | $(val "$name" "${k}_srvpct") / $(val "$name" "${k}_gen") | $(val "$name" "${k}_cpueach") | $(val "$name" "${k}_check") | $(val "$name" "${k}_server") | $(val "$name" "${k}_redis_raw") |"
    done
  done
  echo
  for key in "${!R[@]}"; do
    if [[ $key == *_gen ]] && gt "${R[$key]}" 90; then
      echo "⁽ᵍ⁾ the generator used over 90% of its core: the rate is (also) its limit; CPU µs per delivery still holds."
      echo
      break
    fi
  done
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
