// Which kernel is fastest for the products a training step makes (issue 34, item 4): cellc's own
// GEMM (Eigen, split by hand; blas/Gemm.cpp), its product over a W packed once per sequence
// (blas/PackedGemm.h), and a BLAS loaded at run time (OpenBLAS: --blas PATH), at the shapes of a
// step of width n and batch B:
//   forward    Y[B, n] = X[B, n] W^T   (W [n, n] row-major; cellc packs it once per sequence)
//   backward   dX[B, n] = dY[B, n] W
//   gradient   dW[n, n] += dY^T[n, B] X[B, n]
// and the square 1024^3 product the roofline's SGEMM rate is measured on (bench/Roofline.h).
// GFLOP/s, the best of --repeats windows of --min-time seconds each, on --threads threads.
//   cellc_bench_gemm_shapes --blas /path/libopenblas.so.0 [--threads 2] [--n 256,1024] [--batch 16,64]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "blas/GemmEntries.h"
#include "blas/PackedGemm.h"
#include "blas/Threads.h"

namespace {

using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                       float*, int);

template <class F>
double gflops(double flops, double minSeconds, int repeats, F&& f) {
  using Clock = std::chrono::steady_clock;
  f();  // warm up
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    int reps = 0;
    const auto t0 = Clock::now();
    double s = 0;
    while ((s = std::chrono::duration<double>(Clock::now() - t0).count()) < minSeconds || reps < 3) {
      f();
      ++reps;
    }
    best = std::max(best, flops * reps / s / 1e9);
  }
  return best;
}

std::vector<int> ints(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(std::stoi(x));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string blas, ns = "256,1024", batches = "16,64";
  int threads = 0, repeats = 3;
  double minSeconds = 0.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--blas") blas = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--n") ns = v;
    else if (k == "--batch") batches = v;
    else if (k == "--repeats") repeats = std::stoi(v);
    else if (k == "--min-time") minSeconds = std::stod(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  cellc::setThreads(threads);
  const int used = threads > 0 ? threads : cellc::threads();
  Sgemm sgemm = nullptr;
  if (!blas.empty()) {
    // RTLD_DEEPBIND: see bench/Roofline.h (a second OpenBLAS beside the system's).
    void* lib = dlopen(blas.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) {
      std::fprintf(stderr, "cannot load %s: %s\n", blas.c_str(), dlerror());
      return 1;
    }
    sgemm = reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm"));
    if (auto set = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"))) set(used);
  }
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  std::printf("GFLOP/s on %d thread(s); BLAS: %s\n\n", used, blas.empty() ? "none" : blas.c_str());
  std::printf("| n | B | forward: cellc | cellc, W packed | BLAS | backward: cellc | BLAS | gradient: cellc | BLAS |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int n : ints(ns))
    for (int B : ints(batches)) {
      std::vector<float> X(static_cast<size_t>(B) * n), W(static_cast<size_t>(n) * n), C(X.size()),
          G(W.size()), region(static_cast<size_t>(cellc::packedRegionSize(n, n)));
      for (float& v : X) v = u(rng);
      for (float& v : W) v = u(rng);
      cellc::packOperand(true, n, n, W.data(), n, region.data());
      const double f = 2.0 * B * n * n;
      auto run = [&](auto&& fn) { return gflops(f, minSeconds, repeats, fn); };
      const double fwd = run([&] { cellc_gemm_f32(0, 1, B, n, n, X.data(), n, W.data(), n, 0, C.data(), n); });
      const double fwdPacked = run([&] {
        cellc_gemm_packed_f32(0, 1, B, n, n, X.data(), n, W.data(), n, 0, C.data(), n, region.data());
      });
      const double bwd = run([&] { cellc_gemm_f32(0, 0, B, n, n, X.data(), n, W.data(), n, 0, C.data(), n); });
      const double grad = run([&] { cellc_gemm_f32(1, 0, n, n, B, X.data(), n, X.data(), n, 1, G.data(), n); });
      double fwdB = 0, bwdB = 0, gradB = 0;
      if (sgemm) {
        fwdB = run([&] { sgemm(kRowMajor, kNoTrans, kTrans, B, n, n, 1, X.data(), n, W.data(), n, 0, C.data(), n); });
        bwdB = run([&] { sgemm(kRowMajor, kNoTrans, kNoTrans, B, n, n, 1, X.data(), n, W.data(), n, 0, C.data(), n); });
        gradB = run([&] { sgemm(kRowMajor, kTrans, kNoTrans, n, n, B, 1, X.data(), n, X.data(), n, 1, G.data(), n); });
      }
      std::printf("| %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", n, B, fwd, fwdPacked, fwdB, bwd,
                  bwdB, grad, gradB);
    }
  const int n = 1024;
  std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  const double f = 2.0 * n * n * n;
  const double own = gflops(f, minSeconds, repeats, [&] {
    cellc_gemm_f32(0, 0, n, n, n, a.data(), n, b.data(), n, 0, c.data(), n);
  });
  const double lib = sgemm ? gflops(f, minSeconds, repeats, [&] {
    sgemm(kRowMajor, kNoTrans, kNoTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n);
  }) : 0;
  std::printf("\nsquare 1024^3: cellc %.0f, BLAS %.0f GFLOP/s\n", own, lib);
  return 0;
}
