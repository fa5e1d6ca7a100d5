#!/usr/bin/env bash
# Test "hosts" as Linux network namespaces on one bridge, for takeover tests (issue #5). Root only.
#
#   compose/local/netns.sh install             apt-get install iputils-arping if arping is missing
#   compose/local/netns.sh up                  the bridge tmbr0 (layer 2 only: the host has no address on it)
#   compose/local/netns.sh add NAME ADDR       namespace tm-NAME, its eth0 = ADDR/24 (10.231.0.1-254), veth
#                                              tmv-NAME on the bridge, lo up
#   compose/local/netns.sh del NAME            the namespace (its processes are killed by pid first)
#   compose/local/netns.sh down                every tm-* namespace, then the bridge
#   compose/local/netns.sh exec NAME CMD…      run CMD inside tm-NAME
#   compose/local/netns.sh cut NAME | heal NAME        isolate NAME: its bridge port down (silent loss) / up
#   compose/local/netns.sh block A B | unblock A B     A and B stop hearing each other (silent loss), others
#                                              unaffected: each gets a permanent neighbour entry with a MAC
#                                              nobody has for the other's address (no iptables/tc needed)
#   compose/local/netns.sh vip-add NAME IP/LEN [GARPS] add the VIP on NAME's eth0, then gratuitous ARP
#   compose/local/netns.sh vip-del NAME IP/LEN
#   compose/local/netns.sh garp NAME IP [COUNT]        unsolicited ARP for IP from NAME (arping -U)
#   compose/local/netns.sh mac NAME | status
#
# Everything created here is named tm-*, tmv-* or tmbr0, and uses addresses in 10.231.0.0/24 only.
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BR=tmbr0
NET=10.231.0
NOBODY_MAC=02:74:6d:00:00:00 # locally administered, never assigned to an interface here

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, bridge, veth)"
command -v ip >/dev/null || die "ip (iproute2) not found: apt-get install iproute2"

