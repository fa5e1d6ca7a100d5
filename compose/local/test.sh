#!/usr/bin/env bash
# The test command: `bash compose/local/test.sh` (also what .ci/run runs).
#
# Works from a fresh Debian machine as root with nothing started; on a prepared machine every setup step is a
# quick no-op. In order:
#   1. Node   - Node >= 22.12 first on PATH (compose/local/env.sh -> node.sh bootstraps Node 24 into .tools/node);
#               apt-get installs npm first if there is none (npm fetches Node 24 and the dependencies).
#   2. deps   - `npm ci`, only when node_modules is missing or does not match package-lock.json (see below);
#               if npm ci refuses the lockfile, `npm install --no-save`, then a check that it matches the lock.
#   3. MariaDB- `compose/local/mariadb.sh install` (apt-get install mariadb-server if mariadbd is missing).
#   4. typecheck (tsc), 5. lint (biome check .), 6. unit tests, 7. integration tests (vitest projects).
# Steps 1-3 stop the script on failure; steps 4-7 all run, and the script exits 1 if any of them failed.
#
# Integration tests start MariaDB instances through compose/local/mariadb.sh. This script gives them their own
# state directory, $TIDEMARK_TEST_RUN_DIR (default .run/test), so it never touches instances you started
# yourself under .run/, and on exit (also on Ctrl-C or failure) it stops every instance in that directory.
# Datadirs are kept between runs; delete .run/test to start from scratch.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 1

export TIDEMARK_RUN_DIR="${TIDEMARK_TEST_RUN_DIR:-$root/.run/test}"
logs="$TIDEMARK_RUN_DIR/logs"
started=$SECONDS
summary=()
failed=()

section() { printf '\n======== %s ========\n' "$*"; }
die() {
  echo "test.sh: $*" >&2
  exit 1
}
strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

