#!/usr/bin/env bash
# Builds cellc (Release with debug info) and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --torch   # the PyTorch tests run, never skip
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCELLC_WERROR=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
