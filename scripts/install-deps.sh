#!/usr/bin/env bash
# Installs every Debian and npm dependency Herald needs to build, run and test.
# Idempotent: packages already present are skipped; safe to run on every build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only what the build, `scripts/run.sh` and `scripts/test.sh` use (README "What install-deps.sh installs").
APT_PACKAGES=(
  # build: compiler, CMake, pkg-config; clang and its runtime for the ASan/UBSan, TSan and libFuzzer builds
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # the libraries herald links (CMakeLists.txt pkg_check_modules) and cmocka for the unit tests
  libuv1-dev libhttp-parser-dev libjansson-dev libjwt-dev libssl-dev zlib1g-dev
  libsqlite3-dev libpq-dev libhiredis-dev libmsgpack-dev libsodium-dev libcmocka-dev
  # sd_notify readiness for the systemd unit (optional at build time, packaging/herald.service)
  libsystemd-dev
  # the Python clients of the interop tests (python-socketio's transports need websocket-client and requests)
  python3-websockets python3-websocket python3-socketio python3-requests
  # the cluster and PostgreSQL store tests start their own redis-server and PostgreSQL; the e2e tests drive
  # Debian's Chromium (trusting the TLS test CA through an NSS database: libnss3-tools), and its
  # screenshots of the Chinese pages need a CJK font
  redis-server postgresql chromium libnss3-tools fonts-noto-cjk
  # curl: the TLS tests' https client and the benchmarks' HTTP calls; procps: ps in the package test
  curl procps
)
# Node.js: keep whatever node/npm the machine has (e.g. NodeSource); Debian's only if absent.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages (versions pinned in package.json / package-lock.json).
if [ -f package.json ]; then
  if [ ! -d node_modules ] || [ package.json -nt node_modules/.install-stamp ] || \
     { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.install-stamp ]; }; then
    echo "install-deps: npm packages"
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
    else npm install --no-audit --no-fund --loglevel=error; fi
    touch node_modules/.install-stamp
  fi
fi