ns() { echo "tm-$1"; }
check_host() { [[ "$1" =~ ^[a-z0-9]{1,10}$ ]] || die "host name must be 1-10 lowercase letters or digits: $1"; }
check_addr() {
  if [[ "$1" =~ ^10\.231\.0\.([0-9]{1,3})$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le 254 ]; then return; fi
  die "address must be in $NET.1-254: $1"
}
check_cidr() { [[ "$1" =~ ^(10\.231\.0\.[0-9]{1,3})/24$ ]] || die "VIP must be $NET.X/24: $1"; check_addr "${BASH_REMATCH[1]}"; }
exists() { ip netns list | awk '{print $1}' | grep -qx "$(ns "$1")"; }
need() { check_host "$1"; exists "$1" || die "no host $1 (netns.sh add $1 ADDR)"; }
addr_of() { ip -n "$(ns "$1")" -4 -o addr show dev eth0 | awk '{print $4}' | head -1 | cut -d/ -f1; }
in_ns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

install_arping() {
  command -v arping >/dev/null && return
  apt_install "arping not found" iputils-arping || die "apt-get install iputils-arping failed"
  command -v arping >/dev/null || die "iputils-arping did not provide arping"
}

up() {
  if ! ip link show "$BR" >/dev/null 2>&1; then
    ip link add "$BR" type bridge forward_delay 0 stp_state 0
    sysctl -qw "net.ipv6.conf.$BR.disable_ipv6=1" || true
  fi
  ip link set "$BR" up
}

add() {
  local name="$1" addr="$2" n v
  check_host "$name"; check_addr "$addr"
  n=$(ns "$name"); v="tmv-$name"
  exists "$name" && die "host $name exists already (netns.sh del $name)"
  up
  ip netns add "$n"
  ip link add "$v" type veth peer name eth0 netns "$n"
  ip link set "$v" master "$BR"
  ip link set "$v" up
  in_ns "$name" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
  ip -n "$n" link set lo up
  ip -n "$n" addr add "$addr/24" dev eth0
  ip -n "$n" link set eth0 up
  echo "netns.sh: $n up at $addr (mac $(mac "$name"))"
}

kill_pids() { # NAME: processes still inside the namespace (ours: nothing else runs in tm-*), TERM then KILL
  local n pids
  n=$(ns "$1")
  pids=$(ip netns pids "$n" 2>/dev/null || true)
  [ -z "$pids" ] && return
  echo "netns.sh: stopping processes in $n: $pids" >&2
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
  for _ in $(seq 1 50); do [ -z "$(ip netns pids "$n" 2>/dev/null)" ] && return; sleep 0.1; done
  # shellcheck disable=SC2046
  kill -9 $(ip netns pids "$n") 2>/dev/null || true
}

del() {
  check_host "$1"
  exists "$1" || return 0
  kill_pids "$1"
  ip netns del "$(ns "$1")"
  ip link del "tmv-$1" 2>/dev/null || true # normally gone with its peer
  echo "netns.sh: $(ns "$1") removed"
}

down() {
  local n
  for n in $(ip netns list | awk '{print $1}' | grep '^tm-' || true); do del "${n#tm-}"; done
  if ip link show "$BR" >/dev/null 2>&1; then ip link del "$BR"; echo "netns.sh: $BR removed"; fi
}

mac() { need "$1"; ip -n "$(ns "$1")" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

block() { # A B [unblock]
  need "$1"; need "$2"
  local a b
  a=$(addr_of "$1"); b=$(addr_of "$2")
  if [ "${3:-}" = unblock ]; then
    ip -n "$(ns "$1")" neigh del "$b" dev eth0 2>/dev/null || true
    ip -n "$(ns "$2")" neigh del "$a" dev eth0 2>/dev/null || true
    echo "netns.sh: $1 <-> $2 unblocked"
  else
    ip -n "$(ns "$1")" neigh replace "$b" lladdr "$NOBODY_MAC" nud permanent dev eth0
    ip -n "$(ns "$2")" neigh replace "$a" lladdr "$NOBODY_MAC" nud permanent dev eth0
    echo "netns.sh: $1 <-> $2 blocked"
  fi
}

garp() { # NAME IP [COUNT]
  need "$1"; check_addr "$2"
  install_arping
  # iputils arping: -U unsolicited (sender = target = IP), -c count, 1 s apart; neighbours update their cache.
  in_ns "$1" arping -q -U -c "${3:-3}" -I eth0 "$2" || true # -U expects no replies: exit status 1 is normal
}

vip_add() {
  need "$1"; check_cidr "$2"
  ip -n "$(ns "$1")" addr replace "$2" dev eth0
  garp "$1" "${2%/*}" "${3:-3}"
  echo "netns.sh: VIP $2 on $(ns "$1")"
}

vip_del() {
  need "$1"; check_cidr "$2"
  ip -n "$(ns "$1")" addr del "$2" dev eth0 2>/dev/null || true
  echo "netns.sh: VIP $2 off $(ns "$1")"
}

status() {
  ip link show "$BR" >/dev/null 2>&1 && echo "bridge $BR up" || echo "bridge $BR absent"
  local n
  for n in $(ip netns list | awk '{print $1}' | grep '^tm-' || true); do
    echo "$n: $(ip -n "$n" -4 -o addr show dev eth0 | awk '{print $4}' | tr '\n' ' ')link $(ip -o link show "tmv-${n#tm-}" 2>/dev/null | grep -q 'state UP' && echo up || echo down) pids [$(ip netns pids "$n" | tr '\n' ' ')]"
  done
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install_arping ;;
  up) up ;;
  add) [ $# -eq 2 ] || usage "add NAME ADDR"; add "$1" "$2" ;;
  del) [ $# -eq 1 ] || usage "del NAME"; del "$1" ;;
  down) down ;;
  exec) [ $# -ge 2 ] || usage "exec NAME CMD…"; need "$1"; in_ns "$@" ;;
  cut) [ $# -eq 1 ] || usage "cut NAME"; need "$1"; ip link set "tmv-$1" down; echo "netns.sh: $1 cut off" ;;
  heal) [ $# -eq 1 ] || usage "heal NAME"; need "$1"; ip link set "tmv-$1" up; echo "netns.sh: $1 reconnected" ;;
  block) [ $# -eq 2 ] || usage "block A B"; block "$1" "$2" ;;
  unblock) [ $# -eq 2 ] || usage "unblock A B"; block "$1" "$2" unblock ;;
  vip-add) [ $# -ge 2 ] || usage "vip-add NAME IP/24 [GARPS]"; vip_add "$@" ;;
  vip-del) [ $# -eq 2 ] || usage "vip-del NAME IP/24"; vip_del "$1" "$2" ;;
  garp) [ $# -ge 2 ] || usage "garp NAME IP [COUNT]"; garp "$@" ;;
  mac) [ $# -eq 1 ] || usage "mac NAME"; mac "$1" ;;
  status) status ;;
  *) usage "install | up | add NAME ADDR | del NAME | down | exec NAME CMD… | cut NAME | heal NAME | block A B | unblock A B | vip-add NAME IP/24 [GARPS] | vip-del NAME IP/24 | garp NAME IP [COUNT] | mac NAME | status" ;;
esac
