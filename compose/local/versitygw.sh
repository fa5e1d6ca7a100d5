#!/usr/bin/env bash
# Local versitygw (Versity S3 Gateway) instances: an S3-compatible server for the backup store's tests and the
# demo (issue #13), each with the posix backend on its own directory and its own port. Idempotent: starting a
# running instance or stopping a stopped one is a no-op.
#
#   compose/local/versitygw.sh install              go install versitygw v1.8.0 into ~/go/bin unless it is there
#   compose/local/versitygw.sh start NAME PORT      root credentials: access key `tidemark`, secret `tidemark-secret`
#   compose/local/versitygw.sh stop NAME            SIGTERM, wait up to 15 s
#   compose/local/versitygw.sh kill NAME            SIGKILL (tests: a crash of the store server)
#   compose/local/versitygw.sh stop-all | destroy NAME | status | bin
#
# The binary goes to the default GOPATH (~/go/bin/versitygw), so every checkout on the machine shares it and the
# Go module and build caches: a fresh clone does not compile it again. Go comes from PATH or /usr/local/go/bin
# (versitygw v1.8.0 wants Go 1.25; a Go >= 1.21 fetches that toolchain through the module proxy by itself).
#
# State lives in $TIDEMARK_RUN_DIR (default: .run/ of this checkout): .run/versitygw/NAME/{data/ (one directory
# per bucket), port, versitygw.log, versitygw.pid}. Bound to 127.0.0.1 only, with test credentials: for tests
# and the demo.
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=v1.8.0
MODULE=github.com/versity/versitygw
ACCESS=tidemark
SECRET=tidemark-secret
GW="$HOME/go/bin/versitygw"

go_cmd() {
  local g
  for g in "$(command -v go || true)" /usr/local/go/bin/go; do [ -n "$g" ] && [ -x "$g" ] && { echo "$g"; return; }; done
  return 1
}

# The module version the binary was built from (empty if it is missing or not a versitygw build).
built_version() {
  local g
  [ -x "$GW" ] && g=$(go_cmd) || return 0
  "$g" version -m "$GW" 2>/dev/null | awk -v m="$MODULE" '$1 == "mod" && $2 == m { print $3 }'
}

install() {
  [ "$(built_version)" = "$VERSION" ] && return
  local g
  g=$(go_cmd) || die "no Go toolchain (PATH or /usr/local/go/bin): install Go >= 1.21 from https://go.dev/dl into /usr/local/go"
  echo "$ME: building versitygw $VERSION into $GW (go install; a few minutes the first time)" >&2
  # The default GOPATH (~/go) on purpose: shared module and build caches, one binary for every checkout.
  env -u GOPATH -u GOBIN "$g" install "$MODULE/cmd/versitygw@$VERSION" ||
    die "go install $MODULE/cmd/versitygw@$VERSION failed"
  [ "$(built_version)" = "$VERSION" ] || die "go install did not leave versitygw $VERSION at $GW"
}

pid_file() { echo "$run/versitygw/$1/versitygw.pid"; }
port_of() { cat "$run/versitygw/$1/port" 2>/dev/null; }

start() {
  local name="$1" port="$2"
  check_name "$name"
  check_port "$port"
  install
  local d="$run/versitygw/$name"
  mkdir -p "$d/data"
  if pid=$(pidof_inst "$name"); then echo "versitygw.sh: $name already running (pid $pid, port $(port_of "$name"))"; return; fi
  port_open "$port" && die "port $port is taken by another process"
  echo "$port" >"$d/port"
  # setsid: the gateway outlives the shell (and a test runner) that started it; stop/kill find it by its pidfile.
  ROOT_ACCESS_KEY_ID="$ACCESS" ROOT_SECRET_ACCESS_KEY="$SECRET" setsid nohup "$GW" --port "127.0.0.1:$port" \
    --quiet posix "$d/data" >>"$d/versitygw.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$d/versitygw.pid"
  if wait_until 30 port_open "$port"; then
    kill -0 "$pid" 2>/dev/null || { tail -20 "$d/versitygw.log" >&2; die "versitygw $name exited at start"; }
    echo "versitygw.sh: $name up on 127.0.0.1:$port (posix $d/data, pid $pid)"
    return
  fi
  tail -20 "$d/versitygw.log" >&2 || true
  die "$name did not answer on port $port within 30 s (log: $d/versitygw.log)"
}

stop() { stop_instance "$1" 15; }

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || usage "start NAME PORT"; start "$2" "$3" ;;
  stop) [ $# -ge 2 ] || usage "stop NAME"; stop "$2" ;;
  kill) [ $# -ge 2 ] || usage "kill NAME"; kill_instance "$2" ;;
  stop-all) for n in $(instances versitygw); do stop "$n"; done ;;
  destroy) [ $# -ge 2 ] || usage "destroy NAME"; stop "$2"; rm -rf "${run:?}/versitygw/$2" ;;
  status)
    for n in $(instances versitygw); do
      if pid=$(pidof_inst "$n"); then echo "$n running pid $pid port $(port_of "$n")"; else echo "$n stopped"; fi
    done
    ;;
  bin) echo "$GW" ;;
  *) usage "install | start NAME PORT | stop NAME | kill NAME | stop-all | destroy NAME | status | bin" ;;
esac
