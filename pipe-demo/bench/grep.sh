#!/usr/bin/env bash
# pipe-demo grep against GNU grep and ripgrep on every kind of pattern, side by side in one run.
#
#   bash pipe-demo/bench/grep.sh            (from the repo root; `make bench` does this)
#   SIZE_MIB=64 ROUNDS=3 bash pipe-demo/bench/grep.sh
#   ONLY='literal|BRE' bash pipe-demo/bench/grep.sh      (only the rows whose kind matches)
#
# Makes a file of ls -l-like lines under /tmp (256 MiB unless SIZE_MIB says otherwise), then
# for each kind of pattern below runs, in ROUNDS rounds (5 by default), each of
#
#   pipe-demo grep SYNTAX FLAGS -e PATTERN < big | cat > /dev/null
#   LC_ALL=C grep SYNTAX FLAGS -e PATTERN < big | cat > /dev/null
#   rg FLAGS -e PATTERN < big | cat > /dev/null      (if ripgrep is installed; -E and -F rows)
#
# once, in turn, the order reversed every other round, so that a burst of load from the other
# tenants of a shared machine falls on both sides alike; then it reports the medians. SYNTAX
# is the same for both greps: none (a basic regular expression, grep's default), -E or -F.
# ripgrep reads only its own syntax, close to -E, so it runs the -E and -F rows.
#
# The output goes through `cat` because GNU grep stops at the first match when its stdout is
# /dev/null. The file is read once beforehand, so all read from the page cache. Before timing
# a row, pipe-demo's output is checked byte for byte against GNU grep's (the race is between
# equal results; the script fails otherwise); ripgrep's is compared too and a difference is
# flagged in the table.
#
# Each run is timed twice: wall-clock, and the CPU time (user + system) of the grep process
# alone, from wait4(2)'s rusage, in milliseconds. The ratios use CPU time: on a shared machine
# the wall clock also counts the time spent waiting for a CPU, which swings from run to run
# (on an idle machine the two agree, as all three search stdin on one thread). A ratio is the
# peer's median CPU time / ours: 1.00 or more means pipe-demo is at least as fast; beside it,
# the lowest and highest of the per-round ratios. The load average is printed before and
# after. The last line gives the lowest ratio against GNU grep (the goal: >= 1.00).
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-256}
ROUNDS=${ROUNDS:-5}
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

# kind | syntax (empty: BRE, -E or -F) | flags (space-separated) | pattern (may hold '|')
ROWS='literal suffix|||txt$
literal anywhere|||Nov
case-insensitive||-i|TXT
alternation|-E||jpg|csv|log
character classes|-E||[0-9]{2}:5[0-9] file_[0-9]{3}4
anchored with .*|-E||^-rw.*file_[0-9]+\.md$
inner literal|-E||[0-9] alice +[a-z]+
inner literal, wide class|-E||[a-z]+ +staff +[0-9]+
-v (inverted)||-v|txt$
-c (count)||-c|txt$
no match at all|||nothing-matches-this
-F (fixed string)|-F||.txt.gz
-w (whole word)||-w|md
-n (line numbers)||-n|txt$
-o (only matches)|-E|-o|file_[0-9]+\.md
--color=always||--color=always|Nov
BRE \+ and $|||file_[0-9]\+\.md$
BRE alternation|||jpg\|csv\|log
BRE \{m\} [[:digit:]]|||[[:digit:]]\{2\}:5[[:digit:]] file_[0-9]\{3\}4
BRE \< \>|||\<Nov\> [0-9]
BRE inner literal|||[0-9] alice *[a-z]\+
BRE -o||-o|file_[0-9]\+\.md'

echo "load before: $(uptime)"
BIG=$BIG BIN=$BIN RG=$RG ROUNDS=$ROUNDS ONLY=${ONLY:-} ROWS=$ROWS python3 - <<'PY'
import hashlib, os, re, statistics, subprocess, sys, time

big, rounds, rg = os.environ["BIG"], int(os.environ["ROUNDS"]), os.environ["RG"]
only = os.environ["ONLY"]

def commands(syntax, flags, pattern):
    syntax = [syntax] if syntax else []
    cmds = {"ours": [os.environ["BIN"], "grep", *syntax, *flags, "-e", pattern],
            "grep": ["grep", *syntax, *flags, "-e", pattern]}
    # ripgrep has no BRE syntax (and no --color=always byte-compatible with grep's).
    if rg and syntax and "--color=always" not in flags:
        cmds["rg"] = [rg, "--no-config", *(["-F"] if syntax == ["-F"] else []), *flags, "-e", pattern]
    return cmds

env = dict(os.environ, LC_ALL="C")
env.pop("GREP_COLOR", None)
env.pop("GREP_COLORS", None)

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
print(f"input: {size >> 20} MiB of ls -l-like lines, page-cached; {rounds} alternating rounds, medians;")
print("ms: median CPU time (user+sys) of the grep process / median wall-clock, output through | cat;")
print("ratio = the peer's median CPU time / pipe-demo's [lowest-highest per-round ratio]")
print(f"{'kind':<26} {'command':<52} {'ours':>9} {'grep':>9} {'rg':>10} {'grep/ours':>20} {'rg/ours':>8}")
lowest = None
for row in os.environ["ROWS"].splitlines():
    name, syntax, flags, pattern = row.split("|", 3)
    if only and not re.search(only, name):
        continue
    flags = flags.split()
    cmds = commands(syntax, flags, pattern)
    # Same output first: a fast wrong answer is no answer.
    sums = {k: digest(c) for k, c in cmds.items()}
    if sums["ours"] != sums["grep"]:
        sys.exit(f"bench: {name}: pipe-demo's output differs from GNU grep's")
    times = {k: [] for k in cmds}
    order = list(cmds)
    for r in range(rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            times[k].append(timed(cmds[k]))
    med = {k: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
           for k, t in times.items()}
    def cell(k):
        if k not in med:
            return "-"
        mark = "*" if sums[k] != sums["grep"] else ""
        return f"{med[k][1] * 1000:.0f}/{med[k][0] * 1000:.0f}{mark}"
    def ratio(k):
        return med[k][1] / max(med["ours"][1], 1e-6)
    per_round = [g[1] / max(o[1], 1e-6) for g, o in zip(times["grep"], times["ours"])]
    g = ratio("grep")
    spread = f"{g:.2f} [{min(per_round):.2f}-{max(per_round):.2f}]"
    r = f"{ratio('rg'):.2f}" if "rg" in med else "-"
    shown = " ".join([*([syntax] if syntax else []), *flags, f"'{pattern}'"])
    print(f"{name:<26} {shown:<52} {cell('ours'):>9} {cell('grep'):>9} {cell('rg'):>10} {spread:>20} {r:>8}")
    if lowest is None or g < lowest[0]:
        lowest = (g, name)
print("(cells: CPU ms/wall ms; * ripgrep's output differs from GNU grep's on that row)")
if lowest:
    print(f"lowest ratio grep/pipe-demo: {lowest[0]:.2f} ({lowest[1]}) (goal: >= 1.00)")
PY
echo "load after: $(uptime)"
