#!/usr/bin/env bash
# A wlnode federation of N nodes, each in its own Linux network namespace, for
# partition and latency experiments on one machine (needs root, iproute2, and for
# `netem` either the kernel's sch_netem or, with `up --links user`, python3 and
# /dev/net/tun).
#
# Topology: a "switch" namespace PREFIX-sw holds a bridge; node i lives in namespace
# PREFIX-n<i> with interface eth0 = 10.203.0.<i>/24, joined to the bridge by a veth
# pair (port p<i> in the switch). With `up --links user` each veth pair is replaced by
# two TAP devices that userlink.py (running in the switch namespace) joins in user
# space, adding delay and loss where the kernel has no sch_netem. Every node peers
# with every other node. Nothing is
# created in the host's namespace: every namespace and link carries the prefix, and
# `down` removes all of them (it is idempotent).
#
# Usage: netns.sh [-p PREFIX] [-d DIR] COMMAND [ARGS]
#   check                  exit 0 if namespaces, veths and a bridge can be made here;
#                          otherwise say why and exit 2; also says whether `tc netem`
#                          and userspace links work
#   up [-n N] [--links veth|user]
#                          create N nodes (default 3, at most 50): namespaces, links
#                          (veth pairs, or TAP pairs joined by userlink.py), keys,
#                          signed roster, configs; start a `wlnode run` in each and
#                          wait until every API answers
#   run [-n N] [--links veth|user]
#                          up, then wait for Ctrl-C and tear everything down
#   start [I]              start node I (default: every node that is not running)
#   stop [I]               stop node I cleanly (default: every node)
#   status                 `wlnode status` of every node
#   exec I CMD [ARG...]    run CMD in node I's namespace, with WLNODE_CONFIG set to
#                          its config (so `wlnode entry list` needs no --config)
#   cli I ARG...           shorthand for: exec I $WLNODE ARG...
#   netem I ARG...         tc netem on node I's link, both directions, e.g.
#                          `netem 2 delay 100ms 20ms loss 5%`; `netem 2 clear` removes it.
#                          On userspace links: `delay Nms` and/or `loss P%` only
#   cut I [J]              cut node I's link to the switch (isolates I), or with J
#                          drop only the traffic between I and J (partition)
#   heal [I [J]]           undo `cut I` or `cut I J`; without arguments, heal everything
#   down [--keep]          stop every node, delete the namespaces and links, and the
#                          state folder (unless --keep: logs stay for a post-mortem)
# Options:
#   -p PREFIX  name prefix of the namespaces: a lower-case letter, then up to 9
#              lower-case letters or digits (default wlnet; env WLNODE_NETNS_PREFIX)
#   -d DIR     state folder: keys, configs, data, logs, pids
#              (default ${TMPDIR:-/tmp}/wlnode-netns-PREFIX; env WLNODE_NETNS_DIR)
# Environment: WLNODE, the wlnode binary (default: wlnode on PATH); WLNODE_LOG, the
# nodes' log filter.
set -euo pipefail

WLNODE="${WLNODE:-wlnode}"
PREFIX="${WLNODE_NETNS_PREFIX:-wlnet}"
STATE="${WLNODE_NETNS_DIR:-}"
SUBNET="10.203.0"
PORT=7400
API_PORT=7480
MARKER=".wlnode-netns"
START_TIMEOUT=60
STOP_TIMEOUT=30

die() {
  echo "netns.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^# nodes. log filter/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while getopts ":p:d:h" opt; do
  case "$opt" in
    p) PREFIX="$OPTARG" ;;
    d) STATE="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 1 ;;
  esac
done
shift $((OPTIND - 1))
[[ "$PREFIX" =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "bad prefix '$PREFIX': a lower-case letter, then up to 9 lower-case letters or digits"
STATE="${STATE:-${TMPDIR:-/tmp}/wlnode-netns-$PREFIX}"
SW="$PREFIX-sw"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
USERLINK_TIMEOUT=10

ns_of() { echo "$PREFIX-n$1"; }
addr_of() { echo "$SUBNET.$1"; }
agency_of() { echo "NODE-$1"; }
node_dir() { echo "$STATE/fed/n$1"; }
config_of() { echo "$STATE/fed/n$1/node.toml"; }
pid_file() { echo "$STATE/pids/n$1.pid"; }
log_of() { echo "$STATE/logs/n$1.log"; }

count() {
  [ -f "$STATE/count" ] || die "no federation '$PREFIX' (no $STATE/count); run: netns.sh -p $PREFIX up"
  cat "$STATE/count"
}

check_node() {
  local n
  n="$(count)"
  if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt "$n" ]; then
    die "no node '$1' (nodes are 1..$n)"
  fi
}

need_wlnode() {
  command -v "$WLNODE" >/dev/null 2>&1 || die "cannot run '$WLNODE'; install wlnode or set WLNODE=/path/to/wlnode"
}

# Namespaces of this prefix that exist now.
our_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-(sw|n[0-9]+|probe)\$" || true
}

