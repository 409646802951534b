// Helpers shared by the compiler tests: lowering .cell text, random sequences, and the
// finite-difference check of a directional derivative.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "eval/Evaluate.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"
#include "unroll/Unroll.h"

namespace cellc::testing {

// Parses, checks and lowers .cell text; throws with the rendered diagnostics when it has errors.
inline StepIR lowerText(const std::string& path, const std::string& text,
                        const Overrides& overrides = {}) {
  SourceFile file(path, text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, overrides, diags);
  if (!prog) {
    std::ostringstream os;
    diags.render(os, file);
    throw std::runtime_error("cannot load " + path + ":\n" + os.str());
  }
  return lower(*prog);
}

inline StepIR lowerFile(const std::string& path, const Overrides& overrides = {}) {
  std::string error;
  SourceFile file = SourceFile::load(path, &error);
  if (!error.empty()) throw std::runtime_error(error);
  return lowerText(path, file.text(), overrides);
}

inline std::vector<double> randn(std::mt19937& rng, int64_t n, double stddev = 1.0) {
  std::normal_distribution<double> d(0.0, stddev);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = d(rng);
  return v;
}

// A random direction of norm 1 (empty for n == 0).
inline std::vector<double> randomUnit(std::mt19937& rng, int64_t n) {
  std::vector<double> v = randn(rng, n);
  double s = 0;
  for (double x : v) s += x * x;
  s = std::sqrt(s);
  for (double& x : v) x /= s;
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::logic_error("dot of different sizes");
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(std::vector<double>& y, double a, const std::vector<double>& x) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += a * x[i];
}

// Random params (normal; scalars with their own spread), initial state, inputs and noise.
inline runtime::Sequence<double> randomSequence(const ir::Layout& L, int64_t batch, int64_t steps,
                                                std::mt19937& rng, double paramStd = 0.3,
                                                double scalarParamStd = 0.1,
                                                double stateStd = 0.3, double inputStd = 1.0) {
  runtime::Sequence<double> s;
  s.batch = batch;
  s.params.assign(static_cast<size_t>(L.paramSize), 0.0);
  for (const ir::Slot& p : L.params) {
    std::vector<double> v = randn(rng, p.size, p.shape.rank() == 0 ? scalarParamStd : paramStd);
    std::copy(v.begin(), v.end(), s.params.begin() + p.offset);
  }
  s.initialState = randn(rng, L.stateSize * batch, stateStd);
  for (int64_t t = 0; t < steps; ++t) {
    s.inputs.push_back(randn(rng, L.inputSize * batch, inputStd));
    s.noise.push_back(randn(rng, L.noiseSize * batch, 1.0));
  }
  return s;
}

// The test loss L = sum_t <w_t, output_t> + <v, final state>, with its adjoints w_t and v.
struct LinearLoss {
  std::vector<std::vector<double>> w;  // [T][outputSize * B]
  std::vector<double> v;               // [stateSize * B]

  static LinearLoss random(const ir::Layout& L, int64_t batch, int64_t steps, std::mt19937& rng) {
    LinearLoss loss;
    for (int64_t t = 0; t < steps; ++t) loss.w.push_back(randn(rng, L.outputSize * batch));
    loss.v = randn(rng, L.stateSize * batch);
    return loss;
  }

  double operator()(const runtime::Trajectory<double>& tr) const {
    double s = dot(v, tr.finalState());
    for (size_t t = 0; t < w.size(); ++t) s += dot(w[t], tr.outputs[t]);
    return s;
  }
};

struct FdResult {
  double ad = 0, fd = 0, err = std::numeric_limits<double>::infinity(), h = 0;
  std::string str() const {
    std::ostringstream os;
    os.precision(12);
    os << "ad " << ad << "  fd " << fd << "  rel.err " << err << " (best h " << h << ")";
    return os.str();
  }
};

inline double relErr(double fd, double ad) {
  return std::fabs(fd - ad) / std::max({1.0, std::fabs(fd), std::fabs(ad)});
}

inline constexpr double kFdTolerance = 1e-6;

// Compares `ad`, a directional derivative from autodiff, with central differences
// (f(h) - f(-h)) / 2h of f(eps) = loss at the point moved eps along the direction, for h in
// {1e-3, 1e-4, 1e-5, 1e-6}; keeps the best agreement.
inline FdResult compareWithFd(double ad, const std::function<double(double)>& f) {
  FdResult best;
  best.ad = ad;
  for (double h : {1e-3, 1e-4, 1e-5, 1e-6}) {
    double fd = (f(h) - f(-h)) / (2 * h);
    double e = relErr(fd, ad);
    if (!(e >= best.err)) {  // also takes the first NaN, so that it shows
      best.err = e, best.fd = fd, best.h = h;
    }
  }
  return best;
}

}  // namespace cellc::testing
