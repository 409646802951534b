#!/usr/bin/env bash
# `cellc sweep` end to end, one case per ctest entry:
#   sweep_cli.sh CELLC SOURCE_DIR CASE
# Cases: dry_run, errors, failing_run, invalid_cell, only, lock, interrupt, killed, plot_beside,
# resume, replaced_binary, example, mpi.
set -uo pipefail
CELLC=$1 SRC=$2 CASE=$3
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cellc-sweep-$CASE-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() {
  echo "FAIL ($CASE): $*"
  for f in "$WORK"/*.log "$WORK"/*/*/sweep-status.json "$WORK"/*/*/log.txt; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 12 "$f"; }
  done
  exit 1
}
check_contains() {  # FILE TEXT
  grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "expected '$2' in $1"; }
}

# A tiny sweep beside the example's base: two cells x two seeds, or with a broken cell.
small_sweep() {  # FILE CELLS...
  local file=$1; shift
  local list=""
  for c in "$@"; do list+="${list:+, }\"$c\""; done
  cat > "$file" <<EOT
[sweep]
base = "$SRC/experiments/copy_first_tiny.toml"
seeds = [1, 2]

[axes]
cell.file = [$list]
EOT
}

case $CASE in
dry_run)
  "$CELLC" sweep "$SRC/experiments/sweeps/sweep_example.toml" --dry-run --out "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr" \
    || fail "dry run exited $?"
  check_contains "$WORK/stdout" "12 runs of $SRC/experiments/copy_first_tiny.toml"
  check_contains "$WORK/stdout" "cell=gru,dim=1,dims.n_in=1,dims.n_out=1,seed=1"
  check_contains "$WORK/stdout" "cell=nbrc,dim=4,dims.n_in=4,dims.n_out=4,seed=2"
  check_contains "$WORK/stdout" '--set train.max_steps=60 --set cell.file="../cells/nbrc.cell" --set task.dim=4 --set cell.dims.n_in=4 --set cell.dims.n_out=4 --set experiment.seed=2'
  [ "$(grep -c -- '--set' "$WORK/stdout")" = 12 ] || fail "expected 12 runs listed"
  [ ! -e "$WORK/out" ] || fail "a dry run created $WORK/out"
  # --set and --profile of the command line reach every run.
  "$CELLC" sweep "$SRC/experiments/sweeps/sweep_example.toml" --dry-run --set train.batch=8 > "$WORK/stdout2" || fail "dry run with --set"
  [ "$(grep -c -- '--set train.batch=8' "$WORK/stdout2")" = 12 ] || fail "--set not in every run"
  # Runs that share the cores (--jobs 2) get a share of them each, unless told otherwise.
  share=$(( $(nproc) / 2 )); [ $share -ge 1 ] || share=1
  "$CELLC" sweep "$SRC/experiments/sweeps/sweep_example.toml" --dry-run --jobs 2 > "$WORK/stdout3" || fail "dry run with --jobs 2"
  [ "$(grep -c -- "--set experiment.seed=[12] --set train.threads=$share\$" "$WORK/stdout3")" = 12 ] \
    || { cat "$WORK/stdout3"; fail "--jobs 2: not every run got train.threads=$share"; }
  "$CELLC" sweep "$SRC/experiments/sweeps/sweep_example.toml" --dry-run --jobs 2 --set train.threads=3 > "$WORK/stdout4" \
    || fail "dry run with --jobs 2 and threads"
  [ "$(grep -o -- "train.threads=" "$WORK/stdout4" | wc -l)" = 12 ] && [ "$(grep -c -- "train.threads=3" "$WORK/stdout4")" = 12 ] \
    || { cat "$WORK/stdout4"; fail "--set train.threads must win over the share"; }
  ;;
errors)
  # An error in one point is found before anything runs, with the sweep file, line and key.
  cat > "$WORK/bad.toml" <<EOT
[sweep]
base = "$SRC/experiments/copy_first_tiny.toml"

