// The backward of every cell in cells/ against central finite differences, in double, through the
// reference evaluator: over a whole sequence (BPTT, T = 20) and for one step, root by root.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "GradCheck.h"

using namespace cellc;
using namespace cellc::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> cellFiles() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(CELLC_SOURCE_DIR) / "cells"))
    if (e.path().extension() == ".cell") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Cells that spike (heaviside): their gradient is a surrogate, not the derivative, so finite
// differences do not check it; tests/compiler/test_spikes.cpp checks it against the surrogate rule
// written out by hand, and differences for the params that do not pass through the spikes.
const std::vector<std::string> kSurrogateCells = {"lif"};

bool isSurrogateCell(const std::string& path) {
  const std::string name = fs::path(path).stem().string();
  return std::find(kSurrogateCells.begin(), kSurrogateCells.end(), name) != kSurrogateCells.end();
}

// The cells whose gradient is their derivative.
std::vector<std::string> fdCellFiles() {
  std::vector<std::string> files;
  for (const std::string& f : cellFiles())
    if (!isSurrogateCell(f)) files.push_back(f);
  return files;
}

// Small sizes for the dims a cell has: n = 6 (or k = 3 where n = 2k), n_in = 2, n_out = 3.
Overrides smallDims(const std::string& path) {
  std::string error;
  SourceFile file = SourceFile::load(path, &error);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog) throw std::runtime_error("cannot load " + path);
  Overrides ov;
  auto has = [&](const char* name) {
    const Symbol* s = prog->find(name);
    return s && s->kind == SymKind::Dim;
  };
  if (has("k")) ov["k"] = 3;
  else if (has("n")) ov["n"] = 6;
  if (has("n_in")) ov["n_in"] = 2;
  if (has("n_out")) ov["n_out"] = 3;
  return ov;
}

// A stable per-cell seed (std::hash is not stable across library versions).
uint32_t seedOf(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

}  // namespace

TEST_CASE("the cells directory has cells", "[gradients]") { CHECK(cellFiles().size() >= 8); }

TEST_CASE("the finite-difference check sees a gradient off by 1e-5", "[gradients]") {
  // f(x) = sin(3 x) e^x at x = 0.4 along one direction.
  auto f = [](double eps) { double x = 0.4 + eps; return std::sin(3 * x) * std::exp(x); };
  double exact = (3 * std::cos(1.2) + std::sin(1.2)) * std::exp(0.4);
  CHECK(compareWithFd(exact, f).err <= 1e-9);
  CHECK(compareWithFd(exact * (1 + 1e-5), f).err > kFdTolerance);
  CHECK(compareWithFd(exact + 5e-6, f).err > kFdTolerance);  // relative to |f'| = 3
  CHECK(!(compareWithFd(std::nan(""), f).err <= kFdTolerance));
}

TEST_CASE("only the listed surrogate cells use heaviside", "[gradients]") {
  // A new spiking cell must be listed (and get its surrogate test), not pass through FD by luck.
  for (const std::string& path : cellFiles()) {
    StepIR ir = lowerFile(path, smallDims(path));
    bool spikes = false;
    for (const ir::Node& n : ir.g.nodes()) spikes = spikes || n.op == ir::Op::Heaviside;
    INFO(path);
    CHECK(spikes == isSurrogateCell(path));
  }
}

