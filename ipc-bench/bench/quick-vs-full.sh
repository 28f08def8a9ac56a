#!/usr/bin/env bash
# Does `ipc-bench --quick` tell what the full run tells? Issue 28's check: the p50 ratio to C of
# every round-trip row, in a quick run and in a full run, agree within 1.1x.
#
# Run from the repository root, on a machine as quiet as you can get:
#   bash ipc-bench/bench/quick-vs-full.sh [RUNS] [-- IPC-BENCH-OPTIONS]
#   bash ipc-bench/bench/quick-vs-full.sh 2                     # the issue's two runs each
#   bash ipc-bench/bench/quick-vs-full.sh 1 -- --only futex,pipe
#
# It builds the release binary, then runs quick, full, quick, full... (RUNS of each, default
# 2), alternating so that a change in the machine's load falls on both, and keeps every JSON
# document in $CARGO_TARGET_DIR/ipc-bench/quick-vs-full/. Then, for every round-trip row, it
# compares each quick run's p50 ratio with each full run's, prints the rows and the load when
# each run started, and exits 0 if every pair agrees within 1.1x and every quick ratio is
# within 0.67-1.5x, 1 if not.
set -euo pipefail

runs=${1:-2}
shift || true
[ "${1:-}" = "--" ] && shift
target="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$target"

cargo build --quiet --release -p ipc-bench
bin="$target/release/ipc-bench"
out="$target/ipc-bench/quick-vs-full"
rm -rf "$out"
mkdir -p "$out"

echo "ipc-bench quick vs full: $(nproc) CPUs, $(uname -r), $runs run(s) of each"
for i in $(seq 1 "$runs"); do
    for kind in quick full; do
        flags=(--json --out "$out/$kind-$i")
        if [ "$kind" = quick ]; then flags+=(--quick); fi
        echo "$kind $i: load $(cut -d' ' -f1-3 /proc/loadavg) at start"
        start=$SECONDS
        "$bin" "${flags[@]}" "$@" >"$out/$kind-$i.json" 2>"$out/$kind-$i.err" || {
            echo "ipc-bench ${flags[*]} $* failed:" >&2
            cat "$out/$kind-$i.err" >&2
            exit 1
        }
        echo "$kind $i: $((SECONDS - start)) s"
    done
done

python3 - "$out" "$runs" <<'EOF'
import json, sys

out, runs = sys.argv[1], int(sys.argv[2])
def ratios(path):
    doc = json.load(open(path))
    return {(r["label"], r["placement"]): r["p50_ratio"]
            for r in doc["rows"] if r["test"] in ("latency", "syscall")}, doc["machine"]["load"]
quick = [ratios(f"{out}/quick-{i}.json") for i in range(1, runs + 1)]
full = [ratios(f"{out}/full-{i}.json") for i in range(1, runs + 1)]
print("loads at start: quick " + ", ".join(l for _, l in quick)
      + "; full " + ", ".join(l for _, l in full))
print(f"\n| row | {' | '.join(f'quick {i}' for i in range(1, runs + 1))} | "
      f"{' | '.join(f'full {i}' for i in range(1, runs + 1))} | worst quick/full |")
print("|---|" + "--:|" * (2 * runs + 1))
worst_all, misses, outside = 1.0, [], []
for key in full[0][0]:
    q = [r.get(key) for r, _ in quick]
    f = [r.get(key) for r, _ in full]
    pairs = [max(a / b, b / a) for a in q for b in f if a and b]
    worst = max(pairs, default=None)
    cells = " | ".join("—" if v is None else f"{v:.2f}×" for v in q + f)
    print(f"| {key[0]}, {key[1]} | {cells} | {'—' if worst is None else f'{worst:.2f}'} |")
    if worst is not None:
        worst_all = max(worst_all, worst)
        if worst > 1.1:
            misses.append(f"{key[0]}, {key[1]} ({worst:.2f})")
    outside += [f"{key[0]}, {key[1]} ({v:.2f}×)" for v in q if v and not 0.67 <= v <= 1.5]
print(f"\nworst disagreement between a quick and a full p50 ratio: {worst_all:.2f}x "
      f"(goal <= 1.1): {'met' if not misses else 'missed in ' + '; '.join(misses)}")
print("quick p50 ratios within 0.67-1.5x: "
      + ("all" if not outside else "not " + "; ".join(outside)))
sys.exit(1 if misses or outside else 0)
EOF
