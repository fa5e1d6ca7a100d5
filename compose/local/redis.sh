#!/usr/bin/env bash
# Local redis-server instances from Debian's package, each with its own directory and port, configured as the
# Redis Streams ship backend requires: appendonly yes + appendfsync always (ship/redis/README.md). Idempotent:
# starting a running instance or stopping a stopped one is a no-op.
#
#   compose/local/redis.sh install                  apt-get install redis-server if it is missing
#   compose/local/redis.sh start NAME PORT [--appendfsync always|everysec|no]   (other than always: tests only)
#   compose/local/redis.sh stop NAME                SHUTDOWN (SIGTERM: AOF flushed), wait up to 30 s
#   compose/local/redis.sh kill NAME                SIGKILL (tests: a crash; the AOF is replayed on start)
#   compose/local/redis.sh stop-all | destroy NAME | status | cli NAME [args]
#
# State lives in $TIDEMARK_RUN_DIR (default: .run/ of this checkout): .run/redis/NAME/{redis.conf,data/,redis.log,
# redis.pid}. Bound to 127.0.0.1 only, no password: for tests and the demo.
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
  if bin redis-server >/dev/null && bin redis-cli >/dev/null; then return; fi
  apt_install "redis-server not found" redis-server
  bin redis-server >/dev/null || die "apt-get install redis-server did not provide redis-server"
  # The package's postinst may start a system instance on 6379: tests start their own.
  (service redis-server stop >/dev/null 2>&1 || true)
}

pid_file() { echo "$run/redis/$1/redis.pid"; }
port_of() { sed -n 's/^port //p' "$run/redis/$1/redis.conf" 2>/dev/null; }
cli() { local n="$1"; shift; "$(bin redis-cli)" -h 127.0.0.1 -p "$(port_of "$n")" "$@"; }
pong() { reply="$(cli "$1" ping 2>&1 || true)"; [ "$reply" = PONG ]; } # NAME: sets start's `reply`

start() {
  local name="$1" port="$2" fsync=always
  check_name "$name"
  check_port "$port"
  if [ "${3:-}" = --appendfsync ]; then
    fsync="${4:-}"
    [[ "$fsync" =~ ^(always|everysec|no)$ ]] || die "--appendfsync takes always, everysec or no"
  fi
  install
  local d="$run/redis/$name"
  mkdir -p "$d/data"
  if pid=$(pidof_inst "$name"); then echo "redis.sh: $name already running (pid $pid, port $(port_of "$name"))"; return; fi
  cat >"$d/redis.conf" <<CONF
port $port
bind 127.0.0.1
protected-mode yes
daemonize yes
pidfile $d/redis.pid
logfile $d/redis.log
dir $d/data
appendonly yes
appendfsync $fsync
appenddirname appendonlydir
aof-use-rdb-preamble yes
aof-load-truncated yes
save ""
CONF
  "$(bin redis-server)" "$d/redis.conf" >>"$d/redis.log" 2>&1 || { tail -20 "$d/redis.log" >&2; die "redis-server failed to start $name"; }
  local reply=""
  # Up to 60 s: replaying a large AOF answers LOADING meanwhile.
  wait_until 60 pong "$name" || { tail -20 "$d/redis.log" >&2; die "$name did not answer PING on port $port ($reply)"; }
  echo "redis.sh: $name up on 127.0.0.1:$port (appendfsync $fsync, pid $(pidof_inst "$name"))"
}

stop() { stop_instance "$1" 30; } # SHUTDOWN on SIGTERM: the AOF is flushed

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || usage "start NAME PORT [--appendfsync POLICY]"; start "$2" "$3" "${4:-}" "${5:-}" ;;
  stop) [ $# -ge 2 ] || usage "stop NAME"; stop "$2" ;;
  kill) [ $# -ge 2 ] || usage "kill NAME"; kill_instance "$2" ;;
  stop-all) for n in $(instances redis); do stop "$n"; done ;;
  destroy) [ $# -ge 2 ] || usage "destroy NAME"; stop "$2"; rm -rf "${run:?}/redis/$2" ;;
  status)
    for n in $(instances redis); do
      if pid=$(pidof_inst "$n"); then echo "$n running pid $pid port $(port_of "$n")"; else echo "$n stopped"; fi
    done
    ;;
  cli) [ $# -ge 2 ] || usage "cli NAME [args]"; shift; n="$1"; shift; cli "$n" "$@" ;;
  *) usage "install | start NAME PORT [--appendfsync POLICY] | stop NAME | kill NAME | stop-all | destroy NAME | status | cli NAME [args]" ;;
esac