# ---------------------------------------------------------------- check

cmd_check() {
  command -v ip >/dev/null 2>&1 || { echo "netns.sh: 'ip' (iproute2) is not installed" >&2; exit 2; }
  if [ "$(id -u)" != 0 ]; then
    echo "netns.sh: creating network namespaces needs root (uid is $(id -u))" >&2
    exit 2
  fi
  local probe="$PREFIX-probe" err
  ip netns del "$probe" 2>/dev/null || true
  if ! err="$(ip netns add "$probe" 2>&1)"; then
    echo "netns.sh: cannot create a network namespace: $err" >&2
    exit 2
  fi
  if ! err="$({ ip -n "$probe" link add br0 type bridge &&
    ip -n "$probe" link add v0 type veth peer name v1 &&
    ip -n "$probe" link set v0 master br0 &&
    ip -n "$probe" link set lo up; } 2>&1)"; then
    ip netns del "$probe" 2>/dev/null || true
    echo "netns.sh: cannot create a bridge and veth pair in a namespace: $err" >&2
    exit 2
  fi
  local netem="yes"
  tc -n "$probe" qdisc add dev v0 root netem delay 1ms >/dev/null 2>&1 || netem="no (the kernel lacks sch_netem; \`netem\` will fail)"
  local user="yes"
  if ! command -v python3 >/dev/null 2>&1; then
    user="no (python3 is not installed)"
  elif ! err="$(ip netns exec "$probe" python3 "$HERE/userlink.py" --probe 2>&1)"; then
    user="no (cannot make a TAP device: ${err##*$'\n'})"
  fi
  ip netns del "$probe"
  echo "netns.sh: network namespaces, veth pairs and bridges work here; tc netem: $netem; userspace links: $user"
}

# ---------------------------------------------------------------- up / down

