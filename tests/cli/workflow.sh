#!/usr/bin/env bash
# The everyday workflow of the command line (issue 32), one case per ctest entry:
#   bash tests/cli/workflow.sh CELLC SOURCE_DIR BUILD_DIR CASE
# d_refused  run and sweep refuse -D (exit 2, naming --set cell.dims) instead of ignoring it
# version    cellc --version names the version and the commit
# fresh      a changed setting is refused; --fresh moves the old folder aside (never deletes it)
# install    cmake --install puts the command, the cells and the experiments under a prefix
# file_size_limit  past ulimit -f, a run says which file and why (EFBIG) and keeps what it wrote
set -uo pipefail
cellc=$1 src=$2 build=$3 case=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL ($case): $*"; exit 1; }
tiny=$src/tests/fixtures/experiments/tiny.toml

case $case in
d_refused)
  "$cellc" run "$tiny" -D n=8 --out "$tmp/r" > "$tmp/out" 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "run -D: exit $rc, expected 2"
  grep -q -- "--set cell.dims.NAME=VALUE" "$tmp/out" || fail "run -D: no hint of --set: $(cat "$tmp/out")"
  [ ! -e "$tmp/r" ] || fail "run -D made a run folder"
  "$cellc" sweep "$src/experiments/sweeps/sweep_example.toml" -Dn=8 --dry-run > "$tmp/out" 2>&1; rc=$?
  [ $rc -eq 2 ] || fail "sweep -D: exit $rc, expected 2"
  "$cellc" check -D n=8 "$src/cells/gru.cell" > /dev/null 2>&1 || fail "check -D n=8 no longer works"
  ;;
version)
  out=$("$cellc" --version) || fail "--version exit $?"
  [[ $out =~ ^cellc\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ [0-9a-f]+|unknown\) ]] || fail "--version printed '$out'"
  ;;
fresh)
  run() { "$cellc" run "$tiny" --no-plot --out "$tmp/run" "$@" > "$tmp/log" 2>&1; }
  run --set train.max_steps=3 || fail "first run: $(tail -3 "$tmp/log")"
  run --set train.max_steps=3 --set train.learning_rate=0.5; rc=$?
  [ $rc -eq 1 ] || fail "a changed learning rate was not refused (exit $rc)"
  grep -q "learning_rate" "$tmp/log" || fail "the refusal does not name the key: $(tail -2 "$tmp/log")"
  cp "$tmp/run/summary.json" "$tmp/first.json"
  run --set train.max_steps=3 --set train.learning_rate=0.5 --fresh || fail "--fresh: $(tail -3 "$tmp/log")"
  grep -q "now $tmp/run.old-1" "$tmp/log" || fail "--fresh did not say where the old folder went"
  cmp -s "$tmp/first.json" "$tmp/run.old-1/summary.json" || fail "the old run's summary was not kept"
  grep -q "learning_rate = 0.5" "$tmp/run/experiment.toml" || fail "the new run is not the new experiment"
  run --set train.max_steps=3 --fresh || fail "second --fresh"
  [ -d "$tmp/run.old-2" ] && [ -d "$tmp/run.old-1" ] || fail "a second --fresh overwrote the first old folder"
  ;;
install)
  cmake --install "$build" --prefix "$tmp/p" > "$tmp/log" 2>&1 || fail "cmake --install: $(tail -3 "$tmp/log")"
  "$tmp/p/bin/cellc" --version > /dev/null || fail "the installed cellc does not run"
  [ -f "$tmp/p/share/cellc/cells/gru.cell" ] || fail "no cells installed"
  [ -f "$tmp/p/share/cellc/experiments/copy_first.toml" ] && [ -f "$tmp/p/share/cellc/experiments/plot.py" ] \
    || fail "no experiments installed"
  "$tmp/p/bin/cellc" check "$tmp/p/share/cellc/cells/"*.cell > /dev/null || fail "an installed cell does not check"
  # The Python package: importable from the prefix alone (not the source tree), and it works.
  if ls "$build"/python/cellc/_cellc*.so > /dev/null 2>&1; then  # (built only with python3-dev and pybind11)
    site=$(ls -d "$tmp"/p/lib/python3*/dist-packages 2>/dev/null | head -1)
    [ -n "$site" ] && ls "$site"/cellc/_cellc*.so > /dev/null 2>&1 && [ -f "$site/cellc/__init__.py" ] \
      || fail "no Python package installed under $tmp/p/lib: $(ls -R "$tmp/p/lib" 2>&1 | head -5)"
    (cd "$tmp" && env -u PYTHONPATH PYTHONPATH="$site" /usr/bin/python3 -c "
import cellc, numpy as np
assert cellc.__file__.startswith('$site'), cellc.__file__
cell = cellc.compile('$tmp/p/share/cellc/cells/gru.cell', dims={'n': 4})
outs, final = cell.unroll(cell.init_params(0), x=np.ones((3, 2, 1), np.float32))
assert outs['y'].shape == (3, 2, 1) and np.isfinite(outs['y']).all()
") > "$tmp/log" 2>&1 || fail "the installed Python package does not work: $(tail -3 "$tmp/log")"
  fi
  ;;
file_size_limit)
  # Past ulimit -f the write fails (EFBIG) instead of SIGXFSZ killing cellc unheard (exit 153):
  # the error names the file and the OS reason, exit 1, and what was written stays. The
  # checkpoint (33 kB) is the first file past 32 kB.
  ( ulimit -f 32; exec "$cellc" run "$tiny" --no-plot --out "$tmp/run" --set train.max_steps=20 ) > "$tmp/log" 2>&1
  rc=$?
  [ $rc -eq 1 ] || fail "exit $rc, expected 1 (153: killed by SIGXFSZ): $(tail -3 "$tmp/log")"
  grep -q "$tmp/run/train-train.ckpt" "$tmp/log" || fail "the error does not name the file: $(tail -3 "$tmp/log")"
  grep -q "File too large" "$tmp/log" || fail "the error does not give the OS reason: $(tail -3 "$tmp/log")"
  [ -s "$tmp/run/experiment.toml" ] && [ -s "$tmp/run/cell.cell" ] || fail "the files written before were not kept"
  ! ls "$tmp/run/"*.tmp.* > /dev/null 2>&1 || fail "a temp file was left: $(ls "$tmp/run")"
  ;;
*) echo "unknown case $case"; exit 2 ;;
esac
echo "ok ($case)"
