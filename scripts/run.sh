#!/usr/bin/env bash
# Builds Herald (release) and runs it on its embedded defaults: port 3000, data in ./data, pages
# from ./web — on the loopback address unless --host is given, so the demo accounts of a first
# start (admin / admin123, user / user123) are never reachable from the network. Installs what it
# needs first. Extra arguments go to `herald serve` (see --help). Before it starts, it says which
# accounts the data dir holds and how to change them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
ulimit -n 20000 2>/dev/null || true

data_dir=${HERALD_DATA_DIR:-./data} host_given=${HERALD_HOST:+yes}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --data-dir) data_dir=${args[i + 1]:-$data_dir} ;;
    --data-dir=*) data_dir=${args[i]#--data-dir=} ;;
    --host | --host=*) host_given=yes ;;
  esac
done
[ -n "$host_given" ] || args=(--host 127.0.0.1 "${args[@]}")

echo "----------------------------------------------------------------------------------------"
if [ -f "$data_dir/herald.db" ]; then
  echo "Accounts in $data_dir (state 'demo' = a demo password never changed, refused beyond loopback):"
  ./build/herald user list --data-dir "$data_dir" 2>/dev/null | sed 's/^/  /'
else
  echo "No accounts yet in $data_dir. On loopback the first start creates the demo accounts"
  echo "  admin / admin123 (console: /admin/login.html)   user / user123 (customer chat: /chat.html)"
  echo "which are refused as soon as the server listens beyond loopback, until their password changes."
fi
echo "Change a password:     build/herald user passwd NAME --data-dir $data_dir"
echo "Add your own admin:    build/herald user add NAME --role admin --display-name 'Your Name' --data-dir $data_dir"
echo "Remove the demo ones:  build/herald user delete admin --data-dir $data_dir  (and: delete user)"
[ -n "$host_given" ] || echo "Listening on 127.0.0.1 only; serve the network with: scripts/run.sh --host 0.0.0.0"
echo "----------------------------------------------------------------------------------------"
exec ./build/herald serve "${args[@]}"
