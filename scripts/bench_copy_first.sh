#!/usr/bin/env bash
# E5's training speed per cell: steps/s of copy-first as published (T = 300, D = 32, H = 48,
# batch 128, Adam; experiments/copy_first.toml) over a short run of each cell, on all cores, and
# the minutes a full run of 15,625 steps would take at that rate. Stop other jobs first.
#
# The rate is the steady state: steps 30 to the last, from the run's metrics.csv (the first steps
# also touch the BPTT buffers' pages for the first time: 350 MB for a plastic cell). The minutes
# add the time to the end of step 1 (the first allocation) to 15,625 steps at that rate.
#
#   bash scripts/bench_copy_first.sh                 # every E5 cell, 400 steps (150 for plastic cells)
#   BUILD=build-release bash scripts/bench_copy_first.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cellc=${BUILD:-build}/tools/cellc/cellc
[ -x "$cellc" ] || { echo "bench_copy_first: build cellc first ($cellc)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cellc-copy-first-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "| cell | params | steps/s | minutes for 15,625 steps |"
echo "|---|---:|---:|---:|"
for cell in gru brc nbrc plastic_gru plastic_gru_clip pbrc pbrc_split; do
  steps=400
  case $cell in plastic* | pbrc*) steps=150 ;; esac
  extra=()
  [ "$cell" = pbrc_split ] && extra=(--set cell.dims.k=24)  # H = 2k = 48, as its sweep sets it
  "$cellc" run experiments/copy_first.toml --out "$work/$cell" --no-plot --set train.max_steps=$steps \
    --set test.trials=100 --set cell.file="\"../cells/$cell.cell\"" "${extra[@]}" > "$work/$cell.log" 2>&1 \
    || { echo "bench_copy_first: $cell failed: $(tail -3 "$work/$cell.log")" >&2; exit 1; }
  /usr/bin/python3 - "$cell" "$work/$cell" <<'PY'
import csv, json, sys
cell, run = sys.argv[1], sys.argv[2]
rows = [r for r in csv.DictReader(open(run + "/metrics.csv")) if r["phase"] == "train"]
steps = {int(r["step"]): float(r["seconds"]) for r in rows}
first, last = min(s for s in steps if s >= 30), max(steps)
rate = (last - first) / (steps[last] - steps[first])
params = json.load(open(run + "/summary.json"))["cell"]["params"]
print(f"| {cell} | {params} | {rate:.1f} | {(steps[min(steps)] + 15625 / rate) / 60:.1f} |")
PY
done
