#!/usr/bin/env bash
# Records per second logged by `fifo-demo daemon` with 8 concurrent writers, next to the same
# writers feeding `cat FIFO > file` in the same run: the floor a user would compare with.
# The daemon adds a timestamp and a pid field to every record and escapes it; cat copies bytes.
#
# Usage (from the repo root, after `cargo build --release`):
#   bash fifo-demo/bench/throughput.sh
# Knobs: WRITERS (8), LINES per writer (100000), ROUNDS (5; the median is reported),
#        FIFO_DEMO (the binary; default $CARGO_TARGET_DIR/release/fifo-demo or target/...),
#        BASELINE (another fifo-demo binary, e.g. main's release build: its daemon and writers
#        run in the same rounds, alternating with ours, for a before/after ratio).
set -euo pipefail

WRITERS=${WRITERS:-8}
LINES=${LINES:-100000}
ROUNDS=${ROUNDS:-5}
BIN=${FIFO_DEMO:-${CARGO_TARGET_DIR:-target}/release/fifo-demo}
BASE=${BASELINE:-}
for b in "$BIN" ${BASE:+"$BASE"}; do
    if [[ ! -x $b ]]; then
        echo "throughput.sh: $b not found; run cargo build --release -p fifo-demo first" >&2
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fifo-demo-bench.XXXXXX")
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Each writer sends the same LINES records, one write() per record (~75 bytes each).
seq -f "benchmark record %06g: the quick brown fox jumps over the lazy dog" 1 "$LINES" \
    >"$work/input"
want=$((WRITERS * LINES))

now() { date +%s%N; }

# Start WRITERS `$2 log` processes (default: $BIN) on FIFO $1 and wait for all of them.
run_writers() {
    local pids=() p bin=${2:-$BIN}
    for ((i = 0; i < WRITERS; i++)); do
        "$bin" log --fifo "$1" <"$work/input" 3>&- &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
}

# Peer: cat. Our fd 3 holds the FIFO open for writing until the writers are done, so cat
# sees EOF only at the end; opening it blocks until cat has opened the read end.
bench_cat() {
    rm -f "$work/cat.fifo" "$work/cat.out"
    mkfifo -m 600 "$work/cat.fifo"
    cat "$work/cat.fifo" >"$work/cat.out" &
    local cat_pid=$!
    exec 3>"$work/cat.fifo"
    local t0 t1
    t0=$(now)
    run_writers "$work/cat.fifo"
    exec 3>&-
    wait "$cat_pid"
    t1=$(now)
    got=$(wc -l <"$work/cat.out")
    [[ $got -eq $want ]] || { echo "cat: $got of $want records" >&2; exit 1; }
    echo $((t1 - t0))
}

# Ours: the daemon of binary $1 (default: $BIN), stopped with SIGTERM (it drains the pipe
# first) once the writers are done.
bench_daemon() {
    local bin=${1:-$BIN}
    rm -f "$work/d.log" "$work/d.out" "$work/d.err"
    "$bin" daemon --fifo "$work/d.fifo" --log "$work/d.log" >"$work/d.out" 2>"$work/d.err" 3>&- &
    daemon_pid=$!
    # Wait for its ready line on stdout (polling a file: the bench, not a test).
    until grep -qs '^ready: ' "$work/d.out"; do
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/d.err" >&2; exit 1; }
        sleep 0.01
    done
    local t0 t1
    t0=$(now)
    run_writers "$work/d.fifo" "$bin"
    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    t1=$(now)
    daemon_pid=
    got=$(wc -l <"$work/d.log")
    [[ $got -eq $want ]] || { echo "daemon: $got of $want records" >&2; exit 1; }
    [[ ! -e $work/d.fifo ]] || { echo "daemon left its FIFO behind" >&2; exit 1; }
    echo $((t1 - t0))
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cat_ns=() daemon_ns=() base_ns=()
for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate the order, so neither side always runs on a warmer machine.
    if ((r % 2)); then
        cat_ns+=("$(bench_cat)")
        daemon_ns+=("$(bench_daemon)")
        if [[ -n $BASE ]]; then base_ns+=("$(bench_daemon "$BASE")"); fi
    else
        if [[ -n $BASE ]]; then base_ns+=("$(bench_daemon "$BASE")"); fi
        daemon_ns+=("$(bench_daemon)")
        cat_ns+=("$(bench_cat)")
    fi
done
c=$(median "${cat_ns[@]}")
d=$(median "${daemon_ns[@]}")
b=$(if [[ -n $BASE ]]; then median "${base_ns[@]}"; fi)

echo "fifo-demo throughput: $WRITERS writers x $LINES records, median of $ROUNDS rounds"
# One row: consumer, records, seconds, records/s.
row() { awk -v name="$1" -v want="$want" -v ns="$2" \
    'BEGIN { printf "%-28s %10d %9.3f %12.0f\n", name, want, ns / 1e9, want / (ns / 1e9) }'; }
printf "%-28s %10s %9s %12s\n" consumer records seconds records/s
row "cat FIFO > file" "$c"
row "fifo-demo daemon --log file" "$d"
awk -v c="$c" -v d="$d" 'BEGIN { printf "ratio daemon/cat: %.2f (goal >= 0.80)\n", c / d }'
if [[ -n $BASE ]]; then
    row "baseline daemon --log file" "$b"
    awk -v b="$b" -v d="$d" -v base="$BASE" \
        'BEGIN { printf "ratio daemon/baseline: %.2f (baseline: %s)\n", b / d, base }'
fi