create_network() {
  local n="$1" links="$2" i ns deadline
  ip netns add "$SW"
  ip -n "$SW" link set lo up
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  mkdir -p -- "$STATE/links" "$STATE/logs"
  echo "$links" >"$STATE/links/mode"
  if [ "$links" = user ]; then
    # The forwarder lives in the switch namespace, so `down` stops it with the nodes;
    # it creates the TAP pairs e<i>/p<i> there.
    ip netns exec "$SW" python3 "$HERE/userlink.py" "$STATE/links" "$STATE/links/ready" "$n" \
      </dev/null >>"$STATE/logs/userlink.log" 2>&1 &
    local forwarder=$!
    deadline=$((SECONDS + USERLINK_TIMEOUT))
    until [ -s "$STATE/links/ready" ]; do
      kill -0 "$forwarder" 2>/dev/null || die "userlink.py exited while creating its links: $(tail -n 3 "$STATE/logs/userlink.log")"
      [ "$SECONDS" -lt "$deadline" ] || die "userlink.py did not create its links within ${USERLINK_TIMEOUT}s; its log: $STATE/logs/userlink.log"
      sleep 0.1
    done
  fi
  for ((i = 1; i <= n; i++)); do
    ns="$(ns_of "$i")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    if [ "$links" = user ]; then
      ip -n "$SW" link set "e$i" netns "$ns"
      ip -n "$ns" link set "e$i" name eth0
    else
      # Created directly inside the two namespaces: no name ever exists on the host.
      ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$SW"
    fi
    ip -n "$SW" link set "p$i" master br0
    ip -n "$SW" link set "p$i" up
    ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

json_field() {
  sed -n "s/^ *\"$1\": *\"\\([^\"]*\\)\".*/\\1/p"
}

generate_federation() {
  local n="$1" i j dir out key peer auth err since roster="$STATE/fed/roster.toml"
  mkdir -p "$STATE/fed" "$STATE/pids" "$STATE/logs"
  out="$("$WLNODE" roster init --federation "netns-$PREFIX" --authority-key "$STATE/fed/authority.key" \
    --out "$roster" --json)" || die "wlnode roster init failed"
  auth="$(json_field authority_key <<<"$out")"
  [ -n "$auth" ] || die "wlnode roster init printed no authority key"
  local valid_from=()
  if since="$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"; then
    valid_from=(--valid-from "$since")
  fi
  for ((i = 1; i <= n; i++)); do
    dir="$(node_dir "$i")"
    out="$("$WLNODE" init --agency "$(agency_of "$i")" --dir "$dir" \
      --listen "/ip4/$(addr_of "$i")/tcp/$PORT" --api "127.0.0.1:$API_PORT" --json)" ||
      die "wlnode init failed for node $i"
    key="$(json_field signing_key <<<"$out")"
    peer="$(json_field peer_id <<<"$out")"
    enc="$(json_field encryption_key <<<"$out")"
    if [ -z "$key" ] || [ -z "$peer" ] || [ -z "$enc" ]; then die "wlnode init printed no key for node $i"; fi
    if ! err="$("$WLNODE" roster add-member --roster "$roster" --agency "$(agency_of "$i")" \
      --name "netns node $i" --country XN --role member --signing-key "$key" \
      --node-id "$peer" --encryption-key "$enc" --group netns ${valid_from[@]+"${valid_from[@]}"} 2>&1 >/dev/null)"; then
      die "adding node $i to the roster failed: $err"
    fi
    {
      echo "# netns.sh node $i in namespace $(ns_of "$i"); generated, not an example to copy."
      echo "agency = \"$(agency_of "$i")\""
      echo 'data_dir = "data"'
      echo 'roster = "../roster.toml"'
      echo "roster_authorities = [\"$auth\"]"
      echo 'agency_key = "agency.key"'
      echo 'node_key = "node.key"'
      echo 'encryption_key = "encryption.key"'
      echo "listen = [\"/ip4/$(addr_of "$i")/tcp/$PORT\"]"
      echo 'log_format = "text"'
      echo
      echo '[api]'
      echo "listen = \"127.0.0.1:$API_PORT\""
      echo 'token_file = "api.token"'
      for ((j = 1; j <= n; j++)); do
        [ "$j" = "$i" ] && continue
        echo
        echo '[[peers]]'
        echo "agency = \"$(agency_of "$j")\""
        echo "addrs = [\"/ip4/$(addr_of "$j")/tcp/$PORT\"]"
      done
      cat <<'EOF'

# Fast reconciliation and reconnection, for experiments.
[sync]
anti_entropy_interval = "5s"
reconnect_min = "200ms"
reconnect_max = "5s"

# Open policy: every record its distribution admits goes everywhere.
[[share]]
to = ["*"]
origins = ["*"]
relay = true

[[accept]]
from = ["*"]
origins = ["*"]
EOF
    } >"$dir/node.toml"
  done
  "$WLNODE" roster sign --roster "$roster" --authority-key "$STATE/fed/authority.key" >/dev/null ||
    die "wlnode roster sign failed"
}

cmd_up() {
  local n=3 links=veth
  while [ $# -gt 0 ]; do
    case "$1" in
      -n) [ $# -ge 2 ] || die "-n needs a number"; n="$2"; shift 2 ;;
      --links)
        [ $# -ge 2 ] || die "--links needs veth or user"
        case "$2" in veth | user) links="$2" ;; *) die "--links must be veth or user, not '$2'" ;; esac
        shift 2
        ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 50 ]; then die "-n must be 1..50"; fi
  need_wlnode
  [ -z "$(our_namespaces)" ] || die "namespaces with prefix '$PREFIX' exist already; run: netns.sh -p $PREFIX down"
  [ ! -e "$STATE" ] || [ -e "$STATE/$MARKER" ] || die "$STATE exists and is not ours; choose another -d"
  rm -rf -- "$STATE"
  mkdir -p -- "$STATE"
  chmod 700 -- "$STATE"
  : >"$STATE/$MARKER"
  # Whatever fails from here on, leave nothing behind.
  trap 'echo "netns.sh: up failed; cleaning up" >&2; cmd_down >/dev/null 2>&1 || true' EXIT
  create_network "$n" "$links"
  generate_federation "$n"
  echo "$n" >"$STATE/count"
  cmd_start
  trap - EXIT
  echo "netns.sh: federation '$PREFIX' of $n nodes is up (state in $STATE)"
}

