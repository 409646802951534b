#!/usr/bin/env bash
# cellc vs PyTorch on the same training step (forward over T = 100 with a readout every step, MSE,
# backward, Adam, float32), one run of both sides, then the table (bench/compare.py).
#
#   bash scripts/bench_grid.sh                       # the full grid: 5 cells x n {32,100,256,1024} x B {1,16,64}
#   bash scripts/bench_grid.sh --cells gru,pbrc --n 100,256 --batch 64   # a subset
#
# Options (passed to both sides): --cells, --n, --batch, --steps, --min-time (seconds per timing
# window), --repeats (windows per point; the fastest counts).
# BUILD=dir picks the build folder (default build-release, a Release build made here).
#
# PyTorch is Debian's python3-torch, which links libblas.so.3: the reference BLAS, ~17x slower,
# unless OpenBLAS comes first. This script unpacks libopenblas0-pthread into the build folder
# (apt-get download + dpkg -x: the system stays untouched) and puts it on LD_LIBRARY_PATH for the
# baseline process only; the baseline prints the BLAS it loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-release}
args=("$@")

if [ ! -x "$build/bench/cellc_bench_grid" ] || [ -z "${BUILD:-}" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCELLC_BENCH=ON >/dev/null
  cmake --build "$build" -j2 --target cellc_bench_grid
fi

if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench_grid: PyTorch is missing: apt-get install python3-torch" >&2
  exit 1
fi
blas_dir="$PWD/$build/openblas"
if [ ! -d "$blas_dir/usr/lib/x86_64-linux-gnu/openblas-pthread" ]; then
  mkdir -p "$blas_dir"
  (cd "$blas_dir" && apt-get download libopenblas0-pthread >/dev/null && dpkg -x libopenblas0-pthread_*.deb .)
fi
openblas="$blas_dir/usr/lib/x86_64-linux-gnu/openblas-pthread"

echo "== cellc" >&2
"$build/bench/cellc_bench_grid" --out "$build/grid-cellc.json" --blas "$openblas/libopenblas.so.0" "${args[@]}"
echo "== PyTorch" >&2
LD_LIBRARY_PATH="$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  /usr/bin/python3 bench/torch_baseline.py --out "$build/grid-torch.json" "${args[@]}"
echo
/usr/bin/python3 bench/compare.py "$build/grid-cellc.json" "$build/grid-torch.json"
