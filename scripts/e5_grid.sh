#!/usr/bin/env bash
# E5's full grid on one machine, in the order that answers the open questions first: one run at a
# time on every core, each a `cellc sweep ... --only ...` subset, so an interrupted grid resumes
# (finished runs are skipped, a run in progress continues from its checkpoint). Hours per plastic
# run; start it in the background and let it run over several sittings:
#
#   nohup bash scripts/e5_grid.sh > e5_grid.log 2>&1 &
#   bash scripts/e5_grid.sh --dry-run            # the subsets, in order, with what each would run
#   bash scripts/e5_grid.sh --list               # the subsets only (sweep file and filters)
#   bash scripts/e5_grid.sh --rerun-archived     # then also re-run what only the archive holds
#
# Two lanes, one run per core, pay only for small states (PBRC and nBRC at H = 48: 7-10% more
# runs an hour than one run on both cores; a sweep folder is locked by the lane that runs in it, so
# the lanes take disjoint sweep files):
#
#   nohup bash scripts/e5_grid.sh --threads 1 --sweeps copy_first_d32 > lane1.log 2>&1 &
#   nohup bash scripts/e5_grid.sh --threads 1 --skip-sweeps copy_first_d32 > lane2.log 2>&1 &
#
# Larger traces fight over the shared cache: the plastic GRU at H = 64 ran 2.0 steps/s in a lane
# beside the plastic GRU at D = 1, H = 100 (0.54 steps/s), against over 3.7 alone on one core, 1.75
# for the other, and 6.0 alone on both: one lane on both cores (the default) for those.
#
# Options: --out DIR (the sweeps' parent folder, default sweeps/; one folder per sweep file),
# --sweeps A,B / --skip-sweeps A,B (only the subsets of these sweep files / all but these),
# --threads N (each run's train.threads, default all cores; it changes no number, so a run may
# resume with another N: the sweep and `cellc run` let threads differ on resume),
# --rerun-archived (after the grid, the whole sweeps again: the runs that only the archive
# results/copy_first/runs/ holds, their folders lost with an earlier machine, train again for
# their learning curves; their numbers then come from this binary, which may differ from the
# archived ones in the last bits and so in the steps they took),
# --bin PATH (the cellc to run, default a copy of build/tools/cellc/cellc made at the first start
# in DIR/cellc-e5: a rebuild never changes a run's binary midway; delete it to take a new build).
# Summaries: experiments/summarize.py over DIR/copy_first_* (results/copy_first/COMMAND).
set -euo pipefail
cd "$(dirname "$0")/.."
out=sweeps bin="" dry=0 list=0 threads=$(nproc) only_sweeps="" skip_sweeps="" rerun=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --sweeps) only_sweeps=$2; shift 2 ;;
    --skip-sweeps) skip_sweeps=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --list) list=1; shift ;;
    --rerun-archived) rerun=1; shift ;;
    *) echo "e5_grid: unknown option $1 (--out DIR, --bin PATH, --threads N, --sweeps A,B, --skip-sweeps A,B, --dry-run, --list, --rerun-archived)" >&2; exit 2 ;;
  esac
done
[ $list = 1 ] || mkdir -p "$out"
if [ $list = 0 ] && [ -z "$bin" ]; then
  bin=$out/cellc-e5
  if [ ! -x "$bin" ]; then
    [ -x build/tools/cellc/cellc ] || { echo "e5_grid: build cellc first (bash scripts/test.sh)" >&2; exit 1; }
    cp build/tools/cellc/cellc "$bin"
  fi
fi

# sweep file (experiments/sweeps/NAME.toml), then --only filters: the runs that no sweep folder
# or archive (results/copy_first/runs/) has yet, the open questions first (the seeds that decide
# a comparison before the one-to-two-hour runs at D = 1, T = 300, H = 100; of those, the
# bistable one first: it answers the question of the paper). With
# --rerun-archived, then the whole sweeps of rerun_subsets.
subsets=(
  "copy_first_d32 cell=plastic_gru dims.n=64 seed=1"
  "copy_first_d32 cell=pbrc dims.n=64 seed=2"
  "copy_first_d32 cell=gru dims.n=64 seed=3"
  "copy_first_matched_split seed=1"
  "copy_first_d1 cell=plastic_gru_clip steps=100"
  "copy_first_d1 cell=plastic_gru steps=100"
  "copy_first_d1 cell=pbrc steps=300 dims.n=100"
  "copy_first_d1_seeds cell=pbrc"
  "copy_first_d32 cell=pbrc dims.n=64 seed=3"
  "copy_first_d32 cell=plastic_gru dims.n=64"
  "copy_first_d32 cell=plastic_gru_clip dims.n=48 seed=2"
  "copy_first_d32 cell=plastic_gru_clip dims.n=48 seed=3"
  "copy_first_d32 cell=plastic_gru dims.n=48 seed=2"
  "copy_first_d32 cell=plastic_gru dims.n=48 seed=3"
  "copy_first_d32 cell=brc dims.n=48 seed=2"
  "copy_first_d32 cell=brc dims.n=48 seed=3"
  "copy_first_d32 cell=brc dims.n=64"
  "copy_first_d32_split dims.k=32"
  "copy_first_d1_seeds"
  "copy_first_matched_split"
  "copy_first_d1_split steps=5"
  "copy_first_d1_split dims.n=8"
  "copy_first_d1_split steps=100"
  "copy_first_d1_split_seeds"
  "copy_first_d1_split"
  "copy_first_d1 cell=plastic_gru steps=300 dims.n=100"
  "copy_first_d1 cell=plastic_gru_clip steps=300 dims.n=100"
  "copy_first_d1_t300_split_seeds seed=2"
  "copy_first_d1_t300_seeds seed=2"
  "copy_first_d1_t300_split_seeds seed=3"
  "copy_first_d1_t300_seeds seed=3"
)
rerun_subsets=(
  "copy_first_d32"
  "copy_first_d32_split"
  "copy_first_d1"
  "copy_first_matched"
)
[ $rerun = 0 ] || subsets+=("${rerun_subsets[@]}")
listed() { [[ ",$1," == *",$2,"* ]]; }  # listed A,B NAME
for name in ${only_sweeps//,/ } ${skip_sweeps//,/ }; do
  [ -f "experiments/sweeps/$name.toml" ] || { echo "e5_grid: no sweep file experiments/sweeps/$name.toml" >&2; exit 2; }
done
for s in "${subsets[@]}"; do
  read -r name filters <<< "$s"
  if [ -n "$only_sweeps" ] && ! listed "$only_sweeps" "$name"; then continue; fi
  if listed "$skip_sweeps" "$name"; then continue; fi
  if [ $list = 1 ]; then echo "$name $filters"; continue; fi
  only=()
  for f in $filters; do only+=(--only "$f"); done
  cmd=("$bin" sweep "experiments/sweeps/$name.toml" --jobs 1 --set train.threads="$threads" --out "$out/$name" "${only[@]}")
  echo "=== $(date -u +%FT%TZ) ${cmd[*]}"
  if [ $dry = 1 ]; then  # a filter that matches no run stops here with the sweep's error
    listing=$("${cmd[@]}" --dry-run)
    grep -v -e 'not selected by' -e '^ *--set' <<< "$listing" || true
    continue
  fi
  "${cmd[@]}" || echo "=== exit $? (a run failed: see its log.txt; the next subsets go on)"
done
