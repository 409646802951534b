// The machine's limits, measured in the same run as the points they bound (bench_grid.cpp), so a
// point reads as a fraction of what this machine can do today rather than as a ratio over another
// library (the same ratio over PyTorch moved from 1.85x to 1.34x between two CPUs):
//   - the SGEMM rate of the best BLAS at hand (OpenBLAS, loaded at run time from a path, when
//     given) and of cellc's own GEMM (Eigen): a step at large n and B is bound by GEMM throughput;
//   - the bandwidth of L2, L3 and DRAM (a STREAM triad over arrays sized to each): a step whose
//     tape and states stream through memory (a plastic cell's [B, n, n] trace) is bound by bytes,
//     served from the smallest level that holds its working set (BPTT's states, tapes and outputs
//     and the params; at B = 1 they fit a core's L2, and a DRAM bound was exceeded 2.5-3x).
// A point's bound is the larger of its GEMM time (its matmul FLOPs at the best SGEMM rate) and its
// memory time (bytesPerTrainingStep at its level's bandwidth); the fraction reached is that bound
// over the measured time. Header-only: the benchmarks alone use it.
#pragma once

#include <dlfcn.h>

#include <fstream>
#include <utility>

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

// GB/s of a STREAM triad a = b + s c over 3 arrays of n floats in all, split over `threads`
// threads, each pass over its own slice `passes` times in a row (so a slice that fits a cache is
// timed from that cache); the best of `repeats` such runs, 3 arrays' bytes each pass.
inline double triadGBs(int threads, size_t n, int passes, int repeats = 5) {
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  threads = std::max(1, threads);
  auto run = [&](int times) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
        for (int p = 0; p < times; ++p)
          for (size_t i = lo; i < hi; ++i) a[i] = b[i] + 3.f * c[i];
      });
    for (auto& t : ts) t.join();
  };
  run(1);  // first touch, and the slices into their caches
  using Clock = std::chrono::steady_clock;
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    run(passes);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 3.0 * sizeof(float) * static_cast<double>(n) * passes / s / 1e9);
  }
  return best;
}

// The DRAM bandwidth: 3 arrays of 2^25 floats (384 MB, far beyond the caches).
inline double streamTriadGBs(int threads, int repeats = 5) { return triadGBs(threads, size_t{1} << 25, 1, repeats); }

// The size in bytes of this machine's level-`level` data or unified cache as cpu0 sees it (per
// core for L2, shared for L3 on the machines measured), from sysfs; 0 when unknown.
inline int64_t cacheBytes(int level) {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size)) continue;
    if (l != level || type == "Instruction" || size.empty()) continue;
    int64_t v = std::stoll(size);
    const char unit = size.back();
    return unit == 'K' ? v << 10 : unit == 'M' ? v << 20 : v;
  }
  return 0;
}

// Where a step's bytes come from, and how fast: the smallest level whose capacity (L2 per thread
// times the threads, the shared L3) holds the point's working set (half of it for L2, which also
// holds code, stacks and the GEMM's packed panels); each level's bandwidth a triad over half its
// capacity, measured in the same run.
struct MemoryLevels {
  int64_t l2Bytes = 0, l3Bytes = 0;  // capacities over the threads used
  double l2GBs = 0, l3GBs = 0, dramGBs = 0;
  static MemoryLevels measure(int threads) {
    MemoryLevels m;
    m.l2Bytes = cacheBytes(2) * threads;
    m.l3Bytes = cacheBytes(3);
    auto floatsIn = [](int64_t bytes) { return static_cast<size_t>(bytes / 2 / 3 / sizeof(float)); };
    if (m.l2Bytes > 0) m.l2GBs = triadGBs(threads, floatsIn(m.l2Bytes), 200);
    if (m.l3Bytes > m.l2Bytes) m.l3GBs = triadGBs(threads, floatsIn(m.l3Bytes), 20);
    m.dramGBs = streamTriadGBs(threads);
    return m;
  }
  // The level a working set of `bytes` is served from: its name and bandwidth.
  std::pair<const char*, double> levelFor(double bytes) const {
    if (l2GBs > 0 && bytes <= l2Bytes / 2) return {"L2", l2GBs};
    if (l3GBs > 0 && bytes <= l3Bytes) return {"L3", l3GBs};
    return {"DRAM", dramGBs};
  }
};

// Bytes a training step moves through its level (below): every step's tape, state and output
// written by the forward and read back by the backward, and the params read by the forward and
// the backward and, unless the weight gradients are formed once per segment (train/Bptt.h), their
// gradient updated (read and written).
inline double bytesPerTrainingStep(int64_t steps, int64_t tapePerStep, int64_t statePerStep,
                                   int64_t outputPerStep, int64_t params, size_t elementBytes,
                                   bool gradientsPerSegment = false) {
  const double perStep = 2.0 * static_cast<double>(tapePerStep + statePerStep + outputPerStep) +
                         (gradientsPerSegment ? 2.0 : 4.0) * static_cast<double>(params);
  return static_cast<double>(steps) * perStep * static_cast<double>(elementBytes);
}

}  // namespace cellc::bench