[axes]
train.batch = [4, 0]
EOT
  "$CELLC" sweep "$WORK/bad.toml" --out "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr"
  rc=$?
  [ $rc = 1 ] || fail "exit status $rc, expected 1"
  check_contains "$WORK/stderr" "$WORK/bad.toml:5:7: error: axis 'train.batch' = 0: --set train.batch=0: key 'train.batch' = 0 is out of range"
  check_contains "$WORK/stderr" "nothing was run"
  [ ! -e "$WORK/out" ] || fail "a sweep with errors created its folder"
  # A sweep.name that leaves sweeps/ is refused before any folder is made (its lock included).
  printf '[sweep]\nbase = "%s"\nname = "../../escape"\n' "$SRC/experiments/copy_first_tiny.toml" > "$WORK/esc.toml"
  mkdir -p "$WORK/a/b"
  (cd "$WORK/a/b" && "$CELLC" sweep "$WORK/esc.toml" > /dev/null 2> "$WORK/stderr"); rc=$?
  [ $rc = 1 ] || fail "sweep.name ../../escape: exit status $rc, expected 1"
  check_contains "$WORK/stderr" "$WORK/esc.toml:3:8: error: sweep.name '../../escape': a name must be"
  [ ! -e "$WORK/a/escape" ] && [ ! -e "$WORK/a/b/sweeps" ] || fail "sweep.name ../../escape made a folder"
  "$CELLC" sweep "$WORK/bad.toml" --jobs 0 2> "$WORK/stderr"; rc=$?
  [ $rc = 2 ] || fail "--jobs 0: exit status $rc, expected 2"
  check_contains "$WORK/stderr" "--jobs expects a whole number"
  ;;
failing_run)
  # Two points' runs fail when they start (their folders hold another experiment, which `cellc run`
  # refuses to mix in); the others finish, the failures are reported.
  small_sweep "$WORK/s.toml" "../cells/gru.cell" "../cells/brc.cell"
  for s in 1 2; do
    mkdir -p "$WORK/out/cell=brc,seed=$s"
    printf '[experiment]\nname = "another"\n' > "$WORK/out/cell=brc,seed=$s/experiment.toml"
  done
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr"
  rc=$?
  cat "$WORK/stderr"
  [ $rc = 1 ] || fail "exit status $rc, expected 1 (a run failed)"
  for s in 1 2; do
    [ -f "$WORK/out/cell=gru,seed=$s/summary.json" ] || fail "the good run seed=$s did not finish"
    check_contains "$WORK/out/cell=brc,seed=$s/sweep-status.json" '"state": "failed"'
  done
  check_contains "$WORK/stderr" "2 finished, 2 failed"
  check_contains "$WORK/stderr" "cell=brc,seed=1 (exit status 1"
  check_contains "$WORK/out/cell=brc,seed=1/log.txt" "another"
  check_contains "$WORK/out/sweep.csv" '"cell=gru,seed=1",gru,1,finished,0,'
  check_contains "$WORK/out/sweep.csv" '"cell=brc,seed=2",brc,2,failed,1'
  # A rerun skips the finished runs and tries the failed ones again.
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" > /dev/null 2> "$WORK/stderr2"
  check_contains "$WORK/stderr2" "4 runs in $WORK/out, 2 already finished, 2 to run"
  ;;
