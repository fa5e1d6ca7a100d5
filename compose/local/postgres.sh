#!/usr/bin/env bash
# Start/stop local PostgreSQL 15 instances from Debian's postgresql-15 package, each with its own data directory
# and port, set up for logical-decoding capture. Idempotent: starting a running instance is a no-op; stopping a
# stopped one too.
#
#   compose/local/postgres.sh install            apt-get install postgresql-15 if its postgres binary is missing
#   compose/local/postgres.sh start NAME PORT
#   compose/local/postgres.sh stop NAME | kill NAME | stop-all | destroy NAME | status | psql NAME [psql args]
#
# Each instance: wal_level=logical, 10 replication slots and WAL senders, listens on 127.0.0.1:PORT only, its unix
# socket in its data directory; pg_hba allows only the unix socket and 127.0.0.1 (also `replication`), by
# scram-sha-256 password.
# Roles created on first start (tests and the demo only, documented in postgres/README.md):
#   postgres        password $TIDEMARK_PG_PW (default "tidemark-pg"), superuser (tests' admin; test/fixtures/postgres.ts)
#   tidemark_cap    password "cap-pw"    LOGIN REPLICATION (capture). SELECT on captured tables is NOT granted
#                   here: the operator grants it per schema (GRANT SELECT ON ALL TABLES IN SCHEMA s TO tidemark_cap;
#                   ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO tidemark_cap).
#   tidemark_apply  password "apply-pw"  LOGIN (apply); the operator grants it the target schemas' privileges. It
#                   may run the replication-origin functions apply needs (granted in template1, so in every
#                   database created after the first start, and in postgres).
#
# PostgreSQL refuses to run as root: as root the server, initdb and psql run as the `postgres` OS user (created by
# the Debian package), which owns the data directory. That user must be able to reach the data directory: when it
# cannot traverse $TIDEMARK_RUN_DIR (e.g. a checkout under /root), the data directory is placed under
# /var/lib/postgresql/tidemark/<hash of the run dir>/NAME instead and $run/postgres/NAME/datadir names it. Run as
# another user, everything runs as that user.
# State lives in $TIDEMARK_RUN_DIR (default: .run/ of this checkout): .run/postgres/NAME/{datadir,port,initdb.log}
# and the data directory (default .run/postgres/NAME/data, postmaster.pid inside) with postgres.log beside it.
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PG_PW="${TIDEMARK_PG_PW:-tidemark-pg}"
PGBIN=/usr/lib/postgresql/15/bin

install() {
  if [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/psql" ]; then return; fi
  # The package's postinst creates and starts a system cluster on 5432; policy-rc.d may deny the start. Tests start
  # their own instances, so the system one is stopped below.
  apt_install "$PGBIN/postgres not found" postgresql-15 postgresql-client-15
  [ -x "$PGBIN/postgres" ] || die "apt-get install postgresql-15 did not provide $PGBIN/postgres"
  (service postgresql stop >/dev/null 2>&1 || true)
}

as_pg() { # CMD…: run as the postgres OS user when we are root (PostgreSQL refuses root), else as ourselves
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

data_dir() { # NAME: the instance's data directory (chosen on first start, recorded in $run/postgres/NAME/datadir)
  local d="$run/postgres/$1"
  if [ -f "$d/datadir" ]; then cat "$d/datadir"; else echo "$d/data"; fi
}

choose_data_dir() { # NAME: decide where the data directory lives and record it
  local d="$run/postgres/$1" dd
  [ -f "$d/datadir" ] && return
  dd="$d/data"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$d"; then
    # The postgres user cannot traverse to $d (a parent directory is not world-searchable).
    dd="/var/lib/postgresql/tidemark/$(printf %s "$run" | sha256sum | cut -c1-12)/$1/data"
  fi
  echo "$dd" >"$d/datadir"
}

# The server's log: beside the data directory, where the postgres user can write it.
log_file() { echo "$(dirname "$(data_dir "$1")")/postgres.log"; }
pid_file() { echo "$(data_dir "$1")/postmaster.pid"; }
port_of() { cat "$run/postgres/$1/port" 2>/dev/null; }
# The first line of postmaster.pid is the pid (pid_alive reads the whole file).
pidof_inst() {
  local f
  f="$(pid_file "$1")"
  [ -f "$f" ] && kill -0 "$(head -1 "$f")" 2>/dev/null && head -1 "$f"
}

psql_inst() { # NAME args…: superuser psql over the instance's unix socket (password from the environment)
  local n="$1"
  shift
  # runuser keeps the environment: the password never appears on a command line.
  PGPASSWORD="$PG_PW" as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(data_dir "$n")" -p "$(port_of "$n")" \
    -U postgres -d postgres "$@"
}

answers() { as_pg "$PGBIN/pg_isready" -q -h "$(data_dir "$1")" -p "$(port_of "$1")"; }

init_cluster() { # NAME: initdb with the superuser password from a file (never on a command line or in a log)
  local n="$1" dd pwfile
  dd="$(data_dir "$n")"
  mkdir -p "$dd"
  chmod 700 "$dd"
  pwfile="$(dirname "$dd")/.pw"
  (umask 077 && printf '%s\n' "$PG_PW" >"$pwfile")
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$(dirname "$dd")"; fi
  as_pg "$PGBIN/initdb" -D "$dd" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$run/postgres/$n/initdb.log" 2>&1 || {
    rm -f "$pwfile"
    cat "$run/postgres/$n/initdb.log" >&2
    die "initdb failed for $n"
  }
  rm -f "$pwfile"
  cat >"$dd/pg_hba.conf" <<HBA
# tidemark test instance: unix socket and 127.0.0.1 only, passwords (scram-sha-256)
local   all          all                  scram-sha-256
host    all          all    127.0.0.1/32  scram-sha-256
host    replication  all    127.0.0.1/32  scram-sha-256
HBA
  touch "$run/postgres/$n/.fresh"
}

write_conf() { # NAME PORT
  local dd
  dd="$(data_dir "$1")"
  cat >"$dd/tidemark.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$dd'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
wal_sender_timeout = 60s
max_connections = 100
shared_buffers = 64MB
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
logging_collector = off
CONF
  grep -q "^include_if_exists = 'tidemark.conf'" "$dd/postgresql.conf" ||
    echo "include_if_exists = 'tidemark.conf'" >>"$dd/postgresql.conf"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dd/tidemark.conf"; fi
}

create_roles() { # NAME: least-privilege roles (passwords in the SQL text over the socket, never in a log)
  psql_inst "$1" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidemark_cap') THEN
    CREATE ROLE tidemark_cap LOGIN REPLICATION PASSWORD 'cap-pw';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidemark_apply') THEN
    CREATE ROLE tidemark_apply LOGIN PASSWORD 'apply-pw';
  END IF;
END $$;
SQL
  # The apply role marks its writes with a replication origin (apply/postgres/README.md "Replication origin"). The
  # origin functions' grants live in each database's pg_proc: template1 passes them on to every database created
  # after this, postgres has them too.
  local db
  for db in template1 postgres; do
    psql_inst "$1" -d "$db" <<'SQL'
GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text),
  pg_catalog.pg_replication_origin_session_setup(text),
  pg_catalog.pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO tidemark_apply;
SQL
  done
}

