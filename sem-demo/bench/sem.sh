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
# 3. Per invocation from a shell loop: `sem-demo run --name N -- true` vs `flock FILE true`
#    (util-linux) and GNU parallel's `sem --id N true`.
# Rounds alternate ours and the peer; each figure is the best and the median over the rounds
# (the best is the least disturbed by other load; compare rows of one run). The uncontended
# pairs are timed in CPU time (they never sleep), the hand-offs in wall time; invocations in
# both (CPU: user+system of everything the loop ran).
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

# Microseconds per invocation of "$@" over a loop of $1 from a subshell: "WALL CPU", where
# CPU is the user+system time of everything the loop ran (from bash's `times`), which does not
# grow when other work on the machine delays us.
per_call() {
    local n=$1; shift
    local start end cpu
    start=$(date +%s%N)
    cpu=$( (for ((i = 0; i < n; i++)); do "$@"; done; times) | tail -n 1)
    end=$(date +%s%N)
    awk -v d=$((end - start)) -v n="$n" -v cpu="$cpu" 'BEGIN {
        split(cpu, t, " "); s = 0
        for (i = 1; i <= 2; i++) { split(t[i], p, "m"); s += p[1] * 60 + p[2] }
        printf "%.1f %.1f\n", d / n / 1000, s / n * 1e6 }'
}

"$bin" unlink --sysv bench-run 2>/dev/null || true
ours=() flocks=() sems=() ourcpu=() flockcpu=() semcpu=()
semn=$((invocations / 10 > 0 ? invocations / 10 : 1))
for ((r = 0; r < rounds; r++)); do
    read -r w c < <(per_call "$invocations" "$bin" run --name bench-run -- true)
    ours+=("$w") ourcpu+=("$c")
    read -r w c < <(per_call "$invocations" flock "$work/lock" true)
    flocks+=("$w") flockcpu+=("$c")
    if command -v sem >/dev/null; then
        read -r w c < <(HOME=$work per_call "$semn" sem --id "bench-$$" true)
        sems+=("$w") semcpu+=("$c")
    fi
done
echo
printf '%-34s %10s %10s %10s %10s   %6s %6s\n' "us per invocation" "ours best" "median" \
    "peer best" "median" "best" "median"
both() { # label ours-array-name peer-array-name
    local -n a=$2 b=$3
    read -r ob om < <(printf '%s\n' "${a[@]}" | stats)
    read -r pb pm < <(printf '%s\n' "${b[@]}" | stats)
    row "$1" "$ob" "$om" "$pb" "$pm"
}
both "run vs flock FILE, wall" ours flocks
both "run vs flock FILE, CPU" ourcpu flockcpu
if ((${#sems[@]})); then
    both "run vs parallel's sem, wall" ours sems
    both "run vs parallel's sem, CPU" ourcpu semcpu
fi