cleanup() {
  local rc=$?
  if compgen -G "$TIDEMARK_RUN_DIR/mariadb/*/mariadbd.pid" >/dev/null; then
    section "cleanup: stopping MariaDB instances under $TIDEMARK_RUN_DIR"
    bash compose/local/mariadb.sh stop-all || echo "test.sh: could not stop every instance" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT
trap 'echo "test.sh: terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------------------------------------------------------
section "1/7 Node"
if ! command -v npm >/dev/null; then
  [ "$(id -u)" = 0 ] || die "npm is needed to fetch Node 24 and the dependencies; run as root or: apt-get install npm"
  echo "test.sh: installing npm from Debian (apt-get install npm)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq npm >/dev/null || die "apt-get install npm failed"
fi
# shellcheck source=compose/local/env.sh
. compose/local/env.sh || die "no Node >= 22.12 (compose/local/node.sh failed)"
echo "node $(node -v) ($(command -v node)), npm $(npm -v 2>/dev/null)"

# ---------------------------------------------------------------------------------------------------------------
section "2/7 dependencies"
# The stamp records which package-lock.json (and Node ABI, for native addons) node_modules was installed from;
# `npm ci` deletes node_modules, and with it the stamp. Without a matching stamp, npm's own record of what it
# installed (node_modules/.package-lock.json) is compared with package-lock.json, so a tree that already matches
# (say, installed by hand) is adopted instead of being wiped and downloaded again.
stamp="node_modules/.tidemark-npm-ci.stamp"
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-abi-$(node -p process.versions.modules)"
tree_matches_lock() {
  node -e '
    const fs = require("node:fs");
    const pkgs = (p) => JSON.parse(fs.readFileSync(p, "utf8")).packages ?? {};
    let want, have;
    try { want = pkgs("package-lock.json"); have = pkgs("node_modules/.package-lock.json"); } catch { process.exit(1); }
    for (const [path, p] of Object.entries(want)) {
      if (path === "") continue;
      const h = have[path];
      if (!h) { if (p.optional || p.devOptional) continue; process.exit(1); } // other platforms binaries
      if (h.version !== p.version) process.exit(1);
    }
    for (const path of Object.keys(have)) if (!(path in want)) process.exit(1);
  '
}
if [ ! -d node_modules ]; then
  reason="node_modules is missing"
elif [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  reason=""
elif tree_matches_lock; then
  reason=""
  echo "$want" >"$stamp"
else
  reason="node_modules does not match package-lock.json"
fi
if [ -n "$reason" ]; then
  echo "test.sh: $reason; running npm ci"
  mkdir -p "$logs"
  if ! npm ci --no-audit --no-fund --loglevel=error >"$logs/npm-ci.log" 2>&1; then
    # npm ci also refuses a lockfile that lacks optional packages the registry cannot provide (a mirror without
    # other platforms' binaries). npm install then installs the same locked versions; the check after it makes
    # sure that is what happened, so the tree is still exactly package-lock.json.
    grep -E 'npm error (code|Missing|Invalid)|ERR' "$logs/npm-ci.log" | head -n 12
    echo "test.sh: npm ci failed (full output: $logs/npm-ci.log); installing the locked versions with npm install"
    npm install --no-save --no-audit --no-fund --loglevel=error || die "npm install failed too"
    tree_matches_lock || die "node_modules does not match package-lock.json after npm install; fix the lockfile"
  fi
  echo "$want" >"$stamp"
else
  echo "node_modules matches package-lock.json; npm ci not needed"
fi

# ---------------------------------------------------------------------------------------------------------------
section "3/7 MariaDB"
bash compose/local/mariadb.sh install || die "could not install MariaDB (compose/local/mariadb.sh install)"
mariadbd_bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
"$mariadbd_bin" --version
echo "instance state for this run: $TIDEMARK_RUN_DIR"
mkdir -p "$logs"

# ---------------------------------------------------------------------------------------------------------------
# step TITLE LOGNAME COMMAND...: runs COMMAND, echoing it, teeing its output to $logs/LOGNAME.log.
step() {
  local title="$1" log="$logs/$2.log" t0=$SECONDS rc
  shift 2
  section "$title"
  echo "\$ $*"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local secs=$((SECONDS - t0)) detail
  # The tool's own summary, repeated in the final summary: vitest's "Test Files …", "Tests …", "Errors …" lines,
  # biome's "Found N errors." lines, or a count of tsc's "error TS…" lines; else the last line printed.
  local clean
  clean="$(strip_ansi <"$log")"
  detail="$(grep -E '^\s*(Test Files|Tests|Errors)\s' <<<"$clean" | sed -E 's/^\s+//; s/\s+/ /g' | paste -sd ';' -)"
  [ -n "$detail" ] || detail="$(grep -E '^Found [0-9]+ (error|warning)' <<<"$clean" | sed 's/\.$//' | paste -sd ';' -)"
  [ -n "$detail" ] || [ "$rc" = 0 ] || detail="$(grep -cE ': error TS[0-9]+:' <<<"$clean" | grep -v '^0$' | sed 's/$/ tsc errors/')"
  [ -n "$detail" ] || [ "$rc" = 0 ] || detail="$(grep -v '^\s*$' <<<"$clean" | tail -n 1 | cut -c 1-100)"
  detail="${detail//;/; }"
  if [ "$rc" = 0 ]; then
    summary+=("$(printf '  %-8s %-18s %5ss  %s' ok "$title" "$secs" "$detail")")
  else
    failed+=("$title")
    summary+=("$(printf '  %-8s %-18s %5ss  %s' FAILED "$title" "$secs" "${detail:-exit code $rc}")")
  fi
}

step "4/7 typecheck" typecheck tsc -p tsconfig.json
step "5/7 lint" lint biome check .
step "6/7 unit tests" unit vitest run --project unit

if [ -n "$(find test/it -name '*.it.test.ts' -print -quit 2>/dev/null)" ]; then
  step "7/7 integration" it vitest run --project it
else
  section "7/7 integration"
  echo "no integration test files (test/it/**/*.it.test.ts) yet: skipped"
  summary+=("$(printf '  %-8s %-18s %5s   %s' skipped "7/7 integration" '' 'no test/it/**/*.it.test.ts files')")
fi

# ---------------------------------------------------------------------------------------------------------------
section "summary"
printf '%s\n' "${summary[@]}"
total=$((SECONDS - started))
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED (${failed[*]}) after ${total} s; logs in $logs"
  exit 1
fi
echo "test.sh: all passed in ${total} s"
