#!/usr/bin/env bash
# Hosts for tests that need several machines: network namespaces on one private switch.
#
# Each host is a network namespace with its own stack: a loopback, one interface `eth0`, and an
# address from 10.23.0.0/16 (the first host named gets 10.23.0.1, the next 10.23.0.2, ...).
# Every `eth0` is one end of a veth pair whose other end, `p-HOST`, is a port of a bridge in a
# namespace of its own, the switch. Nothing else is connected: the hosts have no route to any
# other network, no namespace of ours is ever joined to the machine's own, and the addresses
# exist only inside them, so no packet leaves and nothing outside is ever a target. Every
# interface is created directly in its namespace (`ip link add ... netns NS`), so the
# machine's own namespace never holds a name of ours, even for a moment.
#
# Usage:
#   netns.sh up HOST...              make the hosts, print them, and keep them until stdin
#                                    ends (or SIGINT, SIGTERM, SIGHUP): then remove them all
#   netns.sh run HOST... -- CMD...   make the hosts, run CMD with them described in its
#                                    environment (below), remove them; CMD's exit status
#   netns.sh loss RUN HOST PERCENT   drop PERCENT% of the packets on HOST's link, each way
#                                    (nft `numgen random`); 0 stops dropping
#   netns.sh rate RUN HOST RATE      limit HOST's link to RATE each way (tc `tbf`, e.g. 1mbit);
#                                    `off` removes the limit
#   netns.sh link RUN HOST down|up   unplug HOST's cable at the switch, or plug it back
#   netns.sh vanish RUN HOST         HOST is gone, as if its power failed: the cable is cut
#                                    first (so no FIN or RST gets out), then every process in
#                                    it is killed and its namespace deleted
#   netns.sh sweep                   remove what a run killed with SIGKILL left behind (make
#                                    clean-ipc runs it)
#   netns.sh check                   exit 0 if hosts can be made here; else 77 and the reason
#
# HOST names are a lower-case letter and up to 12 letters and digits (`server`, `c1`). `up`
# prints one line per host, `host NAME NETNS ADDR`, then `ready RUN`: RUN names this set of
# hosts in the other subcommands. `run` gives CMD NETNS_RUN=RUN, NETNS_SH=this script, and for
# each host NETNS_<NAME>=namespace and ADDR_<NAME>=address (NAME upper-cased). A program runs
# on a host with `ip netns exec NETNS PROGRAM...`.
#
# Faults need no netem (which not every kernel has, this project's included): nft drops with
# `numgen random mod 100 < N`, and tc's token bucket filter (tbf) limits the rate. Generic segmentation offload is off on both ends
# of every link (gso_max_segs 1), so a packet is one wire-sized segment, as on a real cable,
# and a drop loses one segment rather than 64 KiB of them.
#
# Removal: `up` and `run` remove every namespace they made on every way out: normal exit, an
# error, SIGINT, SIGTERM, SIGHUP, and the end of stdin (`up`: a test process that dies, even
# by SIGKILL, closes the pipe). Processes still running on a host are stopped first (SIGTERM,
# a grace period, SIGKILL): a namespace lives as long as anything in it does. The one way out
# no trap sees is SIGKILL to this script itself. So namespace names carry the pid and start
# time of the script that made them (ipc-demo-net-PID-START-HOST, the switch
# ipc-demo-net-PID-START.switch), and every `up`, `run` and `sweep` removes the namespaces
# whose maker is no longer alive. Start times tell a recycled pid from its first owner; a live
# run's hosts are never touched.
#
# Exit status: 0 done; 1 an operation failed; 2 usage; 77 hosts cannot be made here (not root,
# no ip, nft or tc, or the kernel refuses namespaces), with the reason on stderr.
set -euo pipefail

readonly PREFIX=ipc-demo-net
readonly SUBNET=10.23
readonly SWITCH_SUFFIX=.switch
# Between SIGTERM and SIGKILL for what still runs on a host being removed.
readonly GRACE_TENTHS=20

me=netns.sh
die() { echo "$me: $*" >&2; exit 1; }
usage() { echo "$me: $*" >&2; echo "usage: see the comment at the top of $0" >&2; exit 2; }
skip() { echo "$me: cannot make hosts here: $*" >&2; exit 77; }

# The start time of process $1 (field 22 of /proc/PID/stat, in clock ticks since boot), or
# nothing if it is gone. The command name (field 2) may hold spaces and parentheses, so the
# fields are counted after its last ')'.
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    local -a rest
    read -ra rest <<<"${stat##*) }"
    echo "${rest[19]}"
}

# Every namespace name that `ip netns` knows (its lines may end with "(id: N)").
all_netns() { ip netns list 2>/dev/null | awk '{ print $1 }'; }

