#!/usr/bin/env bash
# sysbench from Debian's package, for the benchmarks that load MariaDB with it (`npm run bench -- sysbench`,
# `npm run bench -- backup`). Idempotent: a no-op when sysbench is on PATH.
#
#   compose/local/sysbench.sh install      apt-get install sysbench if it is missing (root)
#   compose/local/sysbench.sh version      the installed version (`sysbench --version`)
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
  if bin sysbench >/dev/null; then return; fi
  apt_install "sysbench not found" sysbench
  bin sysbench >/dev/null || die "apt-get install sysbench did not provide sysbench"
}

case "${1:-}" in
  install) install ;;
  version) "$(bin sysbench)" --version ;;
  *) usage "install | version" ;;
esac
