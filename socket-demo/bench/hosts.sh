#!/usr/bin/env bash
# socket-demo server vs a real redis-server across a network link, side by side in one run.
#
# Two hosts made by tests/netns/netns.sh (network namespaces joined by veth pairs through a
# switch; addresses that exist only inside them): both servers on the host `server`, listening
# on TCP, and redis-benchmark on the host `client`, so every request crosses the link:
#
#   redis-benchmark -h 10.23.0.1 -p PORT -t ping,set,get,incr,mset -n N -c 50         (no pipelining)
#   redis-benchmark -h 10.23.0.1 -p PORT -t ping,set,get,incr,mset -n N16 -c 50 -P 16 (16 pipelined)
#
# Each test (`-t ping`, then `-t set`, ...) runs in rounds, and in each round against both
# servers one right after the other (socket-demo first in odd rounds, redis-server first in
# even ones), so that a change in the machine's load falls on both. Per line: the median
# requests/s of each server over the rounds, and the median over the rounds of the ratio
# socket-demo / redis-server within a round (goal: >= 1.0 on every line), which compares runs
# made seconds apart only. The load average is printed before and after: the machine is shared.
#
# Run from the repo root after `cargo build --release` (make bench does both), as root (network
# namespaces); without root it says SKIPPED and exits 0. The binary is
# ${CARGO_TARGET_DIR:-target}/release/socket-demo unless SOCKET_DEMO_BIN says otherwise;
# REQUESTS, REQUESTS_PIPELINED, CLIENTS and TESTS override -n (20000), -n with -P 16
# (200000), -c (50) and -t; ROUNDS (default 11) sets the rounds; SERVER_ARGS adds options to
# socket-demo server (SERVER_ARGS='--busy-poll-us 0', say). PIN=0 leaves the processes unpinned (by default, where taskset exists, both
# servers run on the last CPU and redis-benchmark on the first).
#
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools); it stops with a
# message if they are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
netns=$here/../../tests/netns/netns.sh

# shellcheck source=socket-demo/bench/redis-benchmark.bash
source "$here/redis-benchmark.bash"

if [[ ${1:-} != --inside ]]; then
    BIN=${SOCKET_DEMO_BIN:-${CARGO_TARGET_DIR:-target}/release/socket-demo}
    need_redis_and bench/hosts.sh "$BIN"
    status=0
    reason=$(bash "$netns" check 2>&1) || status=$?
    if ((status == 77)); then
        echo "SKIPPED bench/hosts.sh: $reason"
        exit 0
    elif ((status != 0)); then
        echo "bench/hosts.sh: $reason" >&2
        exit 1
    fi
    # The hosts exist for as long as this script's second half runs, and go when it ends.
    SOCKET_DEMO_BIN=$(readlink -f "$BIN") exec bash "$netns" run server client -- bash "$0" --inside
fi

# From here on: inside `netns.sh run`, which set NETNS_SERVER, NETNS_CLIENT and ADDR_SERVER.
BIN=$SOCKET_DEMO_BIN
REQUESTS=${REQUESTS:-20000}
REQUESTS_PIPELINED=${REQUESTS_PIPELINED:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-ping,set,get,incr,mset}
ROUNDS=${ROUNDS:-11}
OURS_PORT=6380
REDIS_PORT=6379

tmp=$(mktemp -d /tmp/socket-demo-bench-hosts.XXXXXX)
ours_pid=
redis_pid=
trap cleanup EXIT

pin_apart
on_server=(ip netns exec "$NETNS_SERVER" "${server_cpu[@]}")
on_client() { ip netns exec "$NETNS_CLIENT" "$@"; }

# `ip netns exec` and taskset exec the program: $! is the server itself (which it would not be
# through a shell function, run in a subshell of its own).
read -ra server_args <<<"${SERVER_ARGS:-}"
"${on_server[@]}" "$BIN" server --tcp "0.0.0.0:$OURS_PORT" "${server_args[@]}" >"$tmp/ours.log" 2>&1 &
ours_pid=$!
# Protected mode would refuse clients from another host when no password is set.
"${on_server[@]}" redis-server --bind 0.0.0.0 --port "$REDIS_PORT" --protected-mode no \
    --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!

wait_ready() { # port name
    for _ in $(seq 200); do
        if [[ $(on_client redis-cli -h "$ADDR_SERVER" -p "$1" PING 2>/dev/null) == PONG ]]; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench/hosts.sh: $2 did not answer PING on $ADDR_SERVER:$1" >&2
    exit 1
}
wait_ready "$OURS_PORT" socket-demo
wait_ready "$REDIS_PORT" redis-server