only)
  # --only runs a subset (here one cell); the rest stay pending until a run without it. A filter
  # that matches no run is an error that names it, before anything runs.
  small_sweep "$WORK/s.toml" "../cells/gru.cell" "../cells/brc.cell"
  "$CELLC" sweep "$WORK/s.toml" --only cell=nbrc --out "$WORK/out" > /dev/null 2> "$WORK/stderr0"
  [ $? = 1 ] || fail "an --only that matches nothing must fail"
  check_contains "$WORK/stderr0" "--only cell=nbrc: no run of the sweep has 'cell=nbrc' in its name"
  [ ! -e "$WORK/out/cell=gru,seed=1" ] || fail "a run started although --only matched nothing"
  "$CELLC" sweep "$WORK/s.toml" --only cell=brc --only seed=2 --out "$WORK/out" > /dev/null 2> "$WORK/stderr"
  rc=$?
  [ $rc = 0 ] || { cat "$WORK/stderr"; fail "exit status $rc, expected 0 (the selected run finished)"; }
  check_contains "$WORK/stderr" "1 selected by --only, 0 of them already finished, 1 to run"
  [ -f "$WORK/out/cell=brc,seed=2/summary.json" ] || fail "the selected run did not finish"
  for r in "cell=brc,seed=1" "cell=gru,seed=1" "cell=gru,seed=2"; do
    [ ! -e "$WORK/out/$r/summary.json" ] || fail "$r ran although not selected"
  done
  "$CELLC" sweep "$WORK/s.toml" --dry-run --only cell=gru --out "$WORK/out" > "$WORK/list"
  check_contains "$WORK/list" "cell=brc,seed=2  [finished]  [not selected by --only]"
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" > /dev/null 2> "$WORK/stderr2" || fail "the rest of the sweep"
  check_contains "$WORK/stderr2" "4 runs in $WORK/out, 1 already finished, 3 to run"
  ;;
invalid_cell)
  # A point whose cell does not compile: the sweep says so, naming the run and the cell's error,
  # and runs nothing (not even the good points).
  small_sweep "$WORK/s.toml" "../cells/gru.cell" "../tests/fixtures/invalid/E200_unknown_name.cell"
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr"
  rc=$?
  [ $rc = 1 ] || fail "exit status $rc, expected 1 (the sweep has errors)"
  check_contains "$WORK/stderr" "error: run cell=E200_unknown_name,seed=1:"
  check_contains "$WORK/stderr" "error[E200]"
  check_contains "$WORK/stderr" "2 errors in the sweep; nothing was run"
  [ ! -e "$WORK/out/cell=gru,seed=1/summary.json" ] || fail "a run started although the sweep has errors"
  ;;
