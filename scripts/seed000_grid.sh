#!/usr/bin/env bash
# Seed 000's sweeps (E1-E4, issue 29) one after another, each resumable: run it again after an
# interruption and finished runs are skipped, a run in progress continues from its checkpoint.
#
#   nohup bash scripts/seed000_grid.sh --out /work/sweeps > seed000.log 2>&1 &
#   bash scripts/seed000_grid.sh --dry-run
#
# Options: --out DIR (one folder per sweep file, default sweeps/), --jobs N (runs at a time,
# default 1), --bin PATH (default: a copy of build/tools/cellc/cellc made at the first start in
# DIR/cellc-seed000, so a rebuild never changes a run's binary midway), --only A,B (these sweep
# files only). Summaries: experiments/summarize.py (results/NAME/COMMAND).
set -euo pipefail
cd "$(dirname "$0")/.."
out=sweeps bin="" jobs=1 dry=0 only=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "seed000_grid.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# In the order that answers the open questions first (what is done is skipped in seconds): E2 and
# its controls, E1 case i (also E4's fixed arm) and its control, E4's learned arm, E3 without and
# with dropout, E1 case ii.
sweeps=(multi_sequence multi_sequence_untrained multi_sequence_matched_steps sequence_shift_seeds
        sequence_shift_untrained readout forgetting_lambda forgetting_dropout
        sequence_shift_all_outputs_seeds)
mkdir -p "$out"
if [ -z "$bin" ]; then
  bin=$out/cellc-seed000
  [ -x "$bin" ] || cp build/tools/cellc/cellc "$bin"
fi
for s in "${sweeps[@]}"; do
  if [ -n "$only" ] && [[ ",$only," != *",$s,"* ]]; then continue; fi
  args=(sweep "experiments/sweeps/$s.toml" --jobs "$jobs" --set train.threads=1 --out "$out/$s")
  if [ $dry = 1 ]; then  # the first line (not through head: its closed pipe would stop the script)
    listing=$("$bin" "${args[@]}" --dry-run)
    echo "${listing%%$'\n'*}"
    continue
  fi
  echo "== $(date -u +%FT%TZ) $s"
  "$bin" "${args[@]}" || echo "== $s: exit $? (the next sweep starts; run again to retry)"
done
