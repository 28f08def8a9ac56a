#!/usr/bin/env bash
# socket-demo server vs a real redis-server, side by side in one run, both on Unix sockets:
#
#   redis-benchmark -s SOCK -t ping,set,get,incr,mset -n 200000 -c 50        (one request per round trip)
#   redis-benchmark -s SOCK -t ping,set,get,incr,mset -n 200000 -c 50 -P 16  (16 pipelined requests)
#
# Prints requests/s for each line and the ratio socket-demo / redis-server (goal: >= 1.0).
# Run from the repo root after `cargo build --release` (make bench does both). The binary is
# ${CARGO_TARGET_DIR:-target}/release/socket-demo unless SOCKET_DEMO_BIN says otherwise;
# REQUESTS, CLIENTS and TESTS override -n, -c and -t; SERVER_ARGS adds options to socket-demo server
# (SERVER_ARGS='--busy-poll-us 0' measures it without polling before sleeping). Each line
# is run several times, alternating between the two servers, and the best rps of each is
# kept: on a small, busy machine a single run mostly measures the neighbours. ROUNDS (default 3) runs without pipelining;
# ROUNDS_PIPELINED (default 10) with -P 16, where one run of 200000 requests lasts only about
# a tenth of a second. The server CPU time used is printed too: steadier than requests/s
# when redis-benchmark itself is the bottleneck.
#
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools). The script does
# not install them; it stops with a message if they are missing.
set -euo pipefail

BIN=${SOCKET_DEMO_BIN:-${CARGO_TARGET_DIR:-target}/release/socket-demo}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-ping,set,get,incr,mset}
ROUNDS=${ROUNDS:-3}
ROUNDS_PIPELINED=${ROUNDS_PIPELINED:-10}

# shellcheck source=socket-demo/bench/redis-benchmark.bash
source "$(dirname "$0")/redis-benchmark.bash"
need_redis_and bench/redis.sh "$BIN"

tmp=$(mktemp -d /tmp/socket-demo-bench.XXXXXX)
ours_pid=
redis_pid=
trap cleanup EXIT

ours_sock=$tmp/socket-demo.sock
redis_sock=$tmp/redis.sock

# The servers on the last CPU, redis-benchmark on the first (PIN=0: unpinned); see pin_apart.
pin_apart

read -ra server_args <<<"${SERVER_ARGS:-}"
XDG_RUNTIME_DIR=$tmp "${server_cpu[@]}" "$BIN" server --unix "$ours_sock" "${server_args[@]}" >"$tmp/ours.log" 2>&1 &
ours_pid=$!
"${server_cpu[@]}" redis-server --port 0 --unixsocket "$redis_sock" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!

# Wait (up to 10 s) until each answers PING.
wait_ready() {
    local sock=$1 name=$2
    for _ in $(seq 200); do
        if [[ $(redis-cli -s "$sock" PING 2>/dev/null) == PONG ]]; then return 0; fi
        sleep 0.05
    done
    echo "bench/redis.sh: $name did not answer PING on $sock" >&2
    exit 1
}
wait_ready "$ours_sock" socket-demo
wait_ready "$redis_sock" redis-server

# "NAME RPS" for each test.
measure() {
    local sock=$1
    shift
    "${client_cpu[@]}" redis-benchmark -s "$sock" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" --csv "$@" |
        rps_lines
}

hz=$(getconf CLK_TCK)

# The best rps per test over ROUNDS runs, alternating (ours, theirs) so that a noisy
# neighbour hits both alike.
best_of() {
    awk 'NF == 2 { if (!($1 in best) || $2 > best[$1]) best[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
         END { for (i = 1; i <= n; i++) print order[i], best[order[i]] }'
}

echo "redis-benchmark -t $TESTS -n $REQUESTS -c $CLIENTS, Unix sockets, $(nproc) CPUs${server_cpu:+, servers and client pinned apart}${SERVER_ARGS:+, socket-demo server $SERVER_ARGS}"
echo "best of $ROUNDS runs without pipelining, of $ROUNDS_PIPELINED with -P 16"
printf '%-16s %9s %16s %16s %7s\n' test pipeline socket-demo redis-server ratio
worst=
for pipeline in 1 16; do
    ours_all=
    theirs_all=
    ours_cpu=0
    theirs_cpu=0
    rounds=$ROUNDS
    [[ $pipeline -gt 1 ]] && rounds=$ROUNDS_PIPELINED
    for _ in $(seq "$rounds"); do
        before=$(cpu_ticks "$ours_pid")
        ours_all+=$(measure "$ours_sock" -P "$pipeline")$'\n'
        ours_cpu=$((ours_cpu + $(cpu_ticks "$ours_pid") - before))
        before=$(cpu_ticks "$redis_pid")
        theirs_all+=$(measure "$redis_sock" -P "$pipeline")$'\n'
        theirs_cpu=$((theirs_cpu + $(cpu_ticks "$redis_pid") - before))
    done
    ours=$(best_of <<<"$ours_all")
    theirs=$(best_of <<<"$theirs_all")
    while read -r test rps; do
        other=$(awk -v t="$test" '$1 == t { print $2 }' <<<"$theirs")
        ratio=$(awk -v a="$rps" -v b="$other" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '%-16s %9s %16.0f %16.0f %7s\n' "$test" "$pipeline" "$rps" "$other" "$ratio"
        if [[ -z $worst ]] || awk -v r="$ratio" -v w="$worst" 'BEGIN { exit !(r < w) }'; then
            worst=$ratio
        fi
    done <<<"$ours"
    awk -v a="$ours_cpu" -v b="$theirs_cpu" -v hz="$hz" -v p="$pipeline" 'BEGIN {
        printf "  server CPU time for all -P %s runs: socket-demo %.2f s, redis-server %.2f s (%.2fx)\n",
            p, a / hz, b / hz, (a > 0 ? b / a : 0) }'
done
echo "lowest ratio socket-demo/redis-server: $worst (goal: >= 1.00)"

kill -TERM "$ours_pid"
wait "$ours_pid" || { echo "bench/redis.sh: socket-demo server did not exit 0" >&2; exit 1; }
ours_pid=
if [[ -e $ours_sock ]]; then
    echo "bench/redis.sh: socket-demo left $ours_sock behind" >&2
    exit 1
fi
