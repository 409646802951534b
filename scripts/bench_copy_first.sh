#!/usr/bin/env bash
# E5's training speed per cell: steps/s of copy-first as published (T = 300, D = 32, H = 48,
# batch 128, Adam; experiments/copy_first.toml) over a short run of each cell, on all cores, and
# the minutes a full run of 15,625 steps would take at that rate. Stop other jobs first.
#
# The rate is the steady state: steps 30 to the last, from the run's metrics.csv (the first steps
# also touch the BPTT buffers' pages for the first time: 350 MB for a plastic cell). The minutes
# add the time to the end of step 1 (the first allocation) to 15,625 steps at that rate.
#
# With --against, two builds alternate (A, B, A, B, ... per cell: the machine's speed drifts by
# a quarter within a session, so only alternated runs compare), and each cell's row says whether
# B trained to the same bits as A (every logged minibatch loss and the test loss identical) or
# where the first loss differs.
#
#   bash scripts/bench_copy_first.sh                 # every E5 cell, 400 steps (150 for plastic cells)
#   BUILD=build-release bash scripts/bench_copy_first.sh   # or CELLC=path/to/cellc
#   bash scripts/bench_copy_first.sh --against /tmp/old-cellc --rounds 2 --cells pbrc,nbrc
set -euo pipefail
cd "$(dirname "$0")/.."
cellc=${CELLC:-${BUILD:-build}/tools/cellc/cellc}
against="" rounds=1 cells="gru,brc,nbrc,plastic_gru,plastic_gru_clip,pbrc,pbrc_split" steps=""
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; echo "options: --against CELLC  --rounds N  --cells a,b  --steps N"; }
while [ $# -gt 0 ]; do
  case $1 in
    --against) against=${2:?--against needs a cellc binary}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --cells) cells=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench_copy_first: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench_copy_first: --rounds must be a positive count, not '$rounds'" >&2; exit 2; }
[ -z "$steps" ] || [[ $steps =~ ^[0-9]+$ && $steps -ge 40 ]] \
  || { echo "bench_copy_first: --steps must be 40 or more (the rate starts at step 30), not '$steps'" >&2; exit 2; }
for bin in "$cellc" ${against:+"$against"}; do
  [ -x "$bin" ] || { echo "bench_copy_first: no cellc at '$bin' (build it first)" >&2; exit 1; }
done
IFS=, read -r -a cellList <<< "$cells"
for cell in "${cellList[@]}"; do
  [ -f "cells/$cell.cell" ] || { echo "bench_copy_first: no cell cells/$cell.cell" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/cellc-copy-first-XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$against" ]; then
  echo "| cell | params | steps/s | minutes for 15,625 steps |"
  echo "|---|---:|---:|---:|"
else
  echo "A = $cellc, B = $against, alternated, $rounds round(s) per cell"
  echo
  echo "| cell | A steps/s | B steps/s | B / A | same bits |"
  echo "|---|---|---|---:|---|"
fi
for cell in "${cellList[@]}"; do
  n=${steps:-400}
  case $cell in plastic* | pbrc*) n=${steps:-150} ;; esac
  extra=()
  [ "$cell" = pbrc_split ] && extra=(--set cell.dims.k=24)  # H = 2k = 48, as its sweep sets it
  runs=()
  for r in $(seq 1 "$rounds"); do
    for side in A ${against:+B}; do
      bin=$cellc
      [ "$side" = B ] && bin=$against
      out="$work/$cell-$side-$r"
      "$bin" run experiments/copy_first.toml --out "$out" --no-plot --set train.max_steps=$n \
        --set test.trials=100 --set cell.file="\"../cells/$cell.cell\"" "${extra[@]}" > "$out.log" 2>&1 \
        || { echo "bench_copy_first: $cell ($side) failed: $(tail -3 "$out.log")" >&2; exit 1; }
      runs+=("$side:$out")
    done
  done
  /usr/bin/python3 - "$cell" "${runs[@]}" <<'PY'
import csv, json, sys
cell, runs = sys.argv[1], [a.split(":", 1) for a in sys.argv[2:]]

def measure(run):
    rows = [r for r in csv.DictReader(open(run + "/metrics.csv")) if r["phase"] == "train"]
    steps = {int(r["step"]): float(r["seconds"]) for r in rows}
    first, last = min(s for s in steps if s >= 30), max(steps)
    rate = (last - first) / (steps[last] - steps[first])
    summary = json.load(open(run + "/summary.json"))
    losses = [(int(r["step"]), r["loss"]) for r in rows] + [("test", repr(summary["test"]["loss"]))]
    return rate, (steps[min(steps)] + 15625 / rate) / 60, summary["cell"]["params"], losses

m = {side: [measure(run) for s, run in runs if s == side] for side in ("A", "B")}
if not m["B"]:
    rate, minutes, params, _ = m["A"][0]
    print(f"| {cell} | {params} | {rate:.1f} | {minutes:.1f} |")
    sys.exit()
a, b = [x[0] for x in m["A"]], [x[0] for x in m["B"]]
same, ref = "yes", m["A"][0][3]
for run in m["A"][1:] + m["B"]:
    diff = next((x for x, y in zip(ref, run[3]) if x != y), None)
    if diff or len(ref) != len(run[3]):
        same = f"no: from step {diff[0]}" if diff else "no: different lengths"
        break
fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
print(f"| {cell} | {fmt(a)} | {fmt(b)} | {sum(b) / len(b) / (sum(a) / len(a)):.2f} | {same} |")
PY
done