start() {
  local name="$1" port="$2" d dd pid log
  check_name "$name"
  check_port "$port"
  install
  d="$run/postgres/$name"
  mkdir -p "$d"
  chmod 755 "$d"
  if pid=$(pidof_inst "$name"); then echo "postgres.sh: $name already running (pid $pid, port $(port_of "$name"))"; return; fi
  choose_data_dir "$name"
  dd="$(data_dir "$name")"
  echo "$port" >"$d/port"
  [ -f "$dd/PG_VERSION" ] || init_cluster "$name"
  write_conf "$name" "$port"
  log="$(log_file "$name")"
  touch "$log"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$log"; fi
  as_pg "$PGBIN/pg_ctl" -D "$dd" -l "$log" -w -t 60 start >/dev/null ||
    { tail -20 "$log" >&2; die "$name did not start on port $port"; }
  wait_until 30 answers "$name" || { tail -20 "$log" >&2; die "$name does not answer on port $port"; }
  if [ -f "$d/.fresh" ]; then
    create_roles "$name" || die "could not create roles on $name (see $log)"
    rm -f "$d/.fresh"
  fi
  echo "postgres.sh: $name up on 127.0.0.1:$port (wal_level=logical, pid $(pidof_inst "$name"))"
}

stop() { # NAME: a fast shutdown (pg_ctl -m fast), SIGKILL after 30 s
  local pid
  check_name "$1"
  pid=$(pidof_inst "$1") || { echo "postgres.sh: $1 not running"; return; }
  as_pg "$PGBIN/pg_ctl" -D "$(data_dir "$1")" -m fast -w -t 30 stop >/dev/null 2>&1 || stop_pid "$1" "$pid" 5
  echo "postgres.sh: $1 stopped"
}

kill_pg() { # NAME: SIGKILL the postmaster (tests: a crash); its children exit when they notice
  local pid
  check_name "$1"
  pid=$(pidof_inst "$1") || { echo "postgres.sh: $1 not running"; return; }
  kill_pid "$pid"
  echo "postgres.sh: $1 killed"
}

destroy() {
  local dd
  dd="$(data_dir "$1")"
  stop "$1"
  rm -rf "${run:?}/postgres/$1"
  case "$dd" in
    /var/lib/postgresql/tidemark/*)
      rm -rf "$(dirname "$dd")"
      rmdir --ignore-fail-on-non-empty "$(dirname "$(dirname "$dd")")"
      ;;
  esac
}

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || usage "start NAME PORT"; start "$2" "$3" ;;
  stop) [ $# -ge 2 ] || usage "stop NAME"; stop "$2" ;;
  kill) [ $# -ge 2 ] || usage "kill NAME"; kill_pg "$2" ;;
  stop-all) for n in $(instances postgres); do stop "$n"; done ;;
  destroy) [ $# -ge 2 ] || usage "destroy NAME"; check_name "$2"; destroy "$2" ;;
  status)
    for n in $(instances postgres); do
      if p=$(pidof_inst "$n"); then echo "$n running pid $p port $(port_of "$n")"; else echo "$n stopped"; fi
    done
    ;;
  psql) [ $# -ge 2 ] || usage "psql NAME [args]"; shift; n="$1"; shift; psql_inst "$n" "$@" ;;
  *) usage "install | start NAME PORT | stop NAME | kill NAME | stop-all | destroy NAME | status | psql NAME [args]" ;;
esac