TEST_CASE("BPTT gradients of every cell match finite differences", "[gradients][bptt]") {
  const std::string path = GENERATE(from_range(fdCellFiles()));
  const std::string name = stem(path);
  INFO("cell " << name);
  StepIR ir = lowerFile(path, smallDims(path));
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  const int64_t B = 3, T = 20;
  std::mt19937 rng(seedOf(name));
  runtime::Sequence<double> seq = randomSequence(L, B, T, rng);
  LinearLoss loss = LinearLoss::random(L, B, T, rng);

  auto traj = runtime::forwardSequence<double>(ev, seq);
  const double L0 = loss(traj);
  INFO("loss " << L0);
  REQUIRE(std::isfinite(L0));
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);

  auto lossOf = [&](const runtime::Sequence<double>& s) {
    return loss(runtime::forwardSequence<double>(ev, s));
  };

  for (int dir = 0; dir < 3; ++dir) {
    INFO("direction " << dir);
    {  // params
      std::vector<double> d = randomUnit(rng, L.paramSize);
      FdResult r = compareWithFd(dot(grads.dParams, d), [&](double eps) {
        runtime::Sequence<double> s = seq;
        axpy(s.params, eps, d);
        return lossOf(s);
      });
      INFO("params: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
    if (L.inputSize > 0) {  // inputs of every step
      std::vector<std::vector<double>> d;
      double ad = 0;
      std::vector<double> flat = randomUnit(rng, T * L.inputSize * B);
      for (int64_t t = 0; t < T; ++t) {
        d.emplace_back(flat.begin() + t * L.inputSize * B, flat.begin() + (t + 1) * L.inputSize * B);
        ad += dot(grads.dInputs[t], d.back());
      }
      FdResult r = compareWithFd(ad, [&](double eps) {
        runtime::Sequence<double> s = seq;
        for (int64_t t = 0; t < T; ++t) axpy(s.inputs[t], eps, d[t]);
        return lossOf(s);
      });
      INFO("inputs: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
    {  // initial state
      std::vector<double> d = randomUnit(rng, L.stateSize * B);
      FdResult r = compareWithFd(dot(grads.dInitialState, d), [&](double eps) {
        runtime::Sequence<double> s = seq;
        axpy(s.initialState, eps, d);
        return lossOf(s);
      });
      INFO("initial state: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
  }
}

// One step, one root at a time (each state' and each output): the loss <w, root> with the
// adjoint w in that root's slot only, checked along a random direction inside each param, state
// and input slot, so a failure names the root and the slot.
TEST_CASE("one-step gradients of every cell, root by root, match finite differences",
          "[gradients][step]") {
  const std::string path = GENERATE(from_range(fdCellFiles()));
  const std::string name = stem(path);
  INFO("cell " << name);
  StepIR ir = lowerFile(path, smallDims(path));
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  const int64_t B = 3;
  std::mt19937 rng(seedOf(name) ^ 0x5eed);
  runtime::Sequence<double> seq = randomSequence(L, B, 1, rng);
  const std::vector<double>& params = seq.params;
  const std::vector<double>& state = seq.initialState;
  const std::vector<double>& input = seq.inputs[0];
  const std::vector<double>& noise = seq.noise[0];

  struct Root {
    std::string name;
    bool isState;
    const ir::Slot* slot;
  };
  std::vector<Root> roots;
  for (const ir::Slot& s : L.states) roots.push_back({s.name + "'", true, &s});
  for (const ir::Slot& s : L.outputs) roots.push_back({"output " + s.name, false, &s});

  for (const Root& root : roots) {
    INFO("root " << root.name);
    std::vector<double> dNext(L.stateSize * B, 0.0), dOut(L.outputSize * B, 0.0);
    std::vector<double>& adj = root.isState ? dNext : dOut;
    std::vector<double> w = randn(rng, root.slot->size * B);
    std::copy(w.begin(), w.end(), adj.begin() + B * root.slot->offset);

    auto lossAt = [&](const std::vector<double>& p, const std::vector<double>& s,
                      const std::vector<double>& x) {
      std::vector<double> next(L.stateSize * B), out(L.outputSize * B);
      ev.run(Stage::Forward, {.params = p.data(),
                              .state = s.data(),
                              .input = x.data(),
                              .noise = noise.data(),
                              .stateNext = next.data(),
                              .output = out.data(),
                              .batch = B});
      return dot(dNext, next) + dot(dOut, out);
    };
    std::vector<double> dState(L.stateSize * B), dInput(L.inputSize * B), dParams(L.paramSize, 0.0);
    ev.run(Stage::Backward, {.params = params.data(),
                             .state = state.data(),
                             .input = input.data(),
                             .noise = noise.data(),
                             .dStateNext = dNext.data(),
                             .dOutput = dOut.data(),
                             .dState = dState.data(),
                             .dInput = dInput.data(),
                             .dParams = dParams.data(),
                             .batch = B});

    // One random direction inside one slot of one role; `which` 0 params, 1 state, 2 input.
    auto check = [&](int which, const ir::Slot& slot) {
      const std::vector<double>& base = which == 0 ? params : which == 1 ? state : input;
      const std::vector<double>& grad = which == 0 ? dParams : which == 1 ? dState : dInput;
      int64_t off = which == 0 ? slot.offset : B * slot.offset;
      int64_t len = which == 0 ? slot.size : B * slot.size;
      std::vector<double> d(base.size(), 0.0);
      std::vector<double> u = randomUnit(rng, len);
      std::copy(u.begin(), u.end(), d.begin() + off);
      FdResult r = compareWithFd(dot(grad, d), [&](double eps) {
        std::vector<double> p = params, s = state, x = input;
        axpy(which == 0 ? p : which == 1 ? s : x, eps, d);
        return lossAt(p, s, x);
      });
      INFO((which == 0 ? "param " : which == 1 ? "state " : "input ") << slot.name << ": " << r.str());
      CHECK(r.err <= kFdTolerance);
    };
    for (const ir::Slot& s : L.params) check(0, s);
    for (const ir::Slot& s : L.states) check(1, s);
    for (const ir::Slot& s : L.inputs) check(2, s);
  }
}

// ---- Edge points of the derivative rules, one small cell each ------------------------------------

namespace {

// One step of a cell at the given params and state (batch 1, no inputs or noise), the loss
// <1, state'>: each coordinate of d loss / d (params, state) from the evaluator's backward
// against central differences. Returns a description of every coordinate that disagrees.
std::vector<std::string> coordinateMismatches(const std::string& src, const std::vector<double>& params,
                                              const std::vector<double>& state) {
  StepIR ir = lowerText("edge.cell", src);
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  REQUIRE(L.paramSize == static_cast<int64_t>(params.size()));
  REQUIRE(L.stateSize == static_cast<int64_t>(state.size()));
  REQUIRE(L.inputSize == 0);
  REQUIRE(L.noiseSize == 0);
  std::vector<double> ones(L.stateSize, 1.0), dOut(L.outputSize, 0.0);
  auto lossAt = [&](const std::vector<double>& p, const std::vector<double>& s) {
    std::vector<double> next(L.stateSize), out(L.outputSize);
    ev.run(Stage::Forward, {.params = p.data(),
                            .state = s.data(),
                            .stateNext = next.data(),
                            .output = out.data(),
                            .batch = 1});
    return dot(ones, next);
  };
  std::vector<double> dState(L.stateSize), dParams(L.paramSize, 0.0);
  ev.run(Stage::Backward, {.params = params.data(),
                           .state = state.data(),
                           .dStateNext = ones.data(),
                           .dOutput = dOut.data(),
                           .dState = dState.data(),
                           .dParams = dParams.data(),
                           .batch = 1});
  std::vector<std::string> bad;
  for (int which = 0; which < 2; ++which) {
    const std::vector<double>& base = which == 0 ? params : state;
    const std::vector<double>& grad = which == 0 ? dParams : dState;
    for (size_t i = 0; i < base.size(); ++i) {
      FdResult r = compareWithFd(grad[i], [&](double eps) {
        std::vector<double> p = params, s = state;
        (which == 0 ? p : s)[i] += eps;
        return lossAt(p, s);
      });
      if (!(r.err <= kFdTolerance))
        bad.push_back(std::string(which == 0 ? "param" : "state") + "[" + std::to_string(i) + "]: " + r.str());
    }
  }
  return bad;
}

std::string joinLines(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

// d sum(state') / d state at one step.
std::vector<double> stateGradient(const std::string& src, const std::vector<double>& params,
                                  const std::vector<double>& state) {
  StepIR ir = lowerText("edge.cell", src);
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  std::vector<double> ones(L.stateSize, 1.0), dOut(L.outputSize, 0.0);
  std::vector<double> dState(L.stateSize), dParams(L.paramSize, 0.0);
  ev.run(Stage::Backward, {.params = params.data(),
                           .state = state.data(),
                           .dStateNext = ones.data(),
                           .dOutput = dOut.data(),
                           .dState = dState.data(),
                           .dParams = dParams.data(),
                           .batch = 1});
  return dState;
}

}  // namespace

TEST_CASE("pow: the exponent's gradient at base 0 is 0, not NaN", "[gradients][edge]") {
  // d/dk 0^k = 0 for k > 0; the rule g * y * log(a) gives 0 * -inf = NaN.
  const char* src = R"(cell pow_zero {
  dim n = 2
  state h[n] = 0
  param k ~ fill(2)
  h' = relu(h) ^ k
})";
  std::vector<std::string> bad = coordinateMismatches(src, {2.0}, {-0.5, 0.7});
  INFO(joinLines(bad));
  CHECK(bad.empty());
}

TEST_CASE("clip with lo > hi: the value is hi, so lo gets no gradient", "[gradients][edge]") {
  // Graph.h: clip = min(max(x, lo), hi), which is hi whenever lo > hi. The rule sends the
  // adjoint to lo wherever x < lo.
  const char* src = R"(cell clip_swapped {
  dim n = 3
  state h[n] = 0
  param lo ~ fill(1)
  param hi ~ fill(-1)
  h' = clip(h, lo, hi)
})";
  std::vector<std::string> bad = coordinateMismatches(src, {1.0, -1.0}, {0.0, 2.0, -2.0});
  INFO(joinLines(bad));
  CHECK(bad.empty());
}

TEST_CASE("smooth cells at ordinary points: the edge-case harness itself", "[gradients][edge]") {
  const char* src = R"(cell smooth {
  dim n = 2
  state h[n] = 0
  param k ~ fill(2)
  param lo ~ fill(-1)
  param hi ~ fill(1)
  h' = clip(softplus(h) ^ k, lo, hi) + max(h, lo) - min(h, hi) + abs(h) + relu(h)
})";
  std::vector<std::string> bad = coordinateMismatches(src, {1.5, -0.2, 0.9}, {-0.5, 0.4});
  INFO(joinLines(bad));
  CHECK(bad.empty());
}

