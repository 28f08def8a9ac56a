#!/usr/bin/env bash
# No-op tasks per second, submit -> result, through mqueue-demo with 1 and 4 workers, beside:
#   - the floor: one plain mq_send -> mq_receive hop between two processes
#     (examples/bench_hop.rs, through the demo's own src/mq.rs); a task makes 4 hops
#     (producer -> supervisor -> worker -> supervisor -> result queue);
#   - Python's multiprocessing.Pool.apply_async with the same number of workers;
#   - Celery 5 with redis-server as broker and result backend (4 prefork workers), on a
#     private unix socket.
#
# Run from the repository root (make bench does); it builds what it runs:
#   bash mqueue-demo/bench/throughput.sh [TASKS] [CELERY_TASKS]
# Needs python3 with celery and redis (pip install celery redis), and redis-server.
# Figures vary with machine load; compare rows of one run.
set -euo pipefail

tasks=${1:-20000}
celery_tasks=${2:-2000}
target="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$target"
cargo build --quiet --release -p mqueue-demo --bins --example bench_hop
bin="$(realpath "$target/release/mqueue-demo")"
hop="$(realpath "$target/release/examples/bench_hop")"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR="$work"
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
wait_for_line() { # file pattern
    for _ in $(seq 1 600); do grep -qi "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "throughput.sh: no '$2' in $1" >&2; cat "$1" >&2; exit 1
}

echo "mqueue-demo throughput: $tasks no-op tasks per row, $celery_tasks for Celery" \
    "($(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
seq "$tasks" | sed 's/^/echo /' > "$work/tasks.txt"

# Each measurement sets the variable named by its last argument; none runs in a $( )
# subshell, so every background process it starts is in `pids` for the cleanup trap.
ours() { # workers var
    local q="/ipc-demo-bench-$1-$$"
    "$bin" run --queue "$q" --workers "$1" > "$work/sup.$1" 2>&1 &
    local sup=$!
    pids+=("$sup")
    wait_for_line "$work/sup.$1" "^worker pid .* started"
    local t0 t1
    t0=$(now)
    "$bin" submit --queue "$q" --wait < "$work/tasks.txt" > "$work/out.$1"
    t1=$(now)
    kill "$sup"; wait "$sup" || true
    local ok
    ok=$(grep -c ' ok attempt=1 ' "$work/out.$1")
    [[ $ok == "$tasks" ]] || { echo "throughput.sh: $ok of $tasks results ok" >&2; exit 1; }
    printf -v "$2" '%s' "$(rate "$tasks" "$t0" "$t1")"
}

pool() { # workers var
    local r
    r=$(python3 - "$tasks" "$1" <<'PY'
import multiprocessing as mp, sys, time
def noop(x):
    return x
if __name__ == "__main__":
    n, k = int(sys.argv[1]), int(sys.argv[2])
    with mp.Pool(k) as p:
        p.apply_async(noop, (0,)).get()  # the pool is up
        t = time.perf_counter()
        results = [p.apply_async(noop, (i,)) for i in range(n)]
        assert [r.get() for r in results] == list(range(n))
        print(round(n / (time.perf_counter() - t)))
PY
)
    printf -v "$2" '%s' "$r"
}

celery_rate() { # var
    local sock="$work/redis.sock"
    redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
        --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
    pids+=("$!")
    wait_for_line "$work/redis.log" "ready to accept connections"
    cat > "$work/benchtasks.py" <<PY
from celery import Celery
app = Celery("benchtasks", broker="redis+socket://$sock", backend="redis+socket://$sock")
app.conf.worker_hijack_root_logger = False
@app.task
def noop(x):
    return x
PY
    celery --workdir "$work" -A benchtasks worker --pool prefork -c 4 --loglevel WARNING \
        > "$work/celery.log" 2>&1 &
    pids+=("$!")
    local r
    r=$(cd "$work" && python3 - "$celery_tasks" <<'PY'
import sys, time
from benchtasks import app, noop
n = int(sys.argv[1])
for _ in range(600):  # wait for the worker to answer
    if app.control.ping(timeout=0.5):
        break
noop.delay(0).get(timeout=60)
t = time.perf_counter()
results = [noop.delay(i) for i in range(n)]
assert [r.get(timeout=600) for r in results] == list(range(n))
print(round(n / (time.perf_counter() - t)))
PY
)
    printf -v "$1" '%s' "$r"
}

floor=$("$hop" $((tasks * 10)) 32 | awk '{ print $(NF-1) }')
ours 1 o1; ours 4 o4
pool 1 p1; pool 4 p4
celery_rate c4

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n| what | tasks/s (1 worker) | tasks/s (4 workers) |\n|---|---|---|\n'
printf '| mqueue-demo submit --wait (4 hops per task) | %s | %s |\n' "$o1" "$o4"
printf '| floor: one mq_send -> mq_receive hop, 2 processes | %s msg/s | |\n' "$floor"
printf '| multiprocessing.Pool.apply_async | %s | %s |\n' "$p1" "$p4"
printf '| Celery 5, redis broker + backend, prefork | | %s |\n' "$c4"
echo
echo "per hop: ours $(ratio $((o4 * 4)) "$floor") of the floor with 4 workers," \
    "$(ratio $((o1 * 4)) "$floor") with 1"
echo "ours / Pool: $(ratio "$o1" "$p1") (1 worker), $(ratio "$o4" "$p4") (4 workers)"
echo "ours / Celery (4 workers): $(ratio "$o4" "$c4")"