# Stop every process in namespace $1: SIGTERM, up to the grace period, then SIGKILL.
stop_processes() {
    local ns=$1 pids i
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < GRACE_TENTHS; i++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z $pids ]] && return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

# Remove namespace $1 and whatever runs in it. False if it was already gone (a host that
# vanished, or a parallel sweep that got there first) or cannot be removed.
remove_netns() {
    [[ -e /run/netns/$1 ]] || return 1
    stop_processes "$1"
    ip netns delete "$1" 2>/dev/null
}

# Remove the namespaces of every run whose maker is no longer alive (see "Removal").
sweep() {
    local ns pid start
    for ns in $(all_netns); do
        [[ $ns =~ ^$PREFIX-([0-9]+)-([0-9]+)[-.] ]] || continue
        pid=${BASH_REMATCH[1]} start=${BASH_REMATCH[2]}
        [[ $(start_time "$pid") == "$start" ]] && continue
        if remove_netns "$ns"; then
            echo "$me: removed $ns (left by pid $pid, which is gone)" >&2
        fi
    done
}

check() {
    ((EUID == 0)) || skip "not root (making network namespaces needs CAP_SYS_ADMIN)"
    local tool
    for tool in ip nft tc; do
        command -v "$tool" >/dev/null || skip "no $tool (Debian: apt-get install iproute2 nftables)"
    done
}

valid_host() { [[ $1 =~ ^[a-z][a-z0-9]{0,11}$ ]]; }

# This run's name: the pid and start time of this script (see "Removal").
run_id() { echo "$$-$(start_time $$)"; }
host_ns() { echo "$PREFIX-$1-$2"; }     # RUN HOST
switch_ns() { echo "$PREFIX-$1$SWITCH_SUFFIX"; } # RUN

RUN=
MADE=()
teardown() {
    local ns
    # The hosts first, then the switch: nothing is left half-connected if this is cut short.
    for ns in "${MADE[@]}"; do
        [[ $ns == *"$SWITCH_SUFFIX" ]] || remove_netns "$ns" || true
    done
    for ns in "${MADE[@]}"; do
        [[ $ns != *"$SWITCH_SUFFIX" ]] || remove_netns "$ns" || true
    done
    MADE=()
}

