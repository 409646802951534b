#!/usr/bin/env bash
# Seconds per training step of E5's one-input cells (copy-first, D = 1, batch 128, Adam, one core
# as the sweeps' lanes run), measured in one sitting with the cells alternated, for the summary's
# time-to-target in seconds: steps x this rate, the same machine for every cell (the seconds a
# run records depend on what else ran beside it). Stop other jobs (or SIGSTOP them) first.
#
# Writes CSV rows `T,D,cell,H,k,seconds_per_step,rounds` (the median over rounds of the steady
# rate, steps 30 to the last) to stdout; results/copy_first/step_seconds.csv is its output.
#   bash scripts/bench_step_seconds.sh [--cellc PATH] [--rounds N] [--steps N] [--T 100]
set -euo pipefail
cd "$(dirname "$0")/.."
cellc=build/tools/cellc/cellc rounds=2 steps=300 T=100
while [ $# -gt 0 ]; do
  case $1 in
    --cellc) cellc=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --T) T=${2:?}; shift 2 ;;
    *) echo "bench_step_seconds: unknown option '$1' (--cellc, --rounds, --steps, --T)" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $steps =~ ^[0-9]+$ && $steps -ge 40 && $T =~ ^[1-9][0-9]*$ ]] \
  || { echo "bench_step_seconds: --rounds >= 1, --steps >= 40, --T >= 1" >&2; exit 2; }
[ -x "$cellc" ] || { echo "bench_step_seconds: no cellc at '$cellc' (build it first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cells=("nbrc 100 0" "nbrc 122 0" "gru 100 0" "pbrc 100 0" "pbrc_split 100 50")
echo "T,D,cell,H,k,seconds_per_step,rounds"
declare -A rates
for ((r = 1; r <= rounds; r++)); do
  for spec in "${cells[@]}"; do
    read -r cell n k <<< "$spec"
    extra=(); [ "$k" != 0 ] && extra=(--set "cell.dims.k=$k")
    out="$tmp/$cell-$n-$r"
    "$cellc" run experiments/copy_first.toml --no-plot --out "$out" --set task.dim=1 \
      --set cell.dims.n_in=1 --set cell.dims.n_out=1 --set "task.steps=$T" --set "train.max_steps=$steps" \
      --set train.threads=1 --set train.validate_every=0 --set test.trials=10 \
      --set "cell.file=\"../cells/$cell.cell\"" --set "cell.dims.n=$n" "${extra[@]}" > "$out.log" 2>&1 \
      || { echo "bench_step_seconds: $cell H=$n failed: $(tail -2 "$out.log")" >&2; exit 1; }
    rate=$(/usr/bin/python3 -c '
import csv, sys
s = {int(r["step"]): float(r["seconds"]) for r in csv.DictReader(open(sys.argv[1]))}
b = max(s); print((s[b] - s[30]) / (b - 30))' "$out/metrics.csv")
    rates["$spec"]+="$rate "
  done
done
for spec in "${cells[@]}"; do
  read -r cell n k <<< "$spec"
  med=$(/usr/bin/python3 -c 'import statistics, sys; print(f"{statistics.median(map(float, sys.argv[1:])):.6g}")' ${rates["$spec"]})
  echo "$T,1,$cell,$n,$k,$med,$rounds"
done
