#!/usr/bin/env bash
# The sweep driver's cost as the grid grows (issue 33): wall time per run and peak memory of
#   1. `cellc sweep --dry-run` of a grid of DRY runs (default 100,000): expansion, the check of
#      every point, the listing; measured with /usr/bin/time -v (no children);
#   2. `cellc sweep --jobs 2` of RUNS trivial runs (default 10,000; train.max_steps = 0 on a GRU of
#      2 units): the driver's peak RSS (its own VmHWM, read from /proc while it runs: time -v would
#      report the largest child), its wall time per run, and the runs' own time from their
#      sweep-status.json, so that the driver's overhead per run is the difference.
#
#   bash scripts/bench_sweep.sh [--cellc PATH] [--dry N] [--runs N] [--keep DIR]
#
# Prints one markdown table. Works in a temporary folder (removed unless --keep).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CELLC=$SRC/build/tools/cellc/cellc
DRY=100000 RUNS=10000 KEEP=
while [ $# -gt 0 ]; do
  case $1 in
    --cellc) CELLC=$2; shift 2 ;;
    --dry) DRY=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "usage: $0 [--cellc PATH] [--dry N] [--runs N] [--keep DIR]" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
WORK=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/cellc-bench-sweep-XXXXXX")}
mkdir -p "$WORK"
[ -n "$KEEP" ] || trap 'rm -rf "$WORK"' EXIT

# A base whose run is as short as a run gets: no training, a tiny test stage.
sed -e "s|^file = .*|file = \"$SRC/cells/gru.cell\"|" -e 's|^dims = .*|dims = { n = 2, n_in = 1, n_out = 1 }|' \
    -e 's|^max_steps = .*|max_steps = 0|' -e 's|^validation_batch = .*|validation_batch = 2|' \
    -e 's|^batch = .*|batch = 2|' "$SRC/experiments/copy_first_tiny.toml" > "$WORK/base.toml"
grid() {  # FILE N: N runs, as two axes (so that names have two parts)
  local n=$1 a=10 b
  b=$(( (n + 9) / 10 ))
  {
    echo '[sweep]'; echo 'base = "base.toml"'; echo 'name = "bench"'
    echo '[axes]'
    printf 'train.learning_rate = ['; seq -s, 1 $a | awk -F, '{for (i = 1; i <= NF; i++) printf "%s%g", (i > 1 ? "," : ""), $i / 1000}'; echo ']'
    printf 'experiment.seed = ['; seq -s, 1 "$b"; echo ']'
  } > "$2"
}
peak_kb() { awk '/Maximum resident/ {print $6}' "$1"; }
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$1"; }

echo "| measurement | runs | wall (s) | per run (ms) | peak RSS (MB) |"
echo "|---|---|---|---|---|"

grid "$DRY" "$WORK/dry.toml"
extra=(); [ "$DRY" -gt 100000 ] && extra=(--allow-large)
/usr/bin/time -v -o "$WORK/dry.time" "$CELLC" sweep "$WORK/dry.toml" --dry-run "${extra[@]}" --out "$WORK/dry" > "$WORK/dry.out" 2> "$WORK/dry.err" \
  || { cat "$WORK/dry.err" >&2; exit 1; }
n=$(grep -c -- '--set' "$WORK/dry.out")
w=$(wall_s "$WORK/dry.time")
awk -v n="$n" -v w="$w" -v kb="$(peak_kb "$WORK/dry.time")" \
  'BEGIN { printf "| --dry-run | %d | %.1f | %.3f | %.1f |\n", n, w, 1000 * w / n, kb / 1024 }'

if [ "$RUNS" -gt 0 ]; then
  grid "$RUNS" "$WORK/runs.toml"
  start=$(date +%s.%N)
  "$CELLC" sweep "$WORK/runs.toml" --jobs 2 --no-plot --out "$WORK/runs" > /dev/null 2> "$WORK/runs.err" &
  driver=$!
  hwm=0
  while kill -0 $driver 2> /dev/null; do
    v=$(awk '/VmHWM/ {print $2}' /proc/$driver/status 2> /dev/null || true)
    [ -n "$v" ] && hwm=$v
    sleep 0.5
  done
  wait $driver || { tail -5 "$WORK/runs.err" >&2; exit 1; }
  end=$(date +%s.%N)
  # The runs' own seconds (child start to exit), summed over both jobs.
  runsec=$(cat "$WORK"/runs/*/sweep-status.json | awk -F': ' '/"seconds"/ {gsub(",", "", $2); s += $2} END {print s}')
  n=$(grep -c ',finished,' "$WORK/runs/sweep.csv")
  awk -v n="$n" -v w="$(echo "$end - $start" | bc)" -v kb="$hwm" -v rs="$runsec" 'BEGIN {
    printf "| sweep --jobs 2 (driver) | %d | %.1f | %.1f | %.1f |\n", n, w, 1000 * w / n, kb / 1024
    printf "| runs themselves (sum / 2 jobs) | %d | %.1f | %.1f | |\n", n, rs / 2, 500 * rs / n
    printf "| driver overhead (wall - runs / 2) | %d | %.1f | %.1f | |\n", n, w - rs / 2, 1000 * (w - rs / 2) / n
  }'
fi