TEST_CASE("subgradients at kinks follow the documented conventions", "[gradients][edge]") {
  // relu'(0) = 0, abs'(0) = 0.
  CHECK(stateGradient("cell k { state h = 0\n h' = relu(h) }", {}, {0.0}) == std::vector<double>{0.0});
  CHECK(stateGradient("cell k { state h = 0\n h' = abs(h) }", {}, {0.0}) == std::vector<double>{0.0});
  // min(a, b) and max(a, b) send the adjoint to a on ties.
  const char* minTie = "cell k { state h = 0\n param b ~ zeros()\n h' = min(h, b) }";
  const char* maxTie = "cell k { state h = 0\n param b ~ zeros()\n h' = max(b, h) }";
  CHECK(stateGradient(minTie, {0.5}, {0.5}) == std::vector<double>{1.0});
  CHECK(stateGradient(maxTie, {0.5}, {0.5}) == std::vector<double>{0.0});
  // Ties of a value with itself have the true derivative 1.
  CHECK(stateGradient("cell k { state h = 0\n h' = min(h, h) }", {}, {0.3}) == std::vector<double>{1.0});
  CHECK(stateGradient("cell k { state h = 0\n h' = max(h, h) }", {}, {0.3}) == std::vector<double>{1.0});
  // clip at a bound passes the adjoint to x (Vjp.cpp: bounds included, as PyTorch's clamp), so
  // clip(h, h, h + 1) = h has derivative 1. NOTE: docs/language.md says the opposite ("at a bound
  // sends it nowhere"), which would give 0 here, the wrong derivative.
  CHECK(stateGradient("cell k { state h = 0\n h' = clip(h, h, h + 1) }", {}, {0.3}) == std::vector<double>{1.0});
  CHECK(stateGradient("cell k { state h = 0\n h' = clip(h, h - 1, h) }", {}, {0.3}) == std::vector<double>{1.0});
  const char* atBound = "cell k { state h = 0\n h' = clip(h, 0, 1) }";
  CHECK(stateGradient(atBound, {}, {0.0}) == std::vector<double>{1.0});
  CHECK(stateGradient(atBound, {}, {1.0}) == std::vector<double>{1.0});
  CHECK(stateGradient(atBound, {}, {1.5}) == std::vector<double>{0.0});
}