lock)
  # Two sweeps on one folder: the second refuses, naming the lock.
  small_sweep "$WORK/s.toml" "../cells/gru.cell"
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" > /dev/null 2> "$WORK/first" &
  first=$!
  for _ in $(seq 600); do
    grep -qs '"state": "running"' "$WORK"/out/*/sweep-status.json && break
    sleep 0.05
  done
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" > /dev/null 2> "$WORK/second"
  rc=$?
  wait $first || fail "the first sweep failed: $(cat "$WORK/first")"
  [ $rc = 1 ] || fail "the second sweep exited $rc, expected 1"
  check_contains "$WORK/second" "$WORK/out is in use by another sweep"
  check_contains "$WORK/second" "$WORK/out/.lock"
  ;;
resume)
  # Kill the driver (SIGKILL) mid-sweep; a rerun finishes it, with the numbers of an
  # uninterrupted sweep. Longer runs, so that the kill lands while one is training.
  small_sweep "$WORK/s.toml" "../cells/gru.cell" "../cells/nbrc.cell"
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/ref" --set train.max_steps=400 > /dev/null 2> "$WORK/ref.log" \
    || fail "the reference sweep failed: $(cat "$WORK/ref.log")"
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" --set train.max_steps=400 > /dev/null 2> "$WORK/killed.log" &
  driver=$!
  # Wait for a finished run and one with a checkpoint of its training, unfinished. No fixed
  # short cap: on a loaded machine (ctest -j2 beside training runs) the first run took longer than
  # the 24 s this loop once allowed, and the kill then landed before any run had finished.
  seen=
  for _ in $(seq 15000); do  # up to 5 minutes
    kill -0 $driver 2> /dev/null || break
    # a finished run is one with its summary (sweep.csv is rewritten on a timer, not per run)
    if compgen -G "$WORK/out/*/summary.json" > /dev/null; then
      for d in "$WORK"/out/*/; do
        [ -f "$d/train-train.ckpt" ] && [ ! -f "$d/summary.json" ] && { seen=1; break 2; }
      done
    fi
    sleep 0.02
  done
  [ -n "$seen" ] || fail "never saw a finished run beside an unfinished one with a checkpoint (the sweep exited first, or took over 5 minutes): $(cat "$WORK/killed.log")"
  kill -KILL $driver
  wait $driver 2> /dev/null
  # The killed driver's runs get SIGINT, checkpoint and stop; they hold the lock until then.
  flock -w 60 "$WORK/out/.lock" true || fail "the lock was not released"
  [ "$(ls "$WORK"/out/*/summary.json 2> /dev/null | wc -l)" = 4 ] \
    && fail "the sweep finished before the kill; nothing to resume"
  # The rerun may change what a resume may change (threads), as `cellc run` allows.
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" --set train.max_steps=400 --set train.threads=1 > /dev/null 2> "$WORK/rerun.log" \
    || fail "the rerun failed: $(cat "$WORK/rerun.log")"
  cat "$WORK/rerun.log"
  grep -Eq "4 runs in .*, [123] already finished" "$WORK/rerun.log" || fail "the rerun did not skip the finished runs"
  grep -qs '"resumed": true' "$WORK"/out/*/summary.json || fail "no run resumed from a checkpoint"
  "$PY" "$SRC/tests/sweep/compare_csv.py" "$WORK/ref/sweep.csv" "$WORK/out/sweep.csv" || fail "numbers differ"
  # A setting that changes the training is refused, naming each folder and the edit.
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" --set train.max_steps=400 --set train.batch=3 > /dev/null 2> "$WORK/clash.log"
  rc=$?
  [ $rc = 1 ] || fail "a changed batch: exit status $rc, expected 1"
  check_contains "$WORK/clash.log" "these run folders were made with other settings"
  check_contains "$WORK/clash.log" "$WORK/out/cell=gru,seed=1 (now --set train.batch=3, not when it started)"
  check_contains "$WORK/clash.log" "$WORK/out/cell=nbrc,seed=2 (now --set train.batch=3, not when it started)"
  ;;
interrupt)
  # SIGTERM to the driver: the running runs checkpoint and stop, their statuses say so, the exit
  # status is 143; a rerun finishes the sweep.
  small_sweep "$WORK/s.toml" "../cells/gru.cell"
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/out" --set train.max_steps=400 > /dev/null 2> "$WORK/log" &
  driver=$!
  seen=
  for _ in $(seq 15000); do  # up to 5 minutes: a loaded machine is slow to the first checkpoint
    kill -0 $driver 2> /dev/null || break
    ls "$WORK"/out/*/train-train.ckpt > /dev/null 2>&1 && { seen=1; break; }
    sleep 0.02
  done
  [ -n "$seen" ] || fail "no checkpoint appeared (the sweep exited first, or took over 5 minutes): $(cat "$WORK/log")"
  kill -TERM $driver
  wait $driver
  rc=$?
  cat "$WORK/log"
  [ $rc = 143 ] || fail "exit status $rc, expected 143"
  check_contains "$WORK/log" "interrupted: run the same command again to resume"
  grep -qs '"state": "interrupted"' "$WORK"/out/*/sweep-status.json || fail "no run recorded as interrupted"
  ! grep -qs '"state": "running"' "$WORK"/out/*/sweep-status.json || fail "a run is still recorded as running"
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/out" --set train.max_steps=400 > /dev/null 2> "$WORK/rerun" \
    || fail "the rerun failed: $(cat "$WORK/rerun")"
  check_contains "$WORK/rerun" "2 finished, 0 failed"
  ;;
