#!/usr/bin/env bash
# Start/stop local MariaDB 10.11 instances from Debian's packages, each with its own datadir and port.
# Idempotent: starting a running instance is a no-op; stopping a stopped one too.
#
#   compose/local/mariadb.sh install               apt-get install mariadb-server if mariadbd is missing, and
#                                                  mariadb-backup (with mbstream) of the server's exact version
#   compose/local/mariadb.sh start NAME PORT [--mixed] [--datadir DIR]
#                                                  (--mixed: binlog_format=MIXED, for prerequisite tests;
#                                                  --datadir: serve an existing datadir, e.g. one restored from a
#                                                  backup: a scratch server for a point-in-time replay)
#   compose/local/mariadb.sh stop NAME | stop-all | status | kill NAME
#
# Each instance: binlog ON (ROW, binlog_row_image FULL, binlog_row_metadata FULL), GTID (domain 0),
# server_id = PORT (unique per instance), utf8mb4, bound to 127.0.0.1 only.
# Accounts created on first start (test/demo only, documented in README):
#   root@127.0.0.1 / localhost  password "tidemark-root"   (tests' admin)
#   tidemark_cap   password "cap-pw"    SELECT, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR  (capture: least privilege)
#   tidemark_apply password "apply-pw"  ALL on *.*  (applier; see README for a narrower grant)
#   tidemark_backup@localhost password "backup-pw"  RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR  (mariadb-backup over
#                  the socket: least privilege for backup.account)
# State lives in $TIDEMARK_RUN_DIR (default: .run/ of this checkout): .run/mariadb/NAME/{data,my.cnf,err.log}.
# TIDEMARK_MARIADB_REDO_MB sets innodb_log_file_size (default 256; the redo log is preallocated, so it is what each
# instance costs on disk: test.sh uses 64 for its ~90 instances).
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT_PW="${TIDEMARK_ROOT_PW:-tidemark-root}"

install() {
  install_server
  install_backup
}

install_server() { # `start` needs only this
  if bin mariadbd >/dev/null && bin mariadb >/dev/null; then return; fi
  # The package's postinst tries to start the system service; policy-rc.d may deny it, which is fine.
  apt_install "mariadbd not found" mariadb-server mariadb-client
  bin mariadbd >/dev/null || die "apt-get install mariadb-server did not provide mariadbd"
  # Do not let a system-wide instance take port 3306 or CPU: tests start their own.
  (service mariadb stop >/dev/null 2>&1 || true)
}

# mariadb-backup must be the server's own version (it reads the InnoDB redo log of that version): pin the Debian
# package to the installed server's version. It brings mbstream (the stream extractor restore uses).
install_backup() {
  local want have
  want="$(dpkg-query -W -f='${Version}' mariadb-server-core 2>/dev/null || true)"
  have="$(dpkg-query -W -f='${Version}' mariadb-backup 2>/dev/null || true)"
  if bin mariadb-backup >/dev/null && bin mbstream >/dev/null && { [ -z "$want" ] || [ "$have" = "$want" ]; }; then
    return
  fi
  apt_install "mariadb-backup ${want:+$want }not found" "mariadb-backup${want:+=$want}"
  bin mariadb-backup >/dev/null && bin mbstream >/dev/null || die "apt-get install mariadb-backup did not provide mariadb-backup and mbstream"
}

pid_file() { echo "$run/mariadb/$1/mariadbd.pid"; }

client() { # NAME args… : admin client over the instance socket
  local d="$run/mariadb/$1"; shift
  "$(bin mariadb)" --no-defaults -uroot -p"$ROOT_PW" --socket="$d/mysqld.sock" "$@"
}

answers() { # DIR: the server of instance directory DIR answers on its socket (even if only "Access denied")
  [ -S "$1/mysqld.sock" ] && "$(bin mariadb-admin mysqladmin)" --no-defaults --socket="$1/mysqld.sock" -uroot \
    --password="$ROOT_PW" ping 2>&1 | grep -q -e 'is alive' -e 'Access denied'
}

