// The JIT against the reference evaluator over a sequence (tests/jit's op tests): both kernels
// unrolled T steps forward and backward on the same data, their outputs, final states and
// gradients brought back to double for comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "pipeline/StepKernel.h"
#include "unroll/Unroll.h"

namespace cellc::jitcheck {

inline std::vector<double> normals(size_t n, std::mt19937& rng, double scale) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

inline double relErr(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / den;
}

template <class T>
inline std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}
template <class T>
std::vector<double> back(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

struct Run {
  std::vector<double> outputs, finalState, dParams, dInputs, dInit;
};

// T steps forward and backward with adjoints w (outputs) and v (final state).
template <class T>
Run unroll(StepKernel<T>& k, const runtime::Sequence<double>& seq64, const std::vector<std::vector<double>>& w,
           const std::vector<double>& v) {
  runtime::Sequence<T> seq;
  seq.batch = seq64.batch;
  seq.params = as<T>(seq64.params);
  seq.initialState = as<T>(seq64.initialState);
  for (const auto& x : seq64.inputs) seq.inputs.push_back(as<T>(x));
  std::vector<std::vector<T>> wT;
  for (const auto& x : w) wT.push_back(as<T>(x));
  runtime::Trajectory<T> traj = runtime::forwardSequence<T>(k, seq);
  runtime::SequenceGradients<T> g = runtime::backwardSequence<T>(k, seq, traj, wT, as<T>(v));
  Run r;
  for (const auto& o : traj.outputs) r.outputs.insert(r.outputs.end(), o.begin(), o.end());
  r.finalState = back(traj.finalState());
  r.dParams = back(g.dParams);
  for (const auto& d : g.dInputs) r.dInputs.insert(r.dInputs.end(), d.begin(), d.end());
  r.dInit = back(g.dInitialState);
  return r;
}

inline void compare(const Run& jit, const Run& ref, double tol) {
  CHECK(relErr(jit.outputs, ref.outputs) <= tol);
  CHECK(relErr(jit.finalState, ref.finalState) <= tol);
  CHECK(relErr(jit.dParams, ref.dParams) <= tol);
  CHECK(relErr(jit.dInputs, ref.dInputs) <= tol);
  CHECK(relErr(jit.dInit, ref.dInit) <= tol);
}

}  // namespace cellc::jitcheck
