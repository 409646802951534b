// d(x)/dt in the language: the Euler step it becomes, its errors, and the continuous-time Dale RNN
// (cells/dale_rnn_ct.cell) against the discrete one (cells/dale_rnn.cell).

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "GradCheck.h"
#include "eval/Evaluate.h"
#include "sema/Program.h"

using namespace cellc;

namespace {

std::string cellPath(const std::string& name) { return std::string(CELLC_SOURCE_DIR) + "/cells/" + name; }

double maxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("d(x)/dt: cellc print shows the Euler step it became", "[derivative]") {
  SourceFile file("leak.cell",
                  "cell leak {\n  dim n = 2\n  const tau = 20\n  const dt = 5\n  input u[n]\n"
                  "  state x[n] = 0\n  d(x)/dt = (-x + u) / tau\n  output y = x'\n}\n");
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  const std::string printed = printProgram(*prog);
  CHECK(printed.find("x' = x + dt * ((-x + u) / tau)") != std::string::npos);
  // It parses back to the same program.
  DiagnosticSink again;
  std::optional<Program> back = loadCell(SourceFile("printed.cell", printed), {}, again);
  REQUIRE(back);
  CHECK(printProgram(*back) == printed);
}

TEST_CASE("d(x)/dt: the continuous-time Dale RNN equals the discrete one to 1e-12", "[derivative][eval]") {
  // Small sizes, every const at its default (alpha = dt / tau = 10 / 50 = 0.2 in both).
  const Overrides dims{{"n", 10}, {"n_in", 2}, {"n_out", 3}};
  StepIR discrete = testing::lowerFile(cellPath("dale_rnn.cell"), dims);
  StepIR continuous = testing::lowerFile(cellPath("dale_rnn_ct.cell"), dims);
  // The same layout: the same params, states, inputs, noise and outputs in the same places.
  REQUIRE(discrete.layout.paramSize == continuous.layout.paramSize);
  REQUIRE(discrete.layout.stateSize == continuous.layout.stateSize);
  REQUIRE(discrete.layout.noiseSize == continuous.layout.noiseSize);
  for (size_t i = 0; i < discrete.layout.params.size(); ++i) {
    CHECK(discrete.layout.params[i].name == continuous.layout.params[i].name);
    CHECK(discrete.layout.params[i].offset == continuous.layout.params[i].offset);
  }
  eval::Evaluator ed(discrete), ec(continuous);
  std::mt19937 rng(17);
  const int64_t B = 3, T = 25;
  runtime::Sequence<double> seq = testing::randomSequence(discrete.layout, B, T, rng);
  // The dropout mask as the trainer fills it (0 or 1 / (1 - p)), so keep is exercised too.
  const ir::Slot* keep = discrete.layout.find(ir::Role::Noise, "keep");
  REQUIRE(keep);
  std::bernoulli_distribution dropped(0.2);
  for (auto& nz : seq.noise)
    for (int64_t i = 0; i < keep->size * B; ++i) nz[B * keep->offset + i] = dropped(rng) ? 0.0 : 1.25;
  testing::LinearLoss loss = testing::LinearLoss::random(discrete.layout, B, T, rng);

  auto td = runtime::forwardSequence<double>(ed, seq);
  auto tc = runtime::forwardSequence<double>(ec, seq);
  for (int64_t t = 0; t < T; ++t) {
    CHECK(maxAbsDiff(td.states[t + 1], tc.states[t + 1]) <= 1e-12);
    CHECK(maxAbsDiff(td.outputs[t], tc.outputs[t]) <= 1e-12);
  }
  auto gd = runtime::backwardSequence<double>(ed, seq, td, loss.w, loss.v);
  auto gc = runtime::backwardSequence<double>(ec, seq, tc, loss.w, loss.v);
  CHECK(maxAbsDiff(gd.dParams, gc.dParams) <= 1e-12 * std::max(1.0, std::sqrt(testing::dot(gd.dParams, gd.dParams))));
  CHECK(maxAbsDiff(gd.dInitialState, gc.dInitialState) <= 1e-12);
  for (int64_t t = 0; t < T; ++t) CHECK(maxAbsDiff(gd.dInputs[t], gc.dInputs[t]) <= 1e-12);
  // Not vacuous: the trajectories move and the gradient is not zero.
  CHECK(maxAbsDiff(td.states[0], td.states[T]) > 0.1);
  CHECK(testing::dot(gd.dParams, gd.dParams) > 1e-6);
}

namespace {

// One unroll of `ir` in float64 with the evaluator: the trajectory and the gradient of a random
// linear loss, for comparing two cells that should be the same step.
struct Run {
  runtime::Trajectory<double> traj;
  runtime::SequenceGradients<double> grads;
};

Run unrollWithGrads(const StepIR& ir, const runtime::Sequence<double>& seq, const testing::LinearLoss& loss) {
  eval::Evaluator ev(ir);
  Run r{runtime::forwardSequence<double>(ev, seq), {}};
  r.grads = runtime::backwardSequence<double>(ev, seq, r.traj, loss.w, loss.v);
  return r;
}

const char* kLeak =
    "cell leak {\n  dim n = 3\n  const tau = 10\n  const dt = 10\n  input u[n]\n  state x[n] = 0\n"
    "  integrator METHOD\n  d(x)/dt = (-x + u) / tau\n  output y = x'\n}\n";

std::string withMethod(std::string text, const std::string& method) {
  text.replace(text.find("METHOD"), 6, method);
  return text;
}

}  // namespace

TEST_CASE("exponential_euler: a leak with constant input follows the exact solution at any dt",
          "[derivative][integrator]") {
  // dt = tau: Euler's step jumps straight to u; the exact solution only gets 1 - 1/e of the way.
  const double tau = 10, dt = 10;
  const int64_t B = 2, T = 6;
  auto run = [&](const std::string& method) {
    StepIR ir = testing::lowerText("leak.cell", withMethod(kLeak, method));
    eval::Evaluator ev(ir);
    runtime::Sequence<double> seq;
    seq.batch = B;
    seq.params.assign(ir.layout.paramSize, 0.0);
    seq.initialState = {1, -2, 0.5, 3, 0, -1};  // [B = 2, n = 3]
    for (int64_t t = 0; t < T; ++t) {
      seq.inputs.push_back({0.3, 0.3, 0.3, -0.7, -0.7, -0.7});
      seq.noise.emplace_back();
    }
    return runtime::forwardSequence<double>(ev, seq);
  };
  auto exact = [&](double x0, double u, int64_t steps) { return u + (x0 - u) * std::exp(-steps * dt / tau); };
  auto expo = run("exponential_euler"), euler = run("euler");
  const std::vector<double> x0 = {1, -2, 0.5, 3, 0, -1}, u = {0.3, 0.3, 0.3, -0.7, -0.7, -0.7};
  double errExpo = 0, errEuler = 0;
  for (int64_t t = 1; t <= T; ++t)
    for (size_t i = 0; i < x0.size(); ++i) {
      errExpo = std::max(errExpo, std::fabs(expo.states[t][i] - exact(x0[i], u[i], t)));
      errEuler = std::max(errEuler, std::fabs(euler.states[t][i] - exact(x0[i], u[i], t)));
    }
  CHECK(errExpo <= 1e-14);
  CHECK(errEuler > 0.1);  // the control: the check can tell the two integrators apart
}

TEST_CASE("exponential_euler: cellc print shows the step, which parses back to itself", "[derivative][integrator]") {
  SourceFile file("leak.cell", withMethod(kLeak, "exponential_euler"));
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  const std::string printed = printProgram(*prog);
  INFO(printed);
  CHECK(printed.find("x' = x * exp(-1 / tau * dt) + (exp(-1 / tau * dt) - 1) / (-1 / tau) * (u / tau)") !=
        std::string::npos);
  DiagnosticSink again;
  std::optional<Program> back = loadCell(SourceFile("printed.cell", printed), {}, again);
  REQUIRE(back);
  CHECK(printProgram(*back) == printed);
}

TEST_CASE("exponential_euler: a rate RNN equals its exact-decay step written by hand to 1e-12",
          "[derivative][integrator][eval]") {
  // f = (-x + W @ relu(x) + W_in @ u) / tau: the leak -x / tau decays exactly, the rest (which
  // reads x through relu and W) is held at the step's start: x' = beta x + (1 - beta) (W r + W_in u).
  const std::string head =
      "cell rate {\n  dim n = 5\n  dim n_in = 2\n  const tau = 50\n  const dt = 20\n  input u[n_in]\n"
      "  state x[n] = 0\n  param W[n, n] ~ normal(0, 0.4)\n  param W_in[n, n_in] ~ normal(0, 1)\n";
  StepIR expo = testing::lowerText(
      "expo.cell", head + "  integrator exponential_euler\n"
                          "  d(x)/dt = (-x + W @ relu(x) + W_in @ u) / tau\n  output y = x'\n}\n");
  StepIR hand = testing::lowerText(
      "hand.cell", head + "  const beta = exp(-dt / tau)\n"
                          "  x' = beta * x + (1 - beta) * (W @ relu(x) + W_in @ u)\n  output y = x'\n}\n");
  REQUIRE(expo.layout.paramSize == hand.layout.paramSize);
  std::mt19937 rng(5);
  const int64_t B = 3, T = 30;
  runtime::Sequence<double> seq = testing::randomSequence(expo.layout, B, T, rng);
  testing::LinearLoss loss = testing::LinearLoss::random(expo.layout, B, T, rng);
  Run a = unrollWithGrads(expo, seq, loss), b = unrollWithGrads(hand, seq, loss);
  for (int64_t t = 0; t < T; ++t) CHECK(maxAbsDiff(a.traj.states[t + 1], b.traj.states[t + 1]) <= 1e-12);
  CHECK(maxAbsDiff(a.grads.dParams, b.grads.dParams) <= 1e-12 * std::max(1.0, std::sqrt(testing::dot(b.grads.dParams, b.grads.dParams))));
  CHECK(maxAbsDiff(a.grads.dInitialState, b.grads.dInitialState) <= 1e-12);
  for (int64_t t = 0; t < T; ++t) CHECK(maxAbsDiff(a.grads.dInputs[t], b.grads.dInputs[t]) <= 1e-12);
  CHECK(maxAbsDiff(a.traj.states[0], a.traj.states[T]) > 0.1);  // not vacuous
}

TEST_CASE("exponential_euler with a learned time constant: gradients match finite differences",
          "[derivative][integrator][gradients]") {
  // tau a param: the gradient flows through exp(A * dt) and (exp(A * dt) - 1) / A, A = -1 / tau.
  StepIR ir = testing::lowerText(
      "learned_tau.cell",
      "cell learned_tau {\n  dim n = 4\n  dim n_in = 2\n  const dt = 5\n  input u[n_in]\n  state x[n] = 0\n"
      "  param tau[n] ~ uniform(5, 20)\n  param W[n, n] ~ normal(0, 0.5)\n  param W_in[n, n_in] ~ normal(0, 1)\n"
      "  integrator exponential_euler\n  d(x)/dt = -x / tau + tanh(W @ x + W_in @ u) / tau\n"
      "  output y = x'\n}\n");
  eval::Evaluator ev(ir);
  std::mt19937 rng(11);
  const int64_t B = 2, T = 15;
  runtime::Sequence<double> seq = testing::randomSequence(ir.layout, B, T, rng);
  const ir::Slot* tau = ir.layout.find(ir::Role::Param, "tau");
  REQUIRE(tau);
  std::uniform_real_distribution<double> taus(5, 20);
  for (int64_t i = 0; i < tau->size; ++i) seq.params[tau->offset + i] = taus(rng);  // tau > 0
  testing::LinearLoss loss = testing::LinearLoss::random(ir.layout, B, T, rng);
  auto traj = runtime::forwardSequence<double>(ev, seq);
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);
  for (int dir = 0; dir < 3; ++dir) {
    std::vector<double> d = testing::randomUnit(rng, ir.layout.paramSize);
    for (int64_t i = 0; i < tau->size; ++i) d[tau->offset + i] *= 10;  // tau's scale is ~10
    testing::FdResult r = testing::compareWithFd(testing::dot(grads.dParams, d), [&](double eps) {
      runtime::Sequence<double> s = seq;
      testing::axpy(s.params, eps, d);
      return loss(runtime::forwardSequence<double>(ev, s));
    });
    INFO("params: " << r.str());
    CHECK(r.err <= testing::kFdTolerance);
  }
}
