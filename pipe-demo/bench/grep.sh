#!/usr/bin/env bash
# pipe-demo grep against GNU grep and ripgrep on every kind of pattern, side by side in one run.
#
#   bash pipe-demo/bench/grep.sh            (from the repo root; `make bench` does this)
#   SIZE_MIB=64 RUNS=3 bash pipe-demo/bench/grep.sh
#   ONLY='literal|-F' bash pipe-demo/bench/grep.sh      (only the rows whose kind matches)
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
# flagged in the table.
#
# Each run is timed twice: wall-clock, and the CPU time (user + system) of the grep process
# alone, from wait4(2)'s rusage, in microseconds. The ratios use CPU time: on a shared machine
# the wall clock also counts the time spent waiting for a CPU, which swings from run to run
# (on an idle machine the two agree, as all three search stdin on one thread). Ratios are the
# peer's time / ours: 1.00 or more means pipe-demo is at least as fast. The last line gives the
# lowest ratio against GNU grep (the goal: >= 1.00).
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

# kind | flags (space-separated, may be empty) | pattern (may hold '|')
ROWS='literal suffix||txt$
literal anywhere||Nov
case-insensitive|-i|TXT
alternation||jpg|csv|log
character classes||[0-9]{2}:5[0-9] file_[0-9]{3}4
anchored with .*||^-rw.*file_[0-9]+\.md$
-v (inverted)|-v|txt$
-c (count)|-c|txt$
no match at all||nothing-matches-this
-F (fixed string)|-F|.txt.gz
-w (whole word)|-w|md
-n (line numbers)|-n|txt$
-o (only matches)|-o|file_[0-9]+\.md'

BIG=$BIG BIN=$BIN RG=$RG RUNS=$RUNS ONLY=${ONLY:-} ROWS=$ROWS python3 - <<'PY'
import hashlib, os, re, subprocess, sys, time

big, runs, rg, only = os.environ["BIG"], int(os.environ["RUNS"]), os.environ["RG"], os.environ["ONLY"]

def commands(flags, pattern):
    # grep -E, except with -F (grep refuses both: "conflicting matchers").
    syntax = [] if "-F" in flags else ["-E"]
    cmds = {"ours": [os.environ["BIN"], "grep", *flags, "-e", pattern],
            "grep": ["grep", *syntax, *flags, "-e", pattern]}
    if rg:
        cmds["rg"] = [rg, "--no-config", *flags, "-e", pattern]
    return cmds

env = dict(os.environ, LC_ALL="C")

def digest(cmd):
    with open(big, "rb") as f:
        out = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, env=env).stdout
    return hashlib.sha256(out).hexdigest()

def timed(cmd):
    """Run cmd < big | cat > /dev/null; (wall seconds, CPU seconds of cmd alone)."""
    with open(big, "rb") as f, open(os.devnull, "wb") as null:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=f, stdout=subprocess.PIPE, env=env)
        cat = subprocess.Popen(["cat"], stdin=p.stdout, stdout=null)
        p.stdout.close()
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0  # reaped by wait4: keep Popen from waiting again
        cat.wait()
        wall = time.monotonic() - t0
    return wall, ru.ru_utime + ru.ru_stime

size = os.path.getsize(big)
print(f"input: {size >> 20} MiB of ls -l-like lines, page-cached; best of {runs} runs each;")
print("ms: CPU time (user+sys) of the grep process, and wall-clock with the output through | cat;")
print("ratio = the peer's CPU time / pipe-demo's")
print(f"{'kind':<20} {'command':<34} {'ours':>11} {'grep':>11} {'rg':>12} {'grep/ours':>9} {'rg/ours':>8}")
lowest = None
for row in os.environ["ROWS"].splitlines():
    name, flags, pattern = row.split("|", 2)
    if only and not re.search(only, name):
        continue
    flags = flags.split()
    cmds = commands(flags, pattern)
    # Same output first: a fast wrong answer is no answer.
    sums = {k: digest(c) for k, c in cmds.items()}
    if sums["ours"] != sums["grep"]:
        sys.exit(f"bench: {name}: pipe-demo's output differs from GNU grep's")
    best = {k: (float("inf"), float("inf")) for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            wall, cpu = timed(c)
            best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
    def cell(k):
        if k not in best:
            return "-"
        mark = "*" if sums[k] != sums["grep"] else ""
        return f"{best[k][1] * 1000:.0f}/{best[k][0] * 1000:.0f}{mark}"
    ours = max(best["ours"][1], 1e-6)
    g = best["grep"][1] / ours
    r = f"{best['rg'][1] / ours:.2f}" if "rg" in best else "-"
    shown = (" ".join(flags) + " " if flags else "") + f"'{pattern}'"
    print(f"{name:<20} {shown:<34} {cell('ours'):>11} {cell('grep'):>11} {cell('rg'):>12} {g:>9.2f} {r:>8}")
    if lowest is None or g < lowest[0]:
        lowest = (g, name)
print("(cells: CPU ms/wall ms; * ripgrep's output differs from GNU grep's on that row)")
if lowest:
    print(f"lowest ratio grep/pipe-demo: {lowest[0]:.2f} ({lowest[1]}) (goal: >= 1.00)")
PY
