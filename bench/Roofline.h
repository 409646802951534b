// The machine's limits, measured in the same run as the points they bound (bench_grid.cpp), so a
// point reads as a fraction of what this machine can do today rather than as a ratio over another
// library (the same ratio over PyTorch moved from 1.85x to 1.34x between two CPUs):
//   - the SGEMM rate of the best BLAS at hand (OpenBLAS, loaded at run time from a path, when
//     given) and of cellc's own GEMM (Eigen): a step at large n and B is bound by GEMM throughput;
//   - the DRAM bandwidth (a STREAM triad over 3 arrays far larger than the caches): a step whose
//     tape and states stream through memory (a plastic cell's [B, n, n] trace) is bound by bytes.
// A point's bound is the larger of its GEMM time (its matmul FLOPs at the best SGEMM rate) and its
// memory time (bytesPerTrainingStep at the triad bandwidth); the fraction reached is that bound
// over the measured time. Header-only: the benchmarks alone use it.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace cellc::bench {

// GFLOP/s of cblas_sgemm (1024^3, row major, no transposes) from the library at `path` on
// `threads` threads (openblas_set_num_threads); 0 when it cannot be loaded.
inline double blasSgemmGflops(const std::string& path, int threads, double minSeconds = 0.5) {
  if (path.empty()) return 0;
  // RTLD_DEEPBIND: the library binds its own symbols first. Without it, where the system LAPACK is
  // OpenBLAS (scripts/setup.sh), this second OpenBLAS resolved its internals to the first one and
  // its threaded SGEMM divided by zero (SIGFPE).
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!lib) return 0;
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                         float*, int);
  using SetThreads = void (*)(int);
  auto sgemm = reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm"));
  auto set = reinterpret_cast<SetThreads>(dlsym(lib, "openblas_set_num_threads"));
  if (!sgemm) return 0;
  if (set) set(threads);
  const int n = 1024, kRowMajor = 101, kNoTrans = 111;
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  sgemm(kRowMajor, kNoTrans, kNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
  using Clock = std::chrono::steady_clock;
  int reps = 0;
  const auto t0 = Clock::now();
  double s = 0;
  while ((s = std::chrono::duration<double>(Clock::now() - t0).count()) < minSeconds || reps < 2) {
    sgemm(kRowMajor, kNoTrans, kNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    ++reps;
  }
  return 2.0 * n * n * n * reps / s / 1e9;  // the library stays loaded: unloading OpenBLAS is unsafe
}

// GB/s of a STREAM triad a = b + s c over 3 arrays of 2^25 floats (384 MB, far beyond the caches),
// split over `threads` threads; the best of `repeats` passes, 3 arrays' bytes each.
inline double streamTriadGBs(int threads, int repeats = 5) {
  const size_t n = size_t{1} << 25;
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  threads = std::max(1, threads);
  auto pass = [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        for (size_t i = lo; i < hi; ++i) a[i] = b[i] + 3.f * c[i];
      });
    for (auto& t : ts) t.join();
  };
  pass();  // first touch
  using Clock = std::chrono::steady_clock;
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    pass();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 3.0 * sizeof(float) * static_cast<double>(n) / s / 1e9);
  }
  return best;
}

// Bytes a training step moves if nothing stays in cache, a lower bound on its DRAM traffic: every
// step's tape, state and output written by the forward and read back by the backward, and the
// params read by the forward and the backward and their gradient updated (read and written).
inline double bytesPerTrainingStep(int64_t steps, int64_t tapePerStep, int64_t statePerStep,
                                   int64_t outputPerStep, int64_t params, size_t elementBytes) {
  const double perStep = 2.0 * static_cast<double>(tapePerStep + statePerStep + outputPerStep) +
                         4.0 * static_cast<double>(params);
  return static_cast<double>(steps) * perStep * static_cast<double>(elementBytes);
}

}  // namespace cellc::bench
