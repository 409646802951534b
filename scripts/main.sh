#!/usr/bin/env bash
# The main job: install dependencies, build cellc, and check, print and differentiate every cell.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2 --target cellc
cellc=build/tools/cellc/cellc

$cellc check cells/*.cell
for f in cells/*.cell; do
  echo "=== $f"
  $cellc print "$f"
done
echo "=== the derived backward step of cells/gru.cell"
$cellc grad cells/gru.cell
