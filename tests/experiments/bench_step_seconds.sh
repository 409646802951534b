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
# Another D and a chosen list of cells (cell:H[:k]); a cell that is not in cells/ is refused.
out=$(bash "$script" --cellc "$cellc" --rounds 1 --steps 40 --T 3 --D 2 --cells nbrc:8,pbrc_split:8:4) \
  || fail "--D 2 --cells failed: $out"
[ "$(echo "$out" | tail -n +2 | cut -d, -f1-5 | tr '\n' ' ')" = "3,2,nbrc,8,0 3,2,pbrc_split,8,4 " ] \
  || fail "--D 2 --cells rows: $out"
bash "$script" --cellc "$cellc" --cells nosuch:8 > /dev/null 2>&1; [ $? -eq 2 ] || fail "--cells nosuch:8 was not refused"
echo ok
