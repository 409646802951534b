#!/usr/bin/env bash
# Benchmarks: builds cellc_bench in a Release build (build-release/), runs it and prints markdown
# tables: generated GRU vs the hand-written Eigen GRU, the generated Dale RNN, and compile times.
#
#   bash scripts/bench.sh                                      # the full run (~1-2 min)
#   bash scripts/bench.sh --benchmark_filter='BM_Compile'      # extra args go to the benchmark
#
# Google Benchmark 1.7 (Debian 12) takes --benchmark_min_time as a plain number of seconds
# (`0.2`, not `0.2s` or `100x`, which are 1.8 syntax). Later flags override earlier ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=build-release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCELLC_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target cellc_bench

out="$build/bench.json"
"$build/bench/cellc_bench" \
  --benchmark_min_time=0.2 \
  --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true \
  --benchmark_out_format=json --benchmark_out="$out" \
  "$@"
echo
/usr/bin/python3 bench/table.py "$out"
