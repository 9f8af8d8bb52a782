#!/usr/bin/env bash
# Builds Herald (release) and runs it on its embedded defaults: port 3000, data in ./data, pages
# from ./web. Installs what it needs first. Extra arguments go to `herald serve` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
mkdir -p data
ulimit -n 20000 2>/dev/null || true
exec ./build/herald serve "$@"
