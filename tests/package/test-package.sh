#!/usr/bin/env bash
# The Debian package, installed for real on this machine: builds it (scripts/package-deb.sh), installs
# it with `dpkg -i` (root; the maintainer scripts run: the herald user, /var/lib/herald, the unit
# enabled), checks the files, the conffile and the unit (`systemd-analyze verify`), then runs the
# packaged binary as the herald user with the packaged config, on a free loopback port — systemd does
# not run here (PID 1 is not systemd), so the unit is not started; what it would run is. It checks
# /health, a page, both client bundles, /metrics and an admin made with `herald user add` as the
# unit's user signing in; stops it with SIGTERM (exit 0), removes the package (`dpkg -r`: the
# conffile stays) and purges it (`dpkg --purge`: config and data gone). Idempotent: a package left
# by an earlier run is purged first, and everything is undone on failure too.
#   tests/package/test-package.sh [HERALD_BINARY]   (default: the package script builds one)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN_ARG=()
[ $# -ge 1 ] && BIN_ARG=(--binary "$1")

if [ "$(id -u)" -ne 0 ]; then
  echo "test-package: skipped: installing a package needs root"
  exit 0
fi

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# dpkg with the lock: other jobs on this machine may be installing packages; wait for them (5 min)
dpkg_locked() {
  local out rc
  for _ in $(seq 1 150); do
    out=$(dpkg "$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -qiE 'lock|locked' <<<"$out"; then sleep 2; continue; fi
    echo "$out"
    return $rc
  done
  echo "$out"
  return 1
}

installed() { dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q "install ok installed"; }
known() { dpkg-query -W -f='${Status}' herald >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q "not-installed"; }

SERVER_PID="" LOG=$(mktemp)
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  if known; then dpkg_locked --purge herald >/dev/null || echo "cleanup: dpkg --purge herald failed" >&2; fi
  rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if known; then
  step "a herald package is there from an earlier run: purging it first"
  dpkg_locked --purge herald || fail "cannot purge the earlier herald package"
fi

step "build the package"
DEB=$(bash scripts/package-deb.sh "${BIN_ARG[@]}" | tail -1) || fail "scripts/package-deb.sh failed"
[ -f "$DEB" ] || fail "no package at $DEB"
echo "$DEB ($(du -k "$DEB" | cut -f1) KiB)"
dpkg-deb -I "$DEB" | grep -E '^ (Package|Version|Depends):'

step "dpkg -i"
dpkg_locked -i "$DEB" || fail "dpkg -i failed"
installed || fail "herald is not installed after dpkg -i"
for f in /usr/bin/herald /etc/herald/herald.conf /lib/systemd/system/herald.service /usr/share/herald/web/index.html \
         /usr/share/herald/clients/socket.io-client/socket.io.min.js /usr/share/herald/clients/js/herald-client.js \
         /usr/share/doc/herald/grafana-herald.json /usr/share/herald/admin-ui/index.html; do
  [ -f "$f" ] || fail "$f not installed"
done
dpkg-query -W -f='${Conffiles}\n' herald | grep -q '/etc/herald/herald.conf' || fail "herald.conf is not a conffile"
getent passwd herald >/dev/null || fail "postinst made no herald user"
[ "$(stat -c %U:%a /var/lib/herald)" = "herald:750" ] || fail "/var/lib/herald is $(stat -c %U:%a /var/lib/herald), not herald:750"
[ "$(stat -c %G:%a /etc/herald/herald.conf)" = "herald:640" ] || fail "herald.conf is $(stat -c %G:%a /etc/herald/herald.conf), not group herald, 640"
[ -L /etc/systemd/system/multi-user.target.wants/herald.service ] || fail "the unit was not enabled"
/usr/bin/herald version || fail "the packaged binary does not run"

if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify"
  out=$(systemd-analyze verify /lib/systemd/system/herald.service 2>&1); rc=$?
  # without a running systemd, verify may only complain about its own missing bus
  echo "$out" | grep -vE 'Failed to (connect|create bus)|System has not been booted' | grep -E '\S' && fail "systemd-analyze verify: $out"
  [ $rc -eq 0 ] || echo "$out" | grep -qE 'Failed to (connect|create bus)|System has not been booted' || fail "systemd-analyze verify exited $rc"
fi

if [ -d /run/systemd/system ]; then
  echo "note: systemd runs here; the unit itself is left to the operator (this test runs the binary directly)"
else
  echo "note: systemd does not run here (PID 1: $(ps -o comm= -p 1)): the unit's ExecStart is run by hand"
fi

step "run the packaged binary as herald with /etc/herald/herald.conf on a free loopback port"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u herald -- /usr/bin/herald user add opsadmin --role admin --password 'Packaged-Admin-1' \
  --config /etc/herald/herald.conf || fail "herald user add as the herald user failed"
cd /var/lib/herald
# setpriv execs the server itself (runuser would stay its parent and turn SIGTERM into exit 143)
setpriv --reuid herald --regid herald --init-groups -- /usr/bin/herald serve --config /etc/herald/herald.conf --port "$PORT" --shards 2 --admin-ui >"$LOG" 2>&1 &
SERVER_PID=$!
cd "$ROOT"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG"; fail "the packaged server exited"; }
  sleep 0.1
done
health=$(curl -fsS "http://127.0.0.1:$PORT/health") || { cat "$LOG"; fail "/health did not answer"; }
grep -q '"status":"ok"' <<<"$health" || fail "/health: $health"
echo "/health: ${health:0:80}..."
get() { curl -fsS "http://127.0.0.1:$PORT$1"; } # the body (no early-closing pipe: pipefail)
grep -qi '<html' <<<"$(get /)" || fail "the index page"
grep -qi 'login' <<<"$(get /admin/login.html)" || fail "the admin sign-in page"
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/socket.io/socket.io.min.js" || fail "the socket.io-client bundle"
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/herald-client.js" || fail "the JSON-protocol client"
grep -qi '<html' <<<"$(get /socket-admin/)" || fail "the Admin UI from /usr/share/herald/admin-ui"
grep -q '^herald_http_request_duration_seconds_count ' <<<"$(get /metrics)" || fail "/metrics"
login=$(curl -sS -H 'Content-Type: application/json' -d '{"username":"opsadmin","password":"Packaged-Admin-1"}' \
  "http://127.0.0.1:$PORT/api/v4/auth/login")
grep -q '"token"' <<<"$login" || fail "the admin made with herald user add cannot sign in: $login"
demo=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"username":"admin","password":"admin123"}' \
  "http://127.0.0.1:$PORT/api/v4/auth/login")
[ "$demo" = 401 ] || fail "the packaged config must make no demo accounts (sign-in as admin: $demo)"
[ "$(stat -c %U /var/lib/herald/herald.db)" = herald ] || fail "the database is not the herald user's"
grep -q 'msg="listening"' "$LOG" || fail "no listening line in the log"

step "SIGTERM"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
[ $rc -eq 0 ] || { cat "$LOG"; fail "the packaged server exited $rc on SIGTERM"; }

step "dpkg -r (the conffile stays), then dpkg --purge"
dpkg_locked -r herald || fail "dpkg -r failed"
[ ! -e /usr/bin/herald ] || fail "/usr/bin/herald left after dpkg -r"
[ -f /etc/herald/herald.conf ] || fail "dpkg -r removed the conffile"
dpkg_locked --purge herald || fail "dpkg --purge failed"
[ ! -e /etc/herald ] || fail "/etc/herald left after purge"
[ ! -e /var/lib/herald ] || fail "/var/lib/herald left after purge"
[ ! -e /etc/systemd/system/multi-user.target.wants/herald.service ] || fail "the unit's enablement left after purge"
echo "package test: ok"
