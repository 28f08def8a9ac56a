#!/usr/bin/env bash
# sem-demo's semaphores beside the same calls from C, and `sem-demo run` beside flock(1) and
# GNU parallel's sem.
#
# Run from the repository root (make bench does, after a release build):
#   bash sem-demo/bench/sem.sh [PAIRS] [HANDOFFS] [INVOCATIONS] [ROUNDS]
#
# 1. The uncontended wait+post pair (no system call on the POSIX fast path) and the SysV semop
#    pair: examples/sem_bench.rs, which runs sem-demo's own src/posix.rs and src/sysv.rs, next
#    to bench/pair.c (compiled here with the system cc -O2) making the same calls.
# 2. A contended hand-off between two processes (post A / wait B <-> wait A / post B), POSIX vs
#    SysV, Rust and C.
# 3. Per invocation: `sem-demo run --name N -- true` vs `flock FILE true` (util-linux) and GNU
#    parallel's `sem --id N true`, started alternately by bench/interleave.c.
# Rounds alternate ours and the peer; each figure is the best and the median over the rounds
# (1, 2) or over the INVOCATIONS x ROUNDS invocations of each command (3); the best is the
# least disturbed by other load; compare rows of one run. The uncontended pairs are timed in
# CPU time (they never sleep), the hand-offs in wall time; invocations in both (CPU:
# user+system of the command and what it waited for, from wait4).
set -euo pipefail

pairs=${1:-2000000}
handoffs=${2:-100000}
invocations=${3:-300}
rounds=${4:-5}
target="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$target"
here=$(cd "$(dirname "$0")" && pwd)

cargo build --quiet --release -p sem-demo --bins --example sem_bench
bin="$target/release/sem-demo"
rbench="$target/release/examples/sem_bench"
work=$(mktemp -d)
trap 'rm -rf "$work"; "$bin" unlink --sysv bench-run 2>/dev/null || true' EXIT
cc -O2 -o "$work/pair" "$here/pair.c" -pthread
cc -O2 -o "$work/interleave" "$here/interleave.c"
cbench="$work/pair"

echo "sem-demo bench: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

# best and median of the numbers on stdin
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%.1f %.1f\n", v[1], v[int((NR + 1) / 2)] }'; }

row() { # label ours-best ours-median peer-best peer-median
    awk -v l="$1" -v ob="$2" -v om="$3" -v pb="$4" -v pm="$5" 'BEGIN {
        printf "%-34s %10s %10s %10s %10s   %5.2fx %5.2fx\n", l, ob, om, pb, pm, ob / pb, om / pm }'
}

printf '%-34s %10s %10s %10s %10s   %6s %6s\n' "ns per pair / round trip" "Rust best" "median" \
    "C best" "median" "best" "median"
for mode in pair sysv-pair handoff-posix handoff-sysv; do
    n=$pairs
    [[ $mode == handoff-* ]] && n=$handoffs
    [[ $mode == sysv-pair ]] && n=$((pairs / 10))
    rs=() cs=()
    for ((r = 0; r < rounds; r++)); do
        rs+=("$("$rbench" "$mode" "$n" | cut -d' ' -f2)")
        cs+=("$("$cbench" "$mode" "$n" | cut -d' ' -f2)")
    done
    read -r rb rm < <(printf '%s\n' "${rs[@]}" | stats)
    read -r cb cm < <(printf '%s\n' "${cs[@]}" | stats)
    row "$mode" "$rb" "$rm" "$cb" "$cm"
done

# 3. run and flock, started alternately by bench/interleave.c (see its header); GNU parallel's
#    sem (Perl, ~0.1 s a call) gets its own, shorter interleaved run below.
"$bin" unlink --sysv bench-run 2>/dev/null || true
touch "$work/lock"
# Through a file, not a process substitution: set -e then stops the script if a command failed.
"$work/interleave" "$((invocations * rounds))" \
    "$bin" run --name bench-run -- true --- flock "$work/lock" true >"$work/times"
mapfile -t lines <"$work/times"
read -r ow om oc ocm <<<"${lines[0]}"
read -r fw fm fc fcm <<<"${lines[1]}"
echo
printf '%-34s %10s %10s %10s %10s   %6s %6s\n' "us per invocation" "ours best" "median" \
    "peer best" "median" "best" "median"
row "run vs flock FILE, wall" "$ow" "$om" "$fw" "$fm"
row "run vs flock FILE, CPU" "$oc" "$ocm" "$fc" "$fcm"
if command -v sem >/dev/null; then
    semn=$((invocations / 10 > 0 ? invocations / 10 : 1))
    HOME=$work "$work/interleave" "$semn" \
        "$bin" run --name bench-run -- true --- sem --id "bench-$$" true >"$work/times"
    mapfile -t lines <"$work/times"
    read -r ow om oc ocm <<<"${lines[0]}"
    read -r sw sm sc scm <<<"${lines[1]}"
    row "run vs parallel's sem, wall" "$ow" "$om" "$sw" "$sm"
    row "run vs parallel's sem, CPU" "$oc" "$ocm" "$sc" "$scm"
fi
