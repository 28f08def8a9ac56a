#!/usr/bin/env bash
# Signal delivery latency and reload time of the signal-demo daemon, beside a pipe round trip.
#
# Run from the repository root after `cargo build --release` (make bench does both):
#   bash signal-demo/bench/latency.sh [SAMPLES] [RELOADS]
#
# Each sample is one round trip timed with CLOCK_MONOTONIC by the hidden
# `signal-demo bench-latency` role: send a signal -> the daemon reads it from its signalfd and
# acts -> its line is read back through a pipe. The peer row is the same round trip with a line
# written to cat(1) instead of a signal. Figures vary with machine load; compare rows of one run.
set -euo pipefail

samples=${1:-10000}
reloads=${2:-2000}
bin="${CARGO_TARGET_DIR:-target}/release/signal-demo"
if [[ ! -x "$bin" ]]; then
    echo "latency.sh: $bin not found; run 'cargo build --release -p signal-demo' first" >&2
    exit 1
fi
echo "signal-demo latency: $samples samples per row, $reloads reloads ($(nproc) CPUs, $(uname -r))"
"$bin" bench-latency --samples "$samples" --reloads "$reloads"
