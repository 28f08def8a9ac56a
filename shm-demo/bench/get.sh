#!/usr/bin/env bash
# shm-demo's get beside its peers, in one run: LMDB (heed), an in-process HashMap (these
# alternating, medians of 10 rounds), and socket-demo's GET over its Unix socket; gets in a
# table emptied by deletes beside a fresh one; then readers under a flat-out writer, puts/s,
# and watch's futex wake-up beside a pipe's.
#
# Run from the repository root (make bench does, after `cargo build --release`):
#   bash shm-demo/bench/get.sh
# BENCH_SECS (default 2) is the time per row. socket-demo's row needs its release binary,
# ${CARGO_TARGET_DIR:-target}/release/socket-demo (or SOCKET_DEMO_BIN); without it the row is
# skipped. The benchmark program is shm-demo/benches/get.rs (a `cargo bench` target with no
# harness), built here with `cargo bench --no-run`; LMDB comes from the heed dev-dependency.
# Figures vary with machine load: compare rows of one run.
set -euo pipefail

target=${CARGO_TARGET_DIR:-target}
export SOCKET_DEMO_BIN=${SOCKET_DEMO_BIN:-$target/release/socket-demo}
if [[ ! -x $SOCKET_DEMO_BIN ]]; then
    echo "get.sh: $SOCKET_DEMO_BIN not found;" \
        "run cargo build --release -p socket-demo for its row" >&2
fi
# The JSON lines name every artifact built (the shm-demo binary too): pick the bench's.
bench=$(cargo bench -p shm-demo --bench get --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [[ -z $bench || ! -x $bench ]]; then
    echo "get.sh: could not build the benchmark (cargo bench -p shm-demo --bench get --no-run)" >&2
    exit 1
fi
echo "($(nproc) CPUs, $(uname -r))"
"$bench"