start() {
  local name="$1" port="$2" fmt=ROW datadir=""
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --mixed) fmt=MIXED ;;
      --datadir) [ $# -ge 2 ] || usage "start NAME PORT [--mixed] [--datadir DIR]"; datadir="$(cd "$2" && pwd)" || die "--datadir $2: no such directory"; shift ;;
      "") ;;
      *) usage "start NAME PORT [--mixed] [--datadir DIR]" ;;
    esac
    shift
  done
  check_name "$name"
  check_port "$port"
  local redo_mb="${TIDEMARK_MARIADB_REDO_MB:-256}"
  [[ "$redo_mb" =~ ^[0-9]+$ ]] && [ "$redo_mb" -ge 8 ] || die "TIDEMARK_MARIADB_REDO_MB must be a whole number of MiB, at least 8 (got \"$redo_mb\")"
  install_server
  local d="$run/mariadb/$name"
  mkdir -p "$d/binlog" "$d/tmp"
  [ -n "$datadir" ] || { datadir="$d/data"; mkdir -p "$datadir"; }
  if pid=$(pidof_inst "$name"); then echo "mariadb.sh: $name already running (pid $pid, port $port)"; return; fi
  cat > "$d/my.cnf" <<CNF
[mariadbd]
user=$(id -un)
datadir=$datadir
socket=$d/mysqld.sock
pid-file=$d/mariadbd.pid
log-error=$d/err.log
tmpdir=$d/tmp
port=$port
bind-address=127.0.0.1
skip-name-resolve
server_id=$port
log_bin=$d/binlog/mysql-bin
binlog_format=$fmt
binlog_row_image=FULL
binlog_row_metadata=FULL
gtid_domain_id=0
gtid_strict_mode=1
log_slave_updates=1
max_allowed_packet=256M
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
innodb_buffer_pool_size=192M
innodb_log_file_size=${redo_mb}M
innodb_flush_method=O_DIRECT
max_connections=300
performance_schema=OFF
CNF
  if [ ! -d "$datadir/mysql" ]; then
    "$(bin mariadb-install-db mysql_install_db)" --defaults-file="$d/my.cnf" --auth-root-authentication-method=normal \
      --skip-test-db >"$d/install.log" 2>&1 || { cat "$d/install.log" >&2; die "mariadb-install-db failed for $name"; }
    touch "$d/.fresh"
  fi
  nohup "$(bin mariadbd)" --defaults-file="$d/my.cnf" >>"$d/stdout.log" 2>&1 &
  wait_until 60 answers "$d" || true # a loaded 2-core machine can be slow to start InnoDB
  if [ -f "$d/.fresh" ]; then
    "$(bin mariadb)" --no-defaults -uroot ${ROOT_SET:+-p"$ROOT_PW"} --socket="$d/mysqld.sock" <<SQL || die "could not create accounts on $name (see $d/err.log)"
ALTER USER 'root'@'localhost' IDENTIFIED BY '$ROOT_PW';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$ROOT_PW';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'tidemark_cap'@'127.0.0.1' IDENTIFIED BY 'cap-pw';
GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'tidemark_cap'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'tidemark_apply'@'127.0.0.1' IDENTIFIED BY 'apply-pw';
GRANT ALL ON *.* TO 'tidemark_apply'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'tidemark_backup'@'localhost' IDENTIFIED BY 'backup-pw';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'tidemark_backup'@'localhost';
FLUSH PRIVILEGES;
SQL
    rm -f "$d/.fresh"
  fi
  client "$name" -e 'SELECT 1' >/dev/null 2>&1 || { tail -20 "$d/err.log" >&2; die "$name did not come up on port $port"; }
  echo "mariadb.sh: $name up on 127.0.0.1:$port (binlog_format=$fmt, pid $(pidof_inst "$name"))"
}

stop() { stop_instance "$1" 30; }

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || usage "start NAME PORT [--mixed] [--datadir DIR]"; shift; start "$@" ;;
  stop) [ $# -ge 2 ] || usage "stop NAME"; stop "$2" ;;
  # SIGKILL, then wait until the process is gone: a `start` right after must not find it still alive.
  kill) [ $# -ge 2 ] || usage "kill NAME"; kill_instance "$2" ;;
  stop-all) for n in $(instances mariadb); do stop "$n"; done ;;
  destroy) [ $# -ge 2 ] || usage "destroy NAME"; stop "$2"; rm -rf "${run:?}/mariadb/$2" ;;
  status) for n in $(instances mariadb); do if p=$(pidof_inst "$n"); then echo "$n running pid $p port $(sed -n 's/^port=//p' "$run/mariadb/$n/my.cnf")"; else echo "$n stopped"; fi; done ;;
  client) shift; n="$1"; shift; client "$n" "$@" ;;
  *) usage "install | start NAME PORT [--mixed] [--datadir DIR] | stop NAME | kill NAME | stop-all | destroy NAME | status | client NAME [args]" ;;
esac
