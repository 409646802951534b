#!/usr/bin/env bash
# scripts/bench_step_seconds.sh runs end to end on a tiny setting and writes one row per cell with
# a positive rate, in the columns summaries/copy_first.py reads; bad options exit 2.
#   bench_step_seconds.sh SCRIPT CELLC
set -uo pipefail
script=$1 cellc=$2
fail() { echo "FAIL: $*"; exit 1; }
out=$(bash "$script" --cellc "$cellc" --rounds 1 --steps 40 --T 3) || fail "the script failed: $out"
[ "$(echo "$out" | head -1)" = "T,D,cell,H,k,seconds_per_step,rounds" ] || fail "header: $(echo "$out" | head -1)"
[ "$(echo "$out" | wc -l)" -eq 6 ] || fail "expected 5 cells: $out"
echo "$out" | tail -n +2 | while IFS=, read -r T D cell H k rate rounds; do
  [ "$T" = 3 ] && [ "$D" = 1 ] && [ "$rounds" = 1 ] || fail "row $T,$D,$cell,$H,$k,$rate,$rounds"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" "$rate" || fail "rate $rate of $cell"
done || exit 1
bash "$script" --cellc "$cellc" --steps 10 > /dev/null 2>&1; [ $? -eq 2 ] || fail "--steps 10 was not refused with exit 2"
echo ok
