#!/usr/bin/env bash
# Regenerates the configuration table of README.md (between the config-table markers) from
# `herald serve --help-markdown`. tests/interop/readme.test.mjs fails when it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HERALD_BIN:-build/herald}
table=$("$BIN" serve --help-markdown)
python3 - "$table" <<'PY'
import sys, re
table = sys.argv[1] + "\n"
text = open("README.md").read()
new = re.sub(r"(<!-- config-table:begin -->\n).*?(<!-- config-table:end -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
open("README.md", "w").write(new)
PY