killed)
  # A run killed by SIGKILL (what the kernel's OOM killer sends; the driver never does) is
  # "killed" with the likely reason, in the log, its status and sweep.csv, not a bare
  # "interrupted"; the sweep exits 1 and a rerun resumes it.
  small_sweep "$WORK/s.toml" "../cells/gru.cell"
  "$CELLC" sweep "$WORK/s.toml" --jobs 1 --out "$WORK/out" --set train.max_steps=400 > /dev/null 2> "$WORK/log" &
  driver=$!
  seen=
  for _ in $(seq 15000); do  # up to 5 minutes
    kill -0 $driver 2> /dev/null || break
    ls "$WORK"/out/*/train-train.ckpt > /dev/null 2>&1 && { seen=1; break; }
    sleep 0.02
  done
  [ -n "$seen" ] || fail "no checkpoint appeared: $(cat "$WORK/log")"
  run=$(pgrep -P $driver | head -n 1)
  [ -n "$run" ] || fail "no running run to kill"
  kill -KILL "$run"
  wait $driver
  rc=$?
  cat "$WORK/log"
  [ $rc = 1 ] || fail "exit status $rc, expected 1"
  check_contains "$WORK/log" "killed by SIGKILL (out of memory? the kernel's OOM killer sends it"
  check_contains "$WORK/log" "1 finished, 0 failed, 0 interrupted, 1 killed, 0 not run"
  grep -qs '"state": "killed"' "$WORK"/out/*/sweep-status.json || fail "no run recorded as killed"
  grep -qs '"error": "killed by SIGKILL' "$WORK"/out/*/sweep-status.json || fail "the status does not say why"
  grep -q ',killed,137' "$WORK/out/sweep.csv" || fail "sweep.csv does not say killed: $(cat "$WORK/out/sweep.csv")"
  "$CELLC" sweep "$WORK/s.toml" --jobs 1 --out "$WORK/out" --set train.max_steps=400 > /dev/null 2> "$WORK/rerun" \
    || fail "the rerun failed: $(cat "$WORK/rerun")"
  check_contains "$WORK/rerun" "2 finished, 0 failed"
  ;;
plot_beside)
  # A plot_sweep.py beside the sweep file is run instead of cellc's own (a documented feature:
  # docs/sweeps.md), and the log names it, since it is code; --no-plot runs nothing.
  small_sweep "$WORK/s.toml" "../cells/gru.cell"
  printf '\n[[plot]]\nmetric = "training.best_validation_error"\nx = "experiment.seed"\n' >> "$WORK/s.toml"
  printf 'import sys\nopen(sys.argv[1] + "/plotted-by-beside", "a").write(" ".join(sys.argv[2:]) + "\\n")\n' \
    > "$WORK/plot_sweep.py"
  "$CELLC" sweep "$WORK/s.toml" --no-plot --out "$WORK/np" --set train.max_steps=5 > /dev/null 2> "$WORK/np.log" \
    || fail "the --no-plot sweep failed: $(cat "$WORK/np.log")"
  [ ! -e "$WORK/np/plotted-by-beside" ] || fail "--no-plot ran the script beside the sweep file"
  ! grep -q "figures: running" "$WORK/np.log" || fail "--no-plot says it ran a script"
  if ! /usr/bin/python3 -c "import numpy, matplotlib" 2> /dev/null; then
    echo "skipping the plotting half: /usr/bin/python3 lacks numpy or matplotlib"; exit 0
  fi
  "$CELLC" sweep "$WORK/s.toml" --out "$WORK/out" --set train.max_steps=5 > /dev/null 2> "$WORK/log" \
    || fail "the sweep failed: $(cat "$WORK/log")"
  check_contains "$WORK/log" "figures: running $WORK/plot_sweep.py (a plot_sweep.py beside the sweep file, not cellc's own; --no-plot skips it)"
  grep -q -- "--metric training.best_validation_error --x experiment.seed" "$WORK/out/plotted-by-beside" \
    || fail "the script beside the sweep file did not run with the plot's arguments"
  ;;
replaced_binary)
  # The binary is replaced (a rebuild) and then removed while the sweep runs: every run still
  # starts, with the binary the sweep started with (it used to fail with exit status 127).
  mkdir -p "$WORK/bin" && cp "$CELLC" "$WORK/bin/cellc" || fail "cannot copy $CELLC"
  small_sweep "$WORK/s.toml" "../cells/gru.cell"
  "$WORK/bin/cellc" sweep "$WORK/s.toml" --jobs 1 --out "$WORK/out" --set train.max_steps=200 > /dev/null 2> "$WORK/log" &
  driver=$!
  seen=
  for _ in $(seq 15000); do
    kill -0 $driver 2> /dev/null || break
    ls "$WORK"/out/*/log.txt > /dev/null 2>&1 && { seen=1; break; }
    sleep 0.02
  done
  [ -n "$seen" ] || fail "no run started: $(cat "$WORK/log")"
  cp "$CELLC" "$WORK/bin/cellc.new" && mv -f "$WORK/bin/cellc.new" "$WORK/bin/cellc" && rm -f "$WORK/bin/cellc" \
    || fail "cannot replace the binary"
  wait $driver || fail "the sweep exited $?: $(cat "$WORK/log")"
  check_contains "$WORK/log" "2 finished, 0 failed"
  ;;
