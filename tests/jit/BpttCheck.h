// Helpers shared by the BPTT and JIT tests (test_hoist.cpp, test_segment_gemm.cpp, test_batch_shards.cpp, ...):
// cells from the source tree, random batches and noise, the relative error of two gradients, and
// directional finite differences of a sequence loss in double precision.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "jit/Jit.h"
#include "sema/Program.h"
#include "train/Bptt.h"

namespace cellc::bpttcheck {

using runtime::Bptt;
using runtime::TrialBatch;

// A .cell file of the source tree (a path from its root), loaded with overrides and lowered.
inline StepIR lowerSource(const std::string& path, const Overrides& o) {
  std::string err;
  SourceFile f = SourceFile::load(std::string(CELLC_SOURCE_DIR) + "/" + path, &err);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, o, d);
  REQUIRE(p);
  return lower(*p);
}

inline std::vector<double> randomVec(size_t n, std::mt19937_64& rng, double scale) {
  std::normal_distribution<double> d(0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

inline double relErr(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / den;
}

inline TrialBatch randomBatch(const ir::Layout& L, int64_t B, int64_t T, std::mt19937_64& rng) {
  TrialBatch b;
  b.batch = B, b.steps = T;
  for (int64_t t = 0; t < T; ++t) {
    b.inputs.push_back(randomVec(L.inputSize * B, rng, 1.0));
    b.targets.push_back(randomVec(L.outputs[0].size * B, rng, 1.0));
  }
  return b;
}

inline std::vector<std::vector<double>> randomNoise(const ir::Layout& L, int64_t B, int64_t T, std::mt19937_64& rng) {
  if (L.noiseSize == 0) return {};
  std::vector<std::vector<double>> nz;
  for (int64_t t = 0; t < T; ++t) nz.push_back(randomVec(L.noiseSize * B, rng, 1.0));
  return nz;
}

// Directional finite differences of the sequence loss, in double, over a sweep of step sizes.
inline void checkFiniteDifferences(Bptt<double>& bptt, const std::vector<double>& params, const TrialBatch& b,
                            const std::vector<std::vector<double>>& noise, const std::vector<double>& grad,
                            std::mt19937_64& rng) {
  for (int dir = 0; dir < 3; ++dir) {
    std::vector<double> v = randomVec(params.size(), rng, 1.0);
    double ad = 0;
    for (size_t i = 0; i < v.size(); ++i) ad += grad[i] * v[i];
    double best = INFINITY;
    for (double h : {1e-3, 1e-4, 1e-5, 1e-6}) {
      std::vector<double> pp = params, pm = params;
      for (size_t i = 0; i < v.size(); ++i) pp[i] += h * v[i], pm[i] -= h * v[i];
      double fd = (bptt.lossAndGradient(pp, b, {}, noise, {}).loss -
                   bptt.lossAndGradient(pm, b, {}, noise, {}).loss) / (2 * h);
      best = std::min(best, std::fabs(fd - ad) / std::max({1e-8, std::fabs(fd), std::fabs(ad)}));
    }
    INFO("direction " << dir << ", directional derivative " << ad);
    CHECK(best <= 1e-6);
  }
}

// The JIT's BPTT against the evaluator's, of the staged step (hoisted, deferred) and of the plain
// one: the same outputs, loss and gradient to 1e-12; and the JIT's gradient against finite
// differences.
inline void checkAgainstEvaluators(Bptt<double>& viaJit, Bptt<double>& viaStaged,
                                   Bptt<double>& viaPlain, const std::vector<double>& params,
                                   const TrialBatch& b, const std::vector<std::vector<double>>& noise,
                                   std::mt19937_64& rng) {
  auto rj = viaJit.lossAndGradient(params, b, {}, noise, {}, true);
  auto rs = viaStaged.lossAndGradient(params, b, {}, noise, {}, true);
  auto rp = viaPlain.lossAndGradient(params, b, {}, noise, {}, true);
  for (int64_t t = 0; t < b.steps; ++t) {
    CHECK(relErr(rj.outputs[t], rs.outputs[t]) <= 1e-12);
    CHECK(relErr(rs.outputs[t], rp.outputs[t]) <= 1e-12);
  }
  CHECK(rj.loss == Approx(rs.loss).epsilon(1e-12));
  CHECK(relErr(rj.dParams, rs.dParams) <= 1e-12);
  CHECK(relErr(rs.dParams, rp.dParams) <= 1e-12);
  checkFiniteDifferences(viaJit, params, b, noise, rj.dParams, rng);
}

}  // namespace cellc::bpttcheck
