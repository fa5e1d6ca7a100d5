#!/usr/bin/env bash
# The demo command: `bash compose/local/demo.sh`.
#
# From a fresh machine: installs what is missing (Node 24, npm packages, MariaDB from Debian), starts two local
# MariaDB servers (a primary and a replica), starts tidemark between them on its embedded defaults, drives a
# random shop workload on the primary, and ends with `tidemark verify` comparing the two, table by table.
# The servers stay up afterwards so you can look around; the script prints how to stop them.
#
# Then a full backup of the primary into a local backup store, the binlog archived beside it by `tidemark run`,
# and a point-in-time restore of the shop database onto a scratch server, compared table by table.
# Ports: DEMO_PRIMARY_PORT (default 3307), DEMO_REPLICA_PORT (default 3308), DEMO_SCRATCH_PORT (default 3309).
# DEMO_SECONDS (default 8).
# DEMO_ENGINE=postgres runs the same demo on two PostgreSQL 15 servers instead (compose/local/demo-postgres.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=compose/local/demo-lib.sh
. compose/local/demo-lib.sh
case "${DEMO_ENGINE:-mariadb}" in
  postgres) exec bash "$root/compose/local/demo-postgres.sh" ;;
  mariadb | mysql) ;;
  *) echo "DEMO_ENGINE must be mariadb (the default) or postgres, not '$DEMO_ENGINE'" >&2; exit 2 ;;
esac
P1="${DEMO_PRIMARY_PORT:-3307}"
P2="${DEMO_REPLICA_PORT:-3308}"
SECS="${DEMO_SECONDS:-8}"
SHIP_PORT="${DEMO_SHIP_PORT:-7400}"
P3="${DEMO_SCRATCH_PORT:-3309}"
work="$root/.run/demo"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/8 Setting up: Node 24, npm packages, MariaDB 10.11 (skipped when already there)"
bash compose/local/setup.sh
# shellcheck source=compose/local/env.sh
. compose/local/env.sh

say "2/8 Starting two MariaDB servers: primary on 127.0.0.1:$P1, replica on 127.0.0.1:$P2"
bash compose/local/mariadb.sh destroy demo-primary >/dev/null 2>&1 || true
bash compose/local/mariadb.sh destroy demo-replica >/dev/null 2>&1 || true
bash compose/local/mariadb.sh start demo-primary "$P1"
bash compose/local/mariadb.sh start demo-replica "$P2"

say "3/8 Creating the 'shop' database on the primary, with a first 500 transactions of data"
node bench/drive.ts --port "$P1" --setup --transactions 500 --seed 1 | tail -1

say "4/8 Making TLS certificates for the two sites, and writing the config: $work/tidemark.yaml"
rm -rf "$work" && mkdir -p "$work"
cli/tidemark.mjs certs --dir "$work/certs" --ca demo-ca --site primary --site dr1 --ip 127.0.0.1 --host localhost | tail -3
cat > "$work/tidemark.yaml" <<YAML
# Written by compose/local/demo.sh. 'tidemark init' writes a fully annotated example.
source:
  name: demo-primary
  host: 127.0.0.1
  port: $P1
  user: tidemark_cap        # least privilege: SELECT, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR
  password_env: DEMO_CAPTURE_PASSWORD
  include: ["shop.*"]
journal:
  dir: ./journal
site: primary                # the primary's site: capture, the journal, one shipper per standby
ship:
  certs_dir: ./certs         # mutual TLS between the sites (tidemark certs)
standbys:
  - name: dr1                # a standby site: a receiver keeps a fsynced mirror of the journal there
    address: 127.0.0.1:$SHIP_PORT
    journal_dir: ./dr1
targets:
  - name: demo-replica
    site: dr1                # applied at dr1, from its mirror journal
    host: 127.0.0.1
    port: $P2
    user: tidemark_apply
    password_env: DEMO_APPLY_PASSWORD
log:
  level: info
  file: ./tidemark.log
backup:                      # backups (backup/README.md): a local store, encrypted with ./backup.key
  stores:
    - name: local
      kind: dir
      path: ./backups
  encryption:
    key_file: ./backup.key
  account:                   # mariadb-backup's account: RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR
    user: tidemark_backup
    password_env: DEMO_BACKUP_PASSWORD
  stream:
    socket: $root/.run/mariadb/demo-primary/mysqld.sock
    datadir: $root/.run/mariadb/demo-primary/data
    scratch_dir: ./backup-scratch
  logs:                      # the binlog, archived by 'tidemark run' in segments of at most 2 s
    - name: binlogs
      store: local
      segment_seconds: 2
  jobs:
    - name: nightly
      store: local
      type: full
      logs: binlogs          # point-in-time restores replay these
      schedule: { cron: "0 2 * * *", time_zone: UTC }
      retention: { days: 7 }
