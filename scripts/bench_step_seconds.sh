#!/usr/bin/env bash
# Seconds per training step of E5's cells (copy-first, D inputs, batch 128, Adam, one core as the
# sweeps' lanes run), measured in one sitting with the cells alternated, for the summary's
# time-to-target in seconds: steps x this rate, the same machine for every cell (the seconds a
# run records depend on what else ran beside it). Stop other jobs (or SIGSTOP them) first.
#
# Writes CSV rows `T,D,cell,H,k,seconds_per_step,rounds` (the median over rounds of the steady
# rate, steps 30 to the last) to stdout; results/copy_first/step_seconds.csv is its output.
#   bash scripts/bench_step_seconds.sh [--cellc PATH] [--rounds N] [--steps N] [--T 100] [--D 1]
#        [--cells nbrc:100,nbrc:122,gru:100,pbrc:100,pbrc_split:100:50]    (cell:H[:k], k for pbrc_split)
set -euo pipefail
cd "$(dirname "$0")/.."
cellc=build/tools/cellc/cellc rounds=2 steps=300 T=100 D=1
cellList="nbrc:100,nbrc:122,gru:100,pbrc:100,pbrc_split:100:50"  # D = 1's matched controls
while [ $# -gt 0 ]; do
  case $1 in
    --cellc) cellc=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --T) T=${2:?}; shift 2 ;;
    --D) D=${2:?}; shift 2 ;;
    --cells) cellList=${2:?}; shift 2 ;;
    *) echo "bench_step_seconds: unknown option '$1' (--cellc, --rounds, --steps, --T, --D, --cells)" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $steps =~ ^[0-9]+$ && $steps -ge 40 && $T =~ ^[1-9][0-9]*$ && $D =~ ^[1-9][0-9]*$ ]] \
  || { echo "bench_step_seconds: --rounds >= 1, --steps >= 40, --T >= 1, --D >= 1" >&2; exit 2; }
cells=()
IFS=, read -r -a specs <<< "$cellList"
for spec in "${specs[@]}"; do
  IFS=: read -r cell n k <<< "$spec"
  [[ $cell =~ ^[a-z_0-9]+$ && -f cells/$cell.cell && $n =~ ^[1-9][0-9]*$ && ${k:-0} =~ ^[0-9]+$ ]] \
    || { echo "bench_step_seconds: --cells takes cell:H[:k] with a cell of cells/, not '$spec'" >&2; exit 2; }
  cells+=("$cell $n ${k:-0}")
done
[ -x "$cellc" ] || { echo "bench_step_seconds: no cellc at '$cellc' (build it first)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "T,D,cell,H,k,seconds_per_step,rounds"
declare -A rates
for ((r = 1; r <= rounds; r++)); do
  for spec in "${cells[@]}"; do
    read -r cell n k <<< "$spec"
    extra=(); [ "$k" != 0 ] && extra=(--set "cell.dims.k=$k")
    out="$tmp/$cell-$n-$r"
    "$cellc" run experiments/copy_first.toml --no-plot --out "$out" --set "task.dim=$D" \
      --set "cell.dims.n_in=$D" --set "cell.dims.n_out=$D" --set "task.steps=$T" --set "train.max_steps=$steps" \
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
  echo "$T,$D,$cell,$n,$k,$med,$rounds"
done
