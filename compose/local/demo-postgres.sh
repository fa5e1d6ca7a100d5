#!/usr/bin/env bash
# The PostgreSQL demo: `DEMO_ENGINE=postgres bash compose/local/demo.sh` (or this script directly).
#
# From a fresh machine: installs what is missing (Node 24, npm packages, PostgreSQL 15 from Debian), starts two
# local PostgreSQL 15 servers with compose/local/postgres.sh (a primary with wal_level=logical and a replica),
# runs the DBA's one-time set-up (REPLICA IDENTITY FULL, a publication, the grants of tidemark_cap and
# tidemark_apply), starts tidemark between them (logical decoding → the journal → exactly-once apply), drives a
# random shop workload on the primary, and ends with `tidemark verify` comparing the two, table by table.
# The servers stay up afterwards so you can look around; the script prints how to stop them.
#
# Ports: DEMO_PRIMARY_PORT (default 5490) and DEMO_REPLICA_PORT (default 5491). DEMO_SECONDS (default 8).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=compose/local/demo-lib.sh
. compose/local/demo-lib.sh
P1="${DEMO_PRIMARY_PORT:-5490}"
P2="${DEMO_REPLICA_PORT:-5491}"
SECS="${DEMO_SECONDS:-8}"
work="$root/.run/demo-postgres"
export TIDEMARK_PG_PW="${TIDEMARK_PG_PW:-tidemark-pg}"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pgsql() { bash compose/local/postgres.sh psql "$1" -d shop; } # NAME: superuser psql in database shop, SQL on stdin

say "1/7 Setting up: Node 24, npm packages, PostgreSQL 15 (skipped when already there)"
bash compose/local/setup.sh
bash compose/local/postgres.sh install
# shellcheck source=compose/local/env.sh
. compose/local/env.sh

say "2/7 Starting two PostgreSQL 15 servers: primary on 127.0.0.1:$P1 (wal_level=logical), replica on 127.0.0.1:$P2"
bash compose/local/postgres.sh destroy demo-pg-primary >/dev/null 2>&1 || true
bash compose/local/postgres.sh destroy demo-pg-replica >/dev/null 2>&1 || true
bash compose/local/postgres.sh start demo-pg-primary "$P1"
bash compose/local/postgres.sh start demo-pg-replica "$P2"

say "3/7 The DBA's one-time set-up: database 'shop' on both, the primary's publication and REPLICA IDENTITY FULL, grants"
tables="CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email text, since timestamptz NOT NULL);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer int NOT NULL, total numeric(12,2) NOT NULL,
  status text NOT NULL, placed timestamptz NOT NULL, meta jsonb);
CREATE TABLE shop.items (order_id bigint, line int, sku uuid NOT NULL, qty int NOT NULL, price numeric(10,2) NOT NULL,
  PRIMARY KEY (order_id, line));"
for n in demo-pg-primary demo-pg-replica; do
  bash compose/local/postgres.sh psql "$n" -c 'CREATE DATABASE shop'
done
pgsql demo-pg-primary <<SQL
$tables
ALTER TABLE shop.customers REPLICA IDENTITY FULL;
ALTER TABLE shop.orders REPLICA IDENTITY FULL;
ALTER TABLE shop.items REPLICA IDENTITY FULL;
CREATE PUBLICATION tidemark FOR TABLE shop.customers, shop.orders, shop.items;
GRANT USAGE ON SCHEMA shop TO tidemark_cap;
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO tidemark_cap;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO tidemark_cap;
INSERT INTO shop.customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', now() - g * interval '1 day'
  FROM generate_series(1, 500) g;
INSERT INTO shop.orders SELECT g, 1 + g % 500, round((g * 7.31)::numeric % 1000, 2), 'shipped', now() - g * interval '1 hour',
  jsonb_build_object('seed', g) FROM generate_series(1, 500) g;
INSERT INTO shop.items SELECT o, l, gen_random_uuid(), 1 + (o + l) % 5, round(((o * l) % 997)::numeric / 10, 2)
  FROM generate_series(1, 500) o, generate_series(1, 3) l;
