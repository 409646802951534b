#!/usr/bin/env bash
# The main job: install dependencies, build cellc, and reproduce experiment E1 (Song, Yang & Wang
# 2016, Figs 2-3) on its quick setting: train a Dale RNN to produce a sequence, edit each
# inhibitory column of its recurrent matrix, measure how the sequence shifts, draw the figures.
# The full setting (pycog's SGD, up to 1e5 steps): cellc run experiments/sequence_shift.toml
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2 --target cellc
cellc=build/tools/cellc/cellc

$cellc check cells/*.cell
run=runs/sequence_shift_quick
$cellc run experiments/sequence_shift.toml --profile quick --out "$run"
echo
/usr/bin/python3 - "$run/summary.json" <<'PY' || true
import json, sys
s = json.load(open(sys.argv[1]))
t = s["training"]
print(f"trained {t['steps']} steps ({t['stop_reason']}), best validation RMSE {t['best_validation_error']:.3g}")
m = s["analyses"]["column_shift"]["measured"]
print(f"column shift: {m['sign_direction']} in {100 * m['sign_consistency']:.0f}% of the edits that move it;"
      f" mean |shift| per column {m['mean_abs_shift_range_ms'][0]:.1f}-{m['mean_abs_shift_range_ms'][1]:.1f} ms")
PY
echo "E1 results: $run/summary.json"
echo "figures:    $(ls "$run"/figures/*.png 2>/dev/null | tr '\n' ' ')"
