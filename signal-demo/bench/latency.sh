#!/usr/bin/env bash
# Signal delivery latency and reload time of the signal-demo daemon, beside a pipe round trip.
#
# Run from the repository root (make bench runs it):
#   bash signal-demo/bench/latency.sh [SAMPLES] [RELOADS]
#
# It builds the demo and the benchmark (examples/latency.rs, which is not part of the demo
# binary) in release mode, then runs the benchmark against the demo's daemon. Each sample is one
# round trip timed with CLOCK_MONOTONIC: send a signal -> the daemon reads it from its signalfd
# and acts -> its line is read back through a pipe. The peer row is the same round trip with a
# line written to cat(1) instead of a signal. Figures vary with machine load; compare rows of
# one run.
set -euo pipefail

samples=${1:-10000}
reloads=${2:-2000}
target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --release -p signal-demo --bin signal-demo --example latency
echo "signal-demo latency: $samples samples per row, $reloads reloads ($(nproc) CPUs, $(uname -r))"
"$target/release/examples/latency" --daemon "$target/release/signal-demo" \
    --samples "$samples" --reloads "$reloads"