SQL
pgsql demo-pg-replica <<SQL
$tables
GRANT CREATE ON DATABASE shop TO tidemark_apply;
GRANT USAGE ON SCHEMA shop TO tidemark_apply;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop TO tidemark_apply;
GRANT SET ON PARAMETER session_replication_role TO tidemark_apply;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text),
  pg_catalog.pg_replication_origin_session_setup(text),
  pg_catalog.pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO tidemark_apply;
SQL
echo "shop: 500 customers, 500 orders, 1500 items on the primary; empty tables on the replica"

say "4/7 Writing the config: $work/tidemark.yaml ('tidemark init --engine postgres' writes an annotated one)"
rm -rf "$work" && mkdir -p "$work"
cat >"$work/tidemark.yaml" <<YAML
# Written by compose/local/demo-postgres.sh. 'tidemark init --engine postgres' writes a fully annotated example.
source:
  name: demo-pg-primary
  kind: postgres
  host: 127.0.0.1
  port: $P1
  user: tidemark_cap         # LOGIN REPLICATION + SELECT on shop.*
  password_env: DEMO_CAPTURE_PASSWORD
  database: shop
  publication: tidemark
  slot: tidemark
  include: ["shop.*"]
journal:
  dir: ./journal
targets:
  - name: demo-pg-replica
    kind: postgres
    host: 127.0.0.1
    port: $P2
    user: tidemark_apply     # DML on shop.*, SET ON PARAMETER session_replication_role, origin functions
    password_env: DEMO_APPLY_PASSWORD
    database: shop
log:
  level: info
  file: ./tidemark.log
YAML
export DEMO_CAPTURE_PASSWORD=cap-pw DEMO_APPLY_PASSWORD=apply-pw
sed 's/^/    /' "$work/tidemark.yaml"

say "5/7 Starting 'tidemark run': a baseline of shop.* from the slot's exported snapshot, then the logical decoding stream, applied to the replica"
demo_start "$work/tidemark.yaml" "$work/tidemark.log"

say "6/7 Driving a random shop workload on the primary for $SECS seconds (orders, items, customers; one transaction each)"
# The loop runs in the server (a DO block committing each iteration): no client library needed.
sed "s/@SECS@/$SECS/" <<'SQL' | pgsql demo-pg-primary
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
  n bigint := (SELECT max(id) FROM shop.orders);
  i int := 0;
BEGIN
  WHILE clock_timestamp() < t0 + make_interval(secs => @SECS@) LOOP
    i := i + 1;
    n := n + 1;
    INSERT INTO shop.orders VALUES (n, 1 + (random() * 499)::int, 0, 'new', now(), jsonb_build_object('i', i));
    INSERT INTO shop.items SELECT n, g, gen_random_uuid(), 1 + (random() * 4)::int, round((random() * 100)::numeric, 2)
      FROM generate_series(1, 1 + (random() * 3)::int) g;
    UPDATE shop.orders SET total = (SELECT sum(qty * price) FROM shop.items WHERE order_id = n) WHERE id = n;
    UPDATE shop.orders SET status = 'shipped' WHERE id = n - 5;
    IF i % 10 = 0 THEN
      DELETE FROM shop.items WHERE order_id = n - 400;
      DELETE FROM shop.orders WHERE id = n - 400;
      UPDATE shop.customers SET email = 'c' || id || '+' || i || '@example.com' WHERE id = 1 + (random() * 499)::int;
    END IF;
    COMMIT;
    PERFORM pg_sleep(0.002);
  END LOOP;
  RAISE NOTICE 'workload: % transactions', i;
END $$;
SQL
echo
cli/tidemark.mjs status -c "$work/tidemark.yaml"

say "7/7 tidemark verify: chunked checksums of every table, primary vs replica"
demo_verify "$work/tidemark.yaml" "$work/tidemark.log" "PostgreSQL replica"
cat <<TXT

Look around:
  bash compose/local/postgres.sh psql demo-pg-replica -d shop    # the replica (tidemark.applied holds its position)
  bash compose/local/postgres.sh psql demo-pg-primary -c 'SELECT * FROM pg_replication_slots'
  DEMO_CAPTURE_PASSWORD=cap-pw DEMO_APPLY_PASSWORD=apply-pw cli/tidemark.mjs run -c $work/tidemark.yaml
  less $work/tidemark.log
Stop the servers:  bash compose/local/postgres.sh stop-all
TXT
exit $rc