cmd_down() {
  local keep=0 ns pid pids deadline
  [ "${1:-}" = "--keep" ] && keep=1
  # Every process inside our namespaces is ours (the nodes, and userlink.py in the
  # switch namespace): TERM, then KILL.
  for ns in $(our_namespaces); do
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for ns in $(our_namespaces); do
    while [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.2
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  # Deleting a namespace deletes the veth ends and the bridge in it.
  for ns in $(our_namespaces); do
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -e "$STATE/$MARKER" ]; then
    rm -f -- "$STATE"/pids/*.pid
    if [ "$keep" = 0 ]; then rm -rf -- "$STATE"; fi
  fi
  [ -z "$(our_namespaces)" ] || die "could not delete: $(our_namespaces | tr '\n' ' ')"
  echo "netns.sh: federation '$PREFIX' is down"
}

cmd_run() {
  trap 'cmd_down' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cmd_up "$@"
  # cmd_up cleared its own failure trap; tear down on any exit from here on.
  trap 'cmd_down' EXIT
  echo "netns.sh: Ctrl-C tears it down. In another shell, e.g.:"
  echo "  $0 -p $PREFIX -d $STATE cli 1 status"
  echo "  $0 -p $PREFIX -d $STATE cut 1"
  while :; do sleep 3600 & wait $!; done
}

# ---------------------------------------------------------------- nodes

running_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  # Only a live process inside this node's namespace counts (no stale pid reuse).
  [ "$(ip netns identify "$pid" 2>/dev/null || true)" = "$(ns_of "$1")" ] || return 1
  echo "$pid"
}

start_one() {
  local i="$1" ns cfg
  ns="$(ns_of "$i")"
  cfg="$(config_of "$i")"
  if running_pid "$i" >/dev/null; then return 0; fi
  ip netns exec "$ns" "$WLNODE" run --config "$cfg" </dev/null >>"$(log_of "$i")" 2>&1 &
  echo "$!" >"$(pid_file "$i")"
}

wait_ready() {
  local i="$1" deadline=$((SECONDS + START_TIMEOUT))
  until ip netns exec "$(ns_of "$i")" "$WLNODE" status --config "$(config_of "$i")" >/dev/null 2>&1; do
    running_pid "$i" >/dev/null || die "node $i exited during start-up; its log: $(log_of "$i")"
    [ "$SECONDS" -lt "$deadline" ] || die "node $i did not answer within ${START_TIMEOUT}s; its log: $(log_of "$i")"
    sleep 0.3
  done
}

cmd_start() {
  local n i nodes=()
  n="$(count)"
  need_wlnode
  if [ $# -gt 0 ]; then check_node "$1"; nodes=("$1"); else for ((i = 1; i <= n; i++)); do nodes+=("$i"); done; fi
  for i in "${nodes[@]}"; do start_one "$i"; done
  for i in "${nodes[@]}"; do wait_ready "$i"; done
}

cmd_stop() {
  local n i pid deadline nodes=()
  n="$(count)"
  if [ $# -gt 0 ]; then check_node "$1"; nodes=("$1"); else for ((i = 1; i <= n; i++)); do nodes+=("$i"); done; fi
  for i in "${nodes[@]}"; do
    if pid="$(running_pid "$i")"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for i in "${nodes[@]}"; do
    while pid="$(running_pid "$i")" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if pid="$(running_pid "$i")"; then
      echo "netns.sh: node $i did not stop within ${STOP_TIMEOUT}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f -- "$(pid_file "$i")"
  done
}

cmd_status() {
  local n i
  n="$(count)"
  need_wlnode
  for ((i = 1; i <= n; i++)); do
    echo "== node $i ($(agency_of "$i"), $(ns_of "$i"), $(addr_of "$i"))"
    ip netns exec "$(ns_of "$i")" "$WLNODE" status --config "$(config_of "$i")" || true
  done
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: exec I CMD [ARG...]"
  check_node "$1"
  local i="$1"
  shift
  exec ip netns exec "$(ns_of "$i")" env WLNODE_CONFIG="$(config_of "$i")" "$@"
}

cmd_cli() {
  [ $# -ge 2 ] || die "usage: cli I ARG..."
  local i="$1"
  shift
  cmd_exec "$i" "$WLNODE" "$@"
}

# ---------------------------------------------------------------- faults

cmd_netem() {
  [ $# -ge 2 ] || die "usage: netem I (clear | ARG...), e.g. netem 2 delay 100ms loss 5%"
  check_node "$1"
  local i="$1" err
  shift
  if [ "$(cat "$STATE/links/mode" 2>/dev/null || echo veth)" = user ]; then
    userlink_netem "$i" "$@"
    return 0
  fi
  if [ "$1" = clear ]; then
    tc -n "$(ns_of "$i")" qdisc del dev eth0 root 2>/dev/null || true
    tc -n "$SW" qdisc del dev "p$i" root 2>/dev/null || true
    echo "netns.sh: node $i: netem cleared"
    return 0
  fi
  # netem acts on what an interface sends: set it on both ends of the link.
  if ! err="$(tc -n "$(ns_of "$i")" qdisc replace dev eth0 root netem "$@" 2>&1)"; then
    case "$err" in
      *"qdisc kind is unknown"*) die "tc netem is not available: the kernel lacks sch_netem (try: modprobe sch_netem)" ;;
      *) die "tc netem $*: $err" ;;
    esac
  fi
  tc -n "$SW" qdisc replace dev "p$i" root netem "$@"
  echo "netns.sh: node $i: netem $* (each direction)"
}

# `netem I ...` on userspace links: the settings file userlink.py watches.
userlink_netem() {
  local i="$1" delay=0 loss=0 f
  shift
  f="$STATE/links/n$i"
  if [ "$1" = clear ]; then
    rm -f -- "$f"
    echo "netns.sh: node $i: userspace link cleared"
    return 0
  fi
  while [ $# -gt 0 ]; do
    case "$1 ${2:-}" in
      "delay "*ms) [[ "$2" =~ ^[0-9]+(\.[0-9]+)?ms$ ]] || die "netem: bad delay '$2' (e.g. 100ms)"; delay="${2%ms}"; shift 2 ;;
      "loss "*%)
        [[ "$2" =~ ^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$ ]] || die "netem: bad loss '$2' (0% to 100%, e.g. 5%)"
        loss="${2%\%}"
        shift 2
        ;;
      *) die "netem on userspace links takes only 'delay Nms' and 'loss P%', not: $*" ;;
    esac
  done
  echo "$delay $loss" >"$f.tmp"
  mv -f -- "$f.tmp" "$f"
  echo "netns.sh: node $i: userspace link delay ${delay}ms loss ${loss}% (each direction)"
}

cmd_cut() {
  if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: cut I [J]"; fi
  check_node "$1"
  if [ $# = 1 ]; then
    ip -n "$SW" link set "p$1" down
    echo "netns.sh: node $1 cut off"
  else
    check_node "$2"
    [ "$1" != "$2" ] || die "cut I J needs two different nodes"
    ip -n "$(ns_of "$1")" route replace blackhole "$(addr_of "$2")/32"
    ip -n "$(ns_of "$2")" route replace blackhole "$(addr_of "$1")/32"
    echo "netns.sh: link between nodes $1 and $2 cut"
  fi
}

cmd_heal() {
  local n i
  n="$(count)"
  case $# in
    0)
      for ((i = 1; i <= n; i++)); do
        ip -n "$SW" link set "p$i" up
        ip -n "$(ns_of "$i")" route flush type blackhole 2>/dev/null || true
      done
      echo "netns.sh: every link healed"
      ;;
    1)
      check_node "$1"
      ip -n "$SW" link set "p$1" up
      echo "netns.sh: node $1 reconnected"
      ;;
    2)
      check_node "$1"
      check_node "$2"
      ip -n "$(ns_of "$1")" route del blackhole "$(addr_of "$2")/32" 2>/dev/null || true
      ip -n "$(ns_of "$2")" route del blackhole "$(addr_of "$1")/32" 2>/dev/null || true
      echo "netns.sh: link between nodes $1 and $2 healed"
      ;;
    *) die "usage: heal [I [J]]" ;;
  esac
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || { usage >&2; exit 1; }
command="$1"
shift
case "$command" in
  check) cmd_check "$@" ;;
  up) cmd_up "$@" ;;
  run) cmd_run "$@" ;;
  down) cmd_down "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  exec) cmd_exec "$@" ;;
  cli) cmd_cli "$@" ;;
  netem) cmd_netem "$@" ;;
  cut) cmd_cut "$@" ;;
  heal) cmd_heal "$@" ;;
  help | -h | --help) usage ;;
  *) usage >&2; die "unknown command: $command" ;;
esac