TEST_CASE("constant folding of softplus does not overflow", "[gradients][edge][fold]") {
  // softplus(800) = 800 (+ 1e-348); folding it as log1p(exp(800)) gives inf.
  StepIR ir = lowerText("fold.cell", "cell k { state h = 0\n h' = h + (softplus(800) - 800) }");
  eval::Evaluator ev(ir);
  std::vector<double> h = {0.25}, next(1);
  ev.run(Stage::Forward, {.state = h.data(), .stateNext = next.data(), .batch = 1});
  INFO(ir::printGraph(ir.g, ir.forwardRoots()));
  CHECK(next[0] == 0.25);
}

// ---- Classification ops: softmax, log_softmax, logsumexp (built from amax, exp, sum, log) -----

TEST_CASE("softmax, log_softmax, logsumexp and amax: gradients match finite differences",
          "[gradients][classify]") {
  // Over a vector and over a matrix's last axis; weights so that sum(state') is not constant.
  const char* src = R"(cell classify {
  dim n = 4
  state h[n] = 0
  state M[2, 3] = 0
  param w[n] ~ zeros()
  param v[3] ~ zeros()
  h' = w * softmax(h) + 0.5 * w * log_softmax(h) + logsumexp(h) * w + amax(h) * w * w
  M' = softmax(M) * v + log_softmax(M) * v * v + outer(logsumexp(M), v) + outer(amax(M, 1), v) + amax(M, 0) * v
})";
  const std::vector<double> params = {0.3, -1.2, 0.7, 2.0, -0.4, 1.1, 0.9};
  std::vector<std::string> bad = coordinateMismatches(src, params, {0.2, -1.5, 1.3, 0.4, -0.3, 2.2, 0.1, 0.8, -1.1, 0.5});
  INFO(joinLines(bad));
  CHECK(bad.empty());
  // Far from 0 (exp would overflow without the shift by the max), and with a tied maximum: the
  // shared adjoint of amax is what central differences measure there.
  bad = coordinateMismatches(src, params, {800, 799.5, -300, 800, 1000, 998, 999.5, -1000, -1001, -1000});
  INFO(joinLines(bad));
  CHECK(bad.empty());
}

