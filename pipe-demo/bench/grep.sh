#!/usr/bin/env bash
# pipe-demo grep against GNU grep and ripgrep on every kind of pattern, side by side in one run.
#
#   bash pipe-demo/bench/grep.sh            (from the repo root; `make bench` does this)
#   SIZE_MIB=64 RUNS=3 bash pipe-demo/bench/grep.sh
#
# Makes a file of ls -l-like lines under /tmp (256 MiB unless SIZE_MIB says otherwise), then
# for each kind of pattern below times, alternately, RUNS times each (best time kept):
#
#   pipe-demo grep FLAGS PATTERN < big | cat > /dev/null
#   LC_ALL=C grep -E FLAGS PATTERN < big | cat > /dev/null   (without -E for -F)
#   rg FLAGS PATTERN < big | cat > /dev/null           (if ripgrep is installed)
#
# The output goes through `cat` because GNU grep stops at the first match when its stdout is
# /dev/null. The file is read once beforehand, so all read from the page cache. Before timing
# a row, pipe-demo's output is checked byte for byte against GNU grep's (the race is between
# equal results; the script fails otherwise); ripgrep's is compared too and a difference is
# flagged in the table. Ratios are the peer's time / ours: 1.00 or more means pipe-demo is at
# least as fast. The last line gives the lowest ratio against GNU grep (the goal: >= 1.00).
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ -n ${PIPE_DEMO:-} ]]; then
    BIN=$PIPE_DEMO
else
    cargo build --release --quiet -p pipe-demo --manifest-path "$ROOT/Cargo.toml"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/pipe-demo
fi
[[ -x $BIN ]] || { echo "bench: no pipe-demo binary at $BIN" >&2; exit 1; }
RG=$(command -v rg || true)

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

# name | flags (space-separated, may be empty) | pattern
ROWS=(
    "literal suffix||txt$"
    "literal anywhere||Nov"
    "case-insensitive|-i|TXT"
    "alternation||jpg|csv|log"
    "character classes||[0-9]{2}:5[0-9] file_[0-9]{3}4"
    "anchored with .*||^-rw.*file_[0-9]+\\.md$"
    "-v (inverted)|-v|txt$"
    "-c (count)|-c|txt$"
    "no match at all||nothing-matches-this"
    "-F (fixed string)|-F|.txt.gz"
    "-w (whole word)|-w|md"
    "-n (line numbers)|-n|txt$"
    "-o (only matches)|-o|file_[0-9]+\\.md"
)

# Milliseconds taken by "$@".
millis() {
    local t0 t1
    t0=$(date +%s%N)
    "$@"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 ))"
}

# Each one's status is 1 where nothing matches: not a failure here.
ours() { "$BIN" grep "${FLAGS[@]}" -e "$PATTERN" < "$BIG" | cat > /dev/null || true; }
gnu() { LC_ALL=C grep $SYNTAX "${FLAGS[@]}" -e "$PATTERN" < "$BIG" | cat > /dev/null || true; }
rgrep() { "$RG" --no-config "${FLAGS[@]}" -e "$PATTERN" < "$BIG" | cat > /dev/null || true; }
ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2f", p / o }'; }

size=$(stat -c %s "$BIG")
echo "input: $((size / 1048576)) MiB of ls -l-like lines, page-cached; best of $RUNS runs each;"
echo "times in ms, output through | cat; ratio = the peer's time / pipe-demo's"
printf '%-20s %-36s %8s %8s %8s %9s %9s\n' "kind" "command" "ours" "grep" "rg" "grep/ours" "rg/ours"
lowest=
lowest_row=
for row in "${ROWS[@]}"; do
    IFS='|' read -r name flags PATTERN <<< "$row"
    # The pattern may hold '|' itself: everything after the second field.
    PATTERN=${row#*|*|}
    read -r -a FLAGS <<< "$flags"
    # grep -E, except with -F (grep refuses both: "conflicting matchers").
    SYNTAX=-E
    [[ " $flags " != *" -F "* ]] || SYNTAX=
    # Same output first: a fast wrong answer is no answer.
    a=$({ "$BIN" grep "${FLAGS[@]}" -e "$PATTERN" < "$BIG" || true; } | cksum)
    b=$({ LC_ALL=C grep $SYNTAX "${FLAGS[@]}" -e "$PATTERN" < "$BIG" || true; } | cksum)
    if [[ $a != "$b" ]]; then
        echo "bench: $name: outputs differ: pipe-demo $a, grep $b" >&2
        exit 1
    fi
    rg_note=
    if [[ -n $RG ]]; then
        c=$({ "$RG" --no-config "${FLAGS[@]}" -e "$PATTERN" < "$BIG" || true; } | cksum)
        [[ $c == "$a" ]] || rg_note='*'
    fi
    best_ours= best_gnu= best_rg=
    for ((r = 0; r < RUNS; r++)); do
        t=$(millis ours)
        if [[ -z $best_ours || $t -lt $best_ours ]]; then best_ours=$t; fi
        t=$(millis gnu)
        if [[ -z $best_gnu || $t -lt $best_gnu ]]; then best_gnu=$t; fi
        if [[ -n $RG ]]; then
            t=$(millis rgrep)
            if [[ -z $best_rg || $t -lt $best_rg ]]; then best_rg=$t; fi
        fi
    done
    ((best_ours > 0)) || best_ours=1
    g=$(ratio "$best_gnu" "$best_ours")
    rr=-
    [[ -z $RG ]] || rr=$(ratio "$best_rg" "$best_ours")
    cmd="${flags:+$flags }'$PATTERN'"
    printf '%-20s %-36s %8d %8d %8s %9s %9s\n' "$name" "$cmd" "$best_ours" "$best_gnu" \
        "${best_rg:--}$rg_note" "$g" "$rr"
    if [[ -z $lowest ]] || awk -v a="$g" -v b="$lowest" 'BEGIN { exit !(a < b) }'; then
        lowest=$g
        lowest_row=$name
    fi
done
[[ -z $RG ]] || echo "(* ripgrep's output differs from GNU grep's on that row)"
echo "lowest ratio grep/pipe-demo: $lowest ($lowest_row) (goal: >= 1.00)"
