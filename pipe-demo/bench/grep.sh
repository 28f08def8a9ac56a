#!/usr/bin/env bash
# pipe-demo grep against GNU grep, side by side in one run.
#
#   bash pipe-demo/bench/grep.sh            (from the repo root; `make bench` does this)
#   SIZE_MIB=64 RUNS=3 bash pipe-demo/bench/grep.sh
#
# Makes a file of ls -l-like lines under /tmp (512 MiB unless SIZE_MIB says otherwise), then
# times, alternately, RUNS times each:
#
#   pipe-demo grep 'txt$' < big | cat > /dev/null
#   LC_ALL=C grep 'txt$' < big | cat > /dev/null
#
# The output goes through `cat` because GNU grep stops at the first match when its stdout is
# /dev/null. The file is read once beforehand, so both read from the page cache; both outputs
# are compared once, so the race is between equal results. Prints the best time of each and
# the ratio (grep's time / ours: 1.00 or more means we are at least as fast).
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-512}
RUNS=${RUNS:-5}
PATTERN='txt$'
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ -n ${PIPE_DEMO:-} ]]; then
    BIN=$PIPE_DEMO
else
    cargo build --release --quiet -p pipe-demo --manifest-path "$ROOT/Cargo.toml"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/pipe-demo
fi
[[ -x $BIN ]] || { echo "bench: no pipe-demo binary at $BIN" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pipe-demo-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BIG=$WORK/big

# One MiB-ish block of varied ls -l lines (about 1 in 6 ends in txt), repeated to SIZE_MIB.
awk 'BEGIN {
    srand(42)
    split("txt md jpg csv sh txt.gz log rs", ext, " ")
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon, " ")
    split("-rw-r--r-- -rw------- -rwxr-xr-x drwxr-xr-x lrwxrwxrwx", perm, " ")
    bytes = 0
    while (bytes < 1048576) {
        line = sprintf("%s %2d %-8s %-8s %9d %s %2d %02d:%02d %s_%05d.%s",
            perm[int(rand() * 5) + 1], int(rand() * 9) + 1, "alice", "staff",
            int(rand() * 100000000), mon[int(rand() * 12) + 1], int(rand() * 28) + 1,
            int(rand() * 24), int(rand() * 60), "file", int(rand() * 100000),
            ext[int(rand() * 8) + 1])
        print line
        bytes += length(line) + 1
    }
}' > "$WORK/block"
for ((i = 0; i < SIZE_MIB; i++)); do cat "$WORK/block"; done > "$BIG"
cat "$BIG" > /dev/null

ours() { "$BIN" grep "$PATTERN" < "$BIG" | cat > /dev/null; }
gnu() { LC_ALL=C grep "$PATTERN" < "$BIG" | cat > /dev/null; }

# Same output first: a fast wrong answer is no answer.
a=$("$BIN" grep "$PATTERN" < "$BIG" | cksum)
b=$(LC_ALL=C grep "$PATTERN" < "$BIG" | cksum)
if [[ $a != "$b" ]]; then
    echo "bench: outputs differ: pipe-demo $a, grep $b" >&2
    exit 1
fi

# Milliseconds taken by "$@".
millis() {
    local t0 t1
    t0=$(date +%s%N)
    "$@"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 ))"
}

best_ours=
best_gnu=
for ((r = 0; r < RUNS; r++)); do
    t=$(millis ours)
    if [[ -z $best_ours || $t -lt $best_ours ]]; then best_ours=$t; fi
    t=$(millis gnu)
    if [[ -z $best_gnu || $t -lt $best_gnu ]]; then best_gnu=$t; fi
done

size=$(stat -c %s "$BIG")
matches=$(LC_ALL=C grep -c "$PATTERN" < "$BIG")
mibs() { awk -v b="$size" -v ms="$1" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
echo "input: $((size / 1048576)) MiB, $matches matching lines; best of $RUNS runs each"
printf '%-48s %9s %9s\n' "command" "best ms" "MiB/s"
printf '%-48s %9d %9s\n' "pipe-demo grep '$PATTERN' < big | cat" "$best_ours" "$(mibs "$best_ours")"
printf '%-48s %9d %9s\n' "LC_ALL=C grep '$PATTERN' < big | cat" "$best_gnu" "$(mibs "$best_gnu")"
awk -v o="$best_ours" -v g="$best_gnu" \
    'BEGIN { printf "ratio (grep time / pipe-demo time): %.2f  (>= 1.00: pipe-demo at least as fast)\n", g / o }'