TEST_CASE("softmax, log_softmax and logsumexp are exact and finite at large inputs", "[gradients][classify]") {
  // x = (1000, 1000 + ln 3): logsumexp = 1000 + ln 4, softmax = (1/4, 3/4) (to the rounding of
  // ln 3 next to 1000); unshifted, exp(1000) would overflow. Far negative alike.
  const char* src = R"(cell k {
  state x[2] = 0
  x' = x
  output p = softmax(x)
  output lp = log_softmax(x)
  output lse = logsumexp(x)
  output m = amax(x)
})";
  StepIR ir = lowerText("classify.cell", src);
  eval::Evaluator ev(ir);
  for (double base : {1000.0, -1000.0, 0.0}) {
    INFO("base " << base);
    std::vector<double> x = {base, base + std::log(3.0)}, next(2), out(6);
    ev.run(Stage::Forward, {.state = x.data(), .stateNext = next.data(), .output = out.data(), .batch = 1});
    const double d = x[1] - x[0];  // exact: about ln 3, as stored next to 1000
    CHECK(out[0] == Approx(1 / (1 + std::exp(d))).epsilon(1e-14));
    CHECK(out[1] == Approx(std::exp(d) / (1 + std::exp(d))).epsilon(1e-14));
    CHECK(out[2] == Approx(-std::log1p(std::exp(d))).epsilon(1e-14));
    CHECK(out[3] == Approx(-std::log1p(std::exp(-d))).epsilon(1e-14));
    CHECK(out[4] == Approx(x[1] + std::log1p(std::exp(-d))).epsilon(1e-15).margin(1e-15));
    CHECK(out[5] == x[1]);
    CHECK(std::fabs(out[1] - 0.75) < 1e-12);
  }
}
