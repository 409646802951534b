#!/usr/bin/env bash
# scripts/bench_copy_first.sh --against: a build against itself trains to the same bits; against
# a build that trains differently (here: another learning rate) the row says so and where.
set -euo pipefail
script=$1 cellc=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-ab-XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexec "%s" "$@" --set train.learning_rate=0.002\n' "$cellc" > "$work/other-cellc"
chmod +x "$work/other-cellc"
same=$(CELLC=$cellc bash "$script" --cells brc --steps 40 --against "$cellc")
grep -Eq '^\| brc \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| yes \|$' <<< "$same" || { echo "same build, not the same bits:"; echo "$same"; exit 1; }
other=$(CELLC=$cellc bash "$script" --cells brc --steps 40 --against "$work/other-cellc")
grep -q '| no: from step 10 |$' <<< "$other" || { echo "a different run was not told apart:"; echo "$other"; exit 1; }
if err=$(CELLC=$cellc bash "$script" --rounds 0 2>&1); then echo "--rounds 0 was accepted"; exit 1; fi
grep -q "positive count" <<< "$err" || { echo "unclear error: $err"; exit 1; }
echo "$same"; echo "$other"
