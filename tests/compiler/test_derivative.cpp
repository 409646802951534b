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
