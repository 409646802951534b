#!/usr/bin/env bash
# Runs one experiment's quick profile (or a sweep's) in a fresh folder: proof that everything
# runs end to end, not the science (that is the full runs' job, results/).
#   quick.sh CELLC OUT run|sweep FILE [extra args...]
set -euo pipefail
cellc=$1 out=$2 verb=$3 file=$4
shift 4
rm -rf "$out"
"$cellc" "$verb" "$file" --profile quick --out "$out" --no-plot "$@"
test -s "$out/summary.json" || test -s "$out/sweep.csv"