# Make namespace $1 and remember it for the teardown, which is armed before the first one.
add_netns() {
    local err
    if ! err=$(ip netns add "$1" 2>&1); then
        # The very first one tells whether this machine can make namespaces at all.
        ((${#MADE[@]} == 0)) && skip "ip netns add: $err"
        die "ip netns add $1: $err"
    fi
    MADE+=("$1")
    # A namespace starts with its loopback down. IPv6 off: no router solicitations, duplicate
    # address detection or multicast reports, only the traffic a test makes.
    ip -n "$1" link set lo up
    # shellcheck disable=SC2016 # $f is the inner shell's
    ip netns exec "$1" sh -c 'for f in all default; do
        echo 1 >"/proc/sys/net/ipv6/conf/$f/disable_ipv6"; done' 2>/dev/null || true
}

# Make the switch and HOSTS; sets RUN, and HOSTS_MADE to one `host NAME NETNS ADDR` line each.
HOSTS_MADE=()
make_hosts() {
    local -a hosts=("$@")
    local h i=0 sw ns
    ((${#hosts[@]} > 0)) || usage "name at least one host"
    ((${#hosts[@]} <= 254)) || usage "at most 254 hosts"
    for h in "${hosts[@]}"; do
        valid_host "$h" || usage "host name '$h': a lower-case letter, then at most 12 letters or digits"
    done
    if [[ $(printf '%s\n' "${hosts[@]}" | sort | uniq -d) ]]; then usage "a host is named twice"; fi
    check
    sweep
    RUN=$(run_id)
    sw=$(switch_ns "$RUN")
    add_netns "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    for h in "${hosts[@]}"; do
        i=$((i + 1))
        ns=$(host_ns "$RUN" "$h")
        add_netns "$ns"
        ip link add eth0 netns "$ns" type veth peer name "p-$h" netns "$sw"
        ip -n "$ns" link set eth0 gso_max_segs 1
        ip -n "$sw" link set "p-$h" gso_max_segs 1
        ip -n "$sw" link set "p-$h" master br0 up
        ip -n "$ns" addr add "$SUBNET.0.$i/16" dev eth0
        ip -n "$ns" link set eth0 up
        HOSTS_MADE+=("host $h $ns $SUBNET.0.$i")
    done
}

# RUN HOST -> the host's namespace, checked to exist.
existing_host() {
    [[ $1 =~ ^[0-9]+-[0-9]+$ ]] || usage "RUN '$1' is not what 'up' printed (PID-START)"
    valid_host "$2" || usage "no such host name: '$2'"
    local ns
    ns=$(host_ns "$1" "$2")
    [[ -e /run/netns/$ns ]] || die "no host $2 in run $1 (no namespace $ns)"
    echo "$ns"
}

cmd_up() {
    trap teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    make_hosts "$@"
    printf '%s\n' "${HOSTS_MADE[@]}" "ready $RUN"
    # Until stdin ends. `read` returns to run a trap as soon as a signal comes.
    while read -r _; do :; done
}

cmd_run() {
    local -a hosts=()
    while (($#)) && [[ $1 != -- ]]; do hosts+=("$1"); shift; done
    (($# >= 2)) || usage "run HOST... -- COMMAND..."
    shift
    local child=
    trap teardown EXIT
    # A signal stops the command first (it may be in no namespace of ours), then the hosts go.
    trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 130' INT
    trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 143' TERM
    trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; exit 129' HUP
    make_hosts "${hosts[@]}"
    local line _host name ns addr
    for line in "${HOSTS_MADE[@]}"; do
        read -r _host name ns addr <<<"$line"
        export "NETNS_${name^^}=$ns" "ADDR_${name^^}=$addr"
    done
    NETNS_SH=$(readlink -f "$0")
    export NETNS_RUN=$RUN NETNS_SH
    "$@" <&0 &
    child=$!
    local status=0
    wait "$child" || status=$?
    child=
    exit "$status"
}

cmd_loss() {
    (($# == 3)) || usage "loss RUN HOST PERCENT"
    if [[ ! $3 =~ ^[0-9]{1,3}$ ]] || (($3 > 100)); then
        usage "PERCENT '$3': a whole number from 0 to 100"
    fi
    local ns drop="numgen random mod 100 < $3 drop"
    ns=$(existing_host "$1" "$2")
    (($3 == 100)) && drop=drop # (numgen's range is 0-99)
    # Replace the table in one transaction: add (so that the delete cannot fail), delete, make.
    {
        echo "add table inet ipc_demo_faults"
        echo "delete table inet ipc_demo_faults"
        if (($3 > 0)); then
            echo "table inet ipc_demo_faults {"
            echo "  chain in { type filter hook input priority 0; policy accept;"
            echo "    iifname \"eth0\" $drop; }"
            echo "  chain out { type filter hook output priority 0; policy accept;"
            echo "    oifname \"eth0\" $drop; }"
            echo "}"
        fi
    } | ip netns exec "$ns" nft -f -
}

cmd_rate() {
    (($# == 3)) || usage "rate RUN HOST RATE"
    if [[ $3 != off && ! $3 =~ ^[0-9]+(bit|kbit|mbit|gbit)$ ]]; then
        usage "RATE '$3': e.g. 200kbit or 10mbit, or off"
    fi
    local ns sw
    ns=$(existing_host "$1" "$2")
    sw=$(switch_ns "$1")
    if [[ $3 == off ]]; then
        tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
        tc -n "$sw" qdisc del dev "p-$2" root 2>/dev/null || true
        return 0
    fi
    # Out of the host at its eth0, into it at its switch port. A burst of two frames; a queue of
    # up to two seconds at that rate, so that the limit delays rather than drops.
    tc -n "$ns" qdisc replace dev eth0 root tbf rate "$3" burst 3028 latency 2s
    tc -n "$sw" qdisc replace dev "p-$2" root tbf rate "$3" burst 3028 latency 2s
}

cmd_link() {
    (($# == 3)) || usage "link RUN HOST down|up"
    [[ $3 == down || $3 == up ]] || usage "link: down or up, not '$3'"
    existing_host "$1" "$2" >/dev/null
    ip -n "$(switch_ns "$1")" link set "p-$2" "$3"
}

cmd_vanish() {
    (($# == 2)) || usage "vanish RUN HOST"
    local ns
    ns=$(existing_host "$1" "$2")
    # The cable first: deleting one end of a veth pair deletes both, and the host's processes
    # die with nothing connected, as when the power fails.
    ip -n "$(switch_ns "$1")" link delete "p-$2"
    local pids
    pids=$(ip netns pids "$ns" || true)
    # shellcheck disable=SC2086
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    ip netns delete "$ns"
}

(($#)) || usage "no subcommand"
sub=$1
shift
case $sub in
    up) cmd_up "$@" ;;
    run) cmd_run "$@" ;;
    loss) cmd_loss "$@" ;;
    rate) cmd_rate "$@" ;;
    link) cmd_link "$@" ;;
    vanish) cmd_vanish "$@" ;;
    # Without root there is nothing this user could have made, nor could remove.
    sweep) (($# == 0)) || usage "sweep takes no arguments"; ((EUID != 0)) || sweep ;;
    check) (($# == 0)) || usage "check takes no arguments"; check ;;
    *) usage "unknown subcommand '$sub'" ;;
esac