# "NAME RPS" per line of one test (`-t ping` makes two lines, PING_INLINE and PING_MBULK).
measure() { # port test requests pipeline
    on_client "${client_cpu[@]}" redis-benchmark -h "$ADDR_SERVER" -p "$1" -t "$2" \
        -n "$3" -c "$CLIENTS" -P "$4" --csv | rps_lines
}

# One measurement of server $1 (ours or theirs): its "NAME RPS" lines in $got, the CPU time it
# used meanwhile added to ours_cpu or theirs_cpu. Called as it is, not in $(...), whose
# subshell would lose the sums.
measure_one() { # ours|theirs test requests pipeline
    local pid=$ours_pid port=$OURS_PORT before used
    if [[ $1 == theirs ]]; then pid=$redis_pid port=$REDIS_PORT; fi
    before=$(cpu_ticks "$pid")
    got=$(measure "$port" "$2" "$3" "$4")
    used=$(($(cpu_ticks "$pid") - before))
    if [[ $1 == ours ]]; then ours_cpu=$((ours_cpu + used)); else theirs_cpu=$((theirs_cpu + used)); fi
}
hz=$(getconf CLK_TCK)

# The median value per name of "NAME VALUE" lines, names in their first order.
median_of() {
    awk 'NF == 2 { if (!($1 in n)) order[++names] = $1; v[$1, ++n[$1]] = $2 }
         END {
             for (t = 1; t <= names; t++) {
                 name = order[t]; k = n[name]
                 for (i = 1; i <= k; i++) s[i] = v[name, i]
                 for (i = 2; i <= k; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
                 print name, (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
             }
         }'
}

load() { uptime | sed 's/.*load average/load average/'; }

echo "redis-benchmark -h $ADDR_SERVER -t $TESTS -c $CLIENTS, TCP across a veth link between two network namespaces, $(nproc) CPUs${server_cpu:+, servers and client pinned apart}${SERVER_ARGS:+, socket-demo server $SERVER_ARGS}"
echo "$ROUNDS rounds of each test, the two servers one after the other in each; -n $REQUESTS without pipelining, -n $REQUESTS_PIPELINED with -P 16"
echo "requests/s: each server's median; ratio: the median of the rounds' socket-demo/redis-server"
echo "before: $(load)"
printf '%-16s %9s %16s %16s %7s\n' test pipeline socket-demo redis-server ratio
worst=
for pipeline in 1 16; do
    requests=$REQUESTS
    ((pipeline == 1)) || requests=$REQUESTS_PIPELINED
    ours_all="" theirs_all="" ratios="" ours_cpu=0 theirs_cpu=0
    for round in $(seq "$ROUNDS"); do
        for test in ${TESTS//,/ }; do
            if ((round % 2)); then
                measure_one ours "$test" "$requests" "$pipeline" && ours=$got
                measure_one theirs "$test" "$requests" "$pipeline" && theirs=$got
            else
                measure_one theirs "$test" "$requests" "$pipeline" && theirs=$got
                measure_one ours "$test" "$requests" "$pipeline" && ours=$got
            fi
            ours_all+=$ours$'\n' theirs_all+=$theirs$'\n'
            ratios+=$(paste -d ' ' <(echo "$ours") <(echo "$theirs") |
                awk '{ printf "%s %.4f\n", $1, ($4 > 0 ? $2 / $4 : 0) }')$'\n'
        done
    done
    # The three lists name the same lines in the same order: NAME OURS NAME THEIRS NAME RATIO.
    while read -r test rps _ other _ ratio; do
        printf '%-16s %9s %16.0f %16.0f %7.2f\n' "$test" "$pipeline" "$rps" "$other" "$ratio"
        if [[ -z $worst ]] || awk -v r="$ratio" -v w="$worst" 'BEGIN { exit !(r < w) }'; then
            worst=$(printf '%.2f' "$ratio")
        fi
    done < <(paste -d ' ' <(median_of <<<"$ours_all") <(median_of <<<"$theirs_all") \
        <(median_of <<<"$ratios"))
    awk -v a="$ours_cpu" -v b="$theirs_cpu" -v hz="$hz" -v p="$pipeline" 'BEGIN {
        printf "  server CPU time for all -P %s runs: socket-demo %.2f s, redis-server %.2f s (%.2fx)\n",
            p, a / hz, b / hz, (a > 0 ? b / a : 0) }'
done
echo "after: $(load)"
echo "lowest ratio socket-demo/redis-server: $worst (goal: >= 1.00)"

kill -TERM "$ours_pid"
wait "$ours_pid" || { echo "bench/hosts.sh: socket-demo server did not exit 0" >&2; exit 1; }
ours_pid=