example)
  # The example sweep (2 cells x 3 sizes x 2 seeds) with --jobs 2, and its figure.
  "$CELLC" sweep "$SRC/experiments/sweeps/sweep_example.toml" --jobs 2 --out "$WORK/out" > /dev/null 2> "$WORK/log" \
    || fail "the example sweep failed: $(cat "$WORK/log")"
  check_contains "$WORK/log" "12 finished, 0 failed"
  [ "$(grep -c ',finished,0,' "$WORK/out/sweep.csv")" = 12 ] || fail "sweep.csv lacks 12 finished rows"
  head -1 "$WORK/out/sweep.csv" | grep -q "^run,cell.file,task.dim,cell.dims.n_in,cell.dims.n_out,experiment.seed,status,exit_code,.*training.best_validation_error" \
    || fail "sweep.csv header: $(head -1 "$WORK/out/sweep.csv")"
  if "$PY" -c "import numpy, matplotlib" 2> /dev/null; then
    [ -s "$WORK/out/figures/training.best_validation_error_vs_task.dim_by_cell.file.png" ] \
      || fail "no figure: $(ls "$WORK/out/figures" 2>&1)"
  fi
  ;;
mpi)
  # Under mpirun -n 3 (rank 0 hands out runs to two workers): the numbers of --jobs 2.
  small_sweep "$WORK/s.toml" "../cells/gru.cell" "../cells/nbrc.cell"
  "$CELLC" sweep "$WORK/s.toml" --jobs 2 --out "$WORK/jobs" > /dev/null 2> "$WORK/jobs.log" \
    || fail "the --jobs 2 sweep failed: $(cat "$WORK/jobs.log")"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  mpirun --oversubscribe -n 3 "$CELLC" sweep "$WORK/s.toml" --out "$WORK/mpi" > "$WORK/mpi.out" 2> "$WORK/mpi.log" \
    || fail "the MPI sweep failed: $(cat "$WORK/mpi.out" "$WORK/mpi.log")"
  cat "$WORK/mpi.log"
  check_contains "$WORK/mpi.log" "2 MPI workers"
  check_contains "$WORK/mpi.log" "4 finished, 0 failed"
  # Each worker's run gets the node's cores divided by the ranks on it (OMPI_COMM_WORLD_LOCAL_SIZE).
  share=$(( $(nproc) / 3 )); [ $share -ge 1 ] || share=1
  check_contains "$WORK/mpi/cell=gru,seed=1/log.txt" "--set train.threads=$share"
  "$PY" "$SRC/tests/sweep/compare_csv.py" "$WORK/jobs/sweep.csv" "$WORK/mpi/sweep.csv" || fail "numbers differ"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "ok ($CASE)"
