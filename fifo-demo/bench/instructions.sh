#!/usr/bin/env bash
# Instructions the log daemon executes per record (valgrind's cachegrind, "I refs"), for
# WRITERS x LINES records into --log file: a before/after figure that the machine's load does
# not move, where throughput.sh's wall-clock ratios swing with the writers' scheduling.
#
# Usage (from the repo root, after `cargo build --release`; needs valgrind):
#   bash fifo-demo/bench/instructions.sh
# Knobs: WRITERS (4), LINES per writer (50000), FIFO_DEMO (the binary; default
#        $CARGO_TARGET_DIR/release/fifo-demo or target/...), BASELINE (another fifo-demo
#        binary, e.g. main's release build, measured the same way, before ours).
set -euo pipefail

WRITERS=${WRITERS:-4}
LINES=${LINES:-50000}
BIN=${FIFO_DEMO:-${CARGO_TARGET_DIR:-target}/release/fifo-demo}
BASE=${BASELINE:-}
command -v valgrind >/dev/null || { echo "instructions.sh: SKIPPED: no valgrind" >&2; exit 0; }
for b in "$BIN" ${BASE:+"$BASE"}; do
    [[ -x $b ]] || { echo "instructions.sh: $b not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/fifo-demo-bench.XXXXXX")
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
seq -f "benchmark record %06g: the quick brown fox jumps over the lazy dog" 1 "$LINES" \
    >"$work/input"
want=$((WRITERS * LINES))

# The daemon of binary $1 under cachegrind, fed by WRITERS writers of the same binary, stopped
# with SIGTERM; prints its instruction count.
measure() {
    local bin=$1 pids=() p
    rm -f "$work/d.log" "$work/d.out" "$work/cg" "$work/d.fifo" "$work/d.fifo.pid"
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$bin" daemon --fifo "$work/d.fifo" --log "$work/d.log" >"$work/d.out" 2>"$work/cg" &
    daemon_pid=$!
    until grep -qs '^ready: ' "$work/d.out"; do
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/cg" >&2; exit 1; }
        sleep 0.05
    done
    for ((i = 0; i < WRITERS; i++)); do
        "$bin" log --fifo "$work/d.fifo" <"$work/input" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    kill -TERM "$(cat "$work/d.fifo.pid")"
    wait "$daemon_pid"
    daemon_pid=
    local got; got=$(wc -l <"$work/d.log")
    [[ $got -eq $want ]] || { echo "$bin: $got of $want records" >&2; exit 1; }
    awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$work/cg"
}

echo "fifo-demo daemon instructions: $WRITERS writers x $LINES records (cachegrind)"
row() { awk -v name="$1" -v n="$2" -v want="$want" \
    'BEGIN { printf "%-12s %14d instructions %8.1f per record\n", name, n, n / want }'; }
ours=$(measure "$BIN")
if [[ -n $BASE ]]; then
    base=$(measure "$BASE")
    row baseline "$base"
fi
row ours "$ours"
if [[ -n $BASE ]]; then
    awk -v b="$base" -v o="$ours" 'BEGIN { printf "ratio ours/baseline: %.3f\n", o / b }'
fi
