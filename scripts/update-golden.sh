#!/usr/bin/env bash
# Regenerates tests/golden/grad/*.txt from the current build's `cellc grad`. Review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target cellc
for f in cells/*.cell; do
  build/tools/cellc/cellc grad "$f" > "tests/golden/grad/$(basename "$f" .cell).txt"
done
git diff --stat tests/golden
