# shellcheck shell=bash
# What the scripts in compose/local share. Source it first thing: `. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`.
# Sets no shell options (each script keeps its own `set`). Defines:
#   ME, root, run              the calling script's file name (prefix of its messages), the checkout's root
#                              directory, and where instance state lives ($TIDEMARK_RUN_DIR, default .run/)
#   die MSG | usage TEXT       "ME: MSG" (or "ME: usage: TEXT") on stderr, exit 1
#   bin NAME…                  the path of the first NAME found (PATH, then /usr/sbin, /usr/bin); fails if none
#   apt_install WHY PKG…       apt-get install PKG… from Debian (root only; WHY says what is missing)
#   check_name NAME | check_port PORT   refuse an instance name or port the scripts cannot use
#   instances KIND             names of the instances under $run/KIND (mariadb, redis, kafka)
#   pid_alive FILE             the pid in a pid file, if that process is alive
#   port_open PORT             something listens on 127.0.0.1:PORT
#   wait_until SECS CMD…       run CMD every 0.2 s until it succeeds (0) or SECS have passed (1)
#   stop_pid NAME PID SECS     SIGTERM, wait up to SECS for the exit, then SIGKILL (saying so)
#   kill_pid PID               SIGKILL and wait (up to 10 s) until the process is gone
# For scripts that run named instances and define `pid_file NAME` (the instance's pid file):
#   pidof_inst NAME            the instance's pid, if it runs
#   stop_instance NAME SECS    stop_pid it (a no-op, said, when it is not running), remove its pid file
#   kill_instance NAME         kill_pid it (tests: a crash), remove its pid file

ME="$(basename "${BASH_SOURCE[1]:-$0}")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run="${TIDEMARK_RUN_DIR:-$root/.run}"

die() {
  echo "$ME: $*" >&2
  exit 1
}
usage() { die "usage: $*"; }

bin() {
  local b dir
  for b in "$@"; do
    command -v "$b" >/dev/null && { command -v "$b"; return; }
    for dir in /usr/sbin /usr/bin; do [ -x "$dir/$b" ] && { echo "$dir/$b"; return; }; done
  done
  return 1
}

apt_install() {
  local why="$1"
  shift
  [ "$(id -u)" = 0 ] || die "$why; run as root or: apt-get install $*"
  echo "$ME: installing $* from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  # Quiet first; when that fails, again with apt-get's own output so the reason is on screen.
  apt-get install -y -qq "$@" >/dev/null 2>&1 || apt-get install -y "$@"
}

check_name() { [[ "$1" =~ ^[A-Za-z0-9_-]+$ ]] || die "instance name must be letters, digits, _ or -"; }
check_port() { [[ "$1" =~ ^[0-9]+$ ]] || die "port must be a number"; }

instances() {
  local x
  for x in "$run/$1"/*/; do [ -d "$x" ] && basename "$x"; done
  true
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() {
  local secs="$1" i
  shift
  for ((i = 0; i < secs * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

stop_pid() {
  local name="$1" pid="$2" secs="$3" i
  kill "$pid"
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    echo "$ME: $name did not stop in $secs s, killed" >&2
  fi
}

kill_pid() {
  local i
  kill -9 "$1"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
}

pidof_inst() { pid_alive "$(pid_file "$1")"; }

stop_instance() {
  local pid
  check_name "$1"
  pid=$(pidof_inst "$1") || { echo "$ME: $1 not running"; return; }
  stop_pid "$1" "$pid" "$2"
  rm -f "$(pid_file "$1")"
  echo "$ME: $1 stopped"
}

kill_instance() {
  local pid
  check_name "$1"
  pid=$(pidof_inst "$1") || { echo "$ME: $1 not running"; return; }
  kill_pid "$pid"
  rm -f "$(pid_file "$1")"
  echo "$ME: $1 killed"
}