YAML
openssl rand -hex 32 > "$work/backup.key" && chmod 600 "$work/backup.key"
export DEMO_CAPTURE_PASSWORD=cap-pw DEMO_APPLY_PASSWORD=apply-pw DEMO_BACKUP_PASSWORD=backup-pw
sed 's/^/    /' "$work/tidemark.yaml"

say "5/8 Starting 'tidemark run' (every site in one process; --site NAME runs one): a baseline copy of shop.*, then the binlog, shipped over TLS to dr1 and applied to the replica there"
demo_start "$work/tidemark.yaml" "$work/tidemark.log"

say "6/8 A full backup of the primary (tidemark backup run nightly), then a random shop workload for $SECS seconds (4 connections)"
cli/tidemark.mjs backup run nightly -c "$work/tidemark.yaml"
node bench/drive.ts --port "$P1" --seconds "$SECS" --seed 2
echo
cli/tidemark.mjs status -c "$work/tidemark.yaml"

# The moment to restore to: the primary's GTID now, and its tables' checksums there; then more writes after it.
pitr_gtid="$(bash compose/local/mariadb.sh client demo-primary -N -e 'SELECT @@gtid_binlog_pos')"
pitr_sums="$(bash compose/local/mariadb.sh client demo-primary -N -e 'CHECKSUM TABLE shop.customers, shop.orders, shop.order_items, shop.audit_log EXTENDED')"
node bench/drive.ts --port "$P1" --transactions 300 --seed 3 | tail -1

say "7/8 Point-in-time restore: the full backup plus the archived binlog, replayed on a scratch server (127.0.0.1:$P3) to GTID $pitr_gtid"
bash compose/local/mariadb.sh destroy "pitr-$P3" >/dev/null 2>&1 || true
rm -rf "$work/restored"
# tidemark run archives the binlog every 2 s: a target it has not archived yet is refused (retriable), so wait
for _ in $(seq 1 60); do
  set +e
  out="$(TIDEMARK_SCRATCH_PASSWORD=tidemark-root cli/tidemark.mjs restore -c "$work/tidemark.yaml" --job nightly \
    --to-gtid "$pitr_gtid" --into "$work/restored" --scratch-port "$P3" 2>&1)"
  prc=$?
  set -e
  grep -q 'after the last archived segment' <<<"$out" || break
  sleep 1
done
tail -4 <<<"$out"
pitr_failed=1
if [ "$prc" -ne 0 ]; then
  echo "Point-in-time restore FAILED (exit $prc)"
else
  restored_sums="$(bash compose/local/mariadb.sh client "pitr-$P3" -N -e 'CHECKSUM TABLE shop.customers, shop.orders, shop.order_items, shop.audit_log EXTENDED' || true)"
  if [ "$restored_sums" = "$pitr_sums" ]; then
    pitr_failed=0
    echo "Point-in-time restore: EQUAL — the restored shop tables have the primary's checksums at GTID $pitr_gtid."
  else
    echo "Point-in-time restore FAILED: checksums differ"
    printf 'at the moment:\n%s\nrestored:\n%s\n' "$pitr_sums" "$restored_sums"
  fi
fi

say "8/8 tidemark verify: chunked checksums of every table, primary vs replica"
demo_verify "$work/tidemark.yaml" "$work/tidemark.log" "replica"

cat <<TXT

Look around:
  mariadb -h127.0.0.1 -P$P2 -uroot -ptidemark-root shop      # the replica (tidemark.applied_position holds its position)
  DEMO_CAPTURE_PASSWORD=cap-pw DEMO_APPLY_PASSWORD=apply-pw cli/tidemark.mjs run -c $work/tidemark.yaml
  less $work/tidemark.log
Rewind (same environment variables; see rollback/README.md):
  cli/tidemark.mjs log -c $work/tidemark.yaml --limit 10                       # the rollback list
  cli/tidemark.mjs rewind -c $work/tidemark.yaml --target demo-replica --steps 5 --dry-run
  cli/tidemark.mjs rewind -c $work/tidemark.yaml --target demo-replica --steps 5    # the replica goes back 5 transactions
  cli/tidemark.mjs forward -c $work/tidemark.yaml --target demo-replica --to-head   # and forward again
Sites (see ship/SITES.md):
  cli/tidemark.mjs run -c $work/tidemark.yaml --site primary     # one process per site instead of one for all
  cli/tidemark.mjs run -c $work/tidemark.yaml --site dr1
  cli/tidemark.mjs ship pause dr1 -c $work/tidemark.yaml          # and: ship resume dr1
Backups (see backup/README.md; DEMO_BACKUP_PASSWORD=backup-pw too):
  cli/tidemark.mjs backup list -c $work/tidemark.yaml              # the full and the binlog segments
  cli/tidemark.mjs drill nightly -c $work/tidemark.yaml --scratch-port $P3   # restore to now and compare, kept in the history
Stop the servers:  bash compose/local/mariadb.sh stop-all
TXT
[ "$pitr_failed" = 0 ] || rc=1
exit $rc
