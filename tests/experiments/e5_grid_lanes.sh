#!/usr/bin/env bash
# scripts/e5_grid.sh's two lanes (--sweeps A / --skip-sweeps A) split its subsets between them,
# none twice, none left out; a sweep name that has no file is an error before anything runs.
set -euo pipefail
grid=$1
all=$(bash "$grid" --list | sort)
lane1=$(bash "$grid" --list --sweeps copy_first_d32)
lane2=$(bash "$grid" --list --skip-sweeps copy_first_d32)
[ -n "$all" ] && [ "$all" = "$(printf '%s\n%s\n' "$lane1" "$lane2" | sort)" ] ||
  { echo "the two lanes do not split the grid's subsets"; exit 1; }
[ -n "$lane1" ] && ! grep -v '^copy_first_d32 ' <<< "$lane1" || { echo "--sweeps let another sweep in"; exit 1; }
[ -n "$lane2" ] && ! grep '^copy_first_d32 ' <<< "$lane2" || { echo "--skip-sweeps kept a skipped sweep"; exit 1; }
if err=$(bash "$grid" --list --sweeps copy_first_d3 2>&1); then
  echo "an unknown sweep name was accepted"; exit 1
fi
grep -q "no sweep file experiments/sweeps/copy_first_d3.toml" <<< "$err" || { echo "unclear error: $err"; exit 1; }
echo "lanes: $(wc -l <<< "$all") subsets, split $(wc -l <<< "$lane1") + $(wc -l <<< "$lane2")"
# --rerun-archived adds the whole sweeps after the grid; without it the grid ends at its subsets.
rerun=$(bash "$grid" --list --rerun-archived)
extra=$(comm -13 <(sort <<< "$all") <(sort <<< "$rerun"))
[ -n "$extra" ] && ! grep -v '^copy_first_[a-z0-9_]* $' <<< "$extra" && [ "$(head -n "$(wc -l <<< "$all")" <<< "$rerun")" = "$(bash "$grid" --list)" ] ||
  { echo "--rerun-archived did not append whole sweeps after the grid: $extra"; exit 1; }
echo "rerun-archived: $(wc -l <<< "$extra") whole sweeps after the grid"
