// Recurrent dropout as the cell places it (`noise keep[n] ~ dropout()`) and the Fisher of EWC:
// what the noise slots receive (masks per trial or per step, ones when dropout is off), the default
// noise of a forward pass, training dale_rnn with p = 0.5, the error for a cell without a mask,
// evaluation and the Fisher without dropout, and the Fisher against a brute-force empirical one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "eval/Evaluate.h"
#include "CompiledModel.h"
#include "jit/Jit.h"
#include "params/Init.h"
#include "random/Normals.h"
#include "sema/Program.h"
#include "tasks/Tasks.h"
#include "train/NoiseDraw.h"
#include "train/Trainer.h"
#include "unroll/Unroll.h"

using namespace cellc;
using namespace cellc::runtime;

namespace {

using Model = testing::CompiledModel;
Model model(const std::string& cell, std::map<std::string, double> o) { return testing::compiledModel(cell, std::move(o)); }

// A short E1-like sequence: 20 steps of 10 ms, `outputs` bumps.
SequenceTask shortSequence(int64_t outputs) {
  SequenceSpec spec;
  spec.in.duration = 200, spec.in.onsetMin = 10, spec.in.onsetMax = 40;
  spec.outputs = outputs, spec.offset = 20, spec.spacing = 30, spec.height = 4;
  return SequenceTask(spec);
}

TrainConfig quiet(TrainConfig c) {
  c.progress = false;
  return c;
}

// The values of one slot of one step, [B * size].
std::vector<double> block(const std::vector<double>& step, const ir::Slot& s, int64_t B) {
  return {step.begin() + B * s.offset, step.begin() + B * (s.offset + s.size)};
}

}  // namespace

TEST_CASE("noise draws: a dropout mask per trial by default, 0 or 1 / (1 - p)", "[dropout]") {
  Model m = model("dale_rnn.cell", {{"n", 8}, {"n_out", 3}});
  const ir::Layout& L = m.ir.layout;
  const ir::Slot *xi = L.find(ir::Role::Noise, "xi"), *keep = L.find(ir::Role::Noise, "keep");
  REQUIRE((xi && keep));
  CHECK(!xi->dropout);
  CHECK(keep->dropout);
  const int64_t B = 4, T = 6;

  std::mt19937_64 normals(1), masks(2);
  auto nz = drawNoise<double>(L, B, T, &normals, {0.25, false}, &masks);
  REQUIRE(nz.size() == size_t(T));
  std::vector<double> first = block(nz[0], *keep, B);
  int dropped = 0;
  for (double v : first) {
    CHECK((v == 0.0 || v == Approx(4.0 / 3.0).epsilon(1e-15)));
    dropped += v == 0.0;
  }
  CHECK(dropped > 0);
  CHECK(dropped < B * keep->size);
  for (int64_t t = 1; t < T; ++t) CHECK(block(nz[t], *keep, B) == first);  // one mask per trial
  // The normal noise is what one draw of its block gives: the mask takes nothing from that stream.
  std::mt19937_64 again(1);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> expect(B * xi->size);
    fillNormals(again, expect.data(), expect.size());
    CHECK(block(nz[t], *xi, B) == expect);
  }

  SECTION("per step: a new mask every step") {
    auto ps = drawNoise<double>(L, B, T, &normals, {0.5, true}, &masks);
    bool differs = false;
    for (int64_t t = 1; t < T; ++t) differs |= block(ps[t], *keep, B) != block(ps[0], *keep, B);
    CHECK(differs);
  }
  SECTION("dropout off or not asked for: every unit kept, the mask stream untouched") {
    std::mt19937_64 fresh(2), m2(2);
    for (auto [p, rng] : {std::pair<double, std::mt19937_64*>{0.0, &m2}, {0.5, nullptr}}) {
      auto off = drawNoise<double>(L, B, T, &normals, {p, false}, rng);
      for (const auto& step : off)
        for (double v : block(step, *keep, B)) CHECK(v == 1.0);
    }
    CHECK(m2 == fresh);
    // Nothing to draw at all: empty, the forward pass uses the layout's defaults.
    CHECK(drawNoise<double>(L, B, T, nullptr, {0.5, false}, nullptr).empty());
  }
  SECTION("a cell without dropout slots gets one fill of the whole buffer, as before") {
    Model g = model("gru.cell", {{"n", 4}});
    CHECK(!g.ir.layout.hasDropout());
    CHECK(drawNoise<double>(g.ir.layout, B, T, &normals, {0.5, false}, &masks).empty());  // no noise
    CHECK_THROWS_WITH(drawNoise<double>(L, B, T, &normals, {1.0, false}, &masks),
                      Catch::Contains("dropout p must be in [0, 1)"));
  }
}

TEST_CASE("a forward pass without noise keeps every unit: ones for a mask, zeros for normal noise",
          "[dropout]") {
  Model m = model("dale_rnn.cell", {{"n", 8}, {"n_out", 3}});
  const ir::Layout& L = m.ir.layout;
  const ir::Slot* keep = L.find(ir::Role::Noise, "keep");
  REQUIRE(keep);
  std::vector<float> def = L.defaultNoise<float>(2);
  for (const ir::Slot& s : L.noises)
    for (int64_t i = 0; i < 2 * s.size; ++i) CHECK(def[2 * s.offset + i] == (s.dropout ? 1.0f : 0.0f));

  SequenceTask task = shortSequence(3);
  std::mt19937_64 rng(4);
  TrialBatch b = task.sample(2, rng);
  std::vector<double> p64(L.paramSize);
  initParams(m.ir, p64, rng);
  std::vector<float> p(p64.begin(), p64.end());
  Bptt<float> bptt(*m.kernel, 2, b.steps);
  std::vector<std::vector<float>> none, given, dropped;
  bptt.forward(p, b, {}, {}, none);
  bptt.forward(p, b, std::vector<std::vector<float>>(b.steps, def), {}, given);
  std::vector<float> zeroMask = def;
  std::fill_n(zeroMask.begin() + 2 * keep->offset, 2 * keep->size, 0.0f);
  bptt.forward(p, b, std::vector<std::vector<float>>(b.steps, zeroMask), {}, dropped);
  CHECK(none == given);
  CHECK(none.back() != dropped.back());
}

TEST_CASE("dale_rnn trains with recurrent dropout p = 0.5: the loss falls, nothing diverges",
          "[dropout][trainer]") {
  Model m = model("dale_rnn.cell", {{"n", 20}, {"n_out", 3}});
  SequenceTask task = shortSequence(3);
  TrainConfig c = quiet({});
  c.optimizer = "adam", c.learningRate = 1e-2, c.batch = 8, c.maxSteps = 600, c.validateEvery = 100;
  c.validationBatch = 32, c.seed = 7, c.dropout = {0.5, false};
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"dale_rnn.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  std::mt19937_64 r1(99);
  const double before = t.evaluate(task, t.params(), 200, r1);
  TrainResult r = t.run(task);
  std::mt19937_64 r2(99);
  const double after = t.evaluate(task, r.params, 200, r2);
  INFO("validation RMSE before " << before << ", after " << after << "; " << log.str());
  CHECK(r.stopReason == StopReason::MaxSteps);
  CHECK(std::isfinite(r.lastLoss));
  CHECK(after < 0.6 * before);
}

TEST_CASE("train.dropout on a cell without a dropout mask is an error that says what to declare",
          "[dropout][trainer]") {
  Model m = model("gru.cell", {{"n", 8}});
  CopyFirstTask task({5, 1});
  TrainConfig c = quiet({});
  c.maxSteps = 3, c.dropout = {0.5, false};
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  const std::vector<double> before = t.params();
  CHECK_THROWS_WITH(t.run(task), Catch::Contains("train.dropout = 0.5") &&
                                     Catch::Contains("cell gru declares no dropout mask") &&
                                     Catch::Contains("noise keep[n] ~ dropout()"));
  CHECK(t.params() == before);  // nothing trained
  c.dropout.p = 0;
  Trainer ok(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  ok.initialize();
  CHECK(ok.run(task).steps == 3);
}

TEST_CASE("validation and the Fisher see no dropout", "[dropout][trainer][ewc]") {
  Model m = model("dale_rnn.cell", {{"n", 10}, {"n_out", 3}});
  SequenceTask task = shortSequence(3);
  std::ostringstream log;
  auto make = [&](double p) {
    TrainConfig c = quiet({});
    c.seed = 3, c.dropout = {p, false};
    auto t = std::make_unique<Trainer>(m.ir, *m.kernel, ModelInfo{"dale_rnn.cell", m.source, m.overrides, ""},
                                       c, log);
    t->initialize();
    return t;
  };
  std::unique_ptr<Trainer> with = make(0.5);
  std::unique_ptr<Trainer> without = make(0);
  REQUIRE(with->params() == without->params());
  std::mt19937_64 a(5), b(5);
  CHECK(with->evaluate(task, with->params(), 16, a) == without->evaluate(task, without->params(), 16, b));
  CHECK(with->fisher(task, 6) == without->fisher(task, 6));
}

// EWC's Fisher checked as a reviewer would: on a tiny net, Trainer::fisher (float32 BPTT, batch 1
// per trial) against the empirical Fisher mean_k (dL_k/dtheta)^2 computed independently: each
// trial's loss in double through the reference evaluator, its gradient by central differences
// coordinate by coordinate, on the very trials and noise the trainer drew (the same streams).
TEST_CASE("the Fisher the way a reviewer would: against brute-force per-trial gradients",
          "[ewc][fisher]") {
  Model m = model("dale_rnn.cell", {{"n", 4}, {"n_out", 2}});
  const ir::Layout& L = m.ir.layout;
  SequenceTask task = shortSequence(2);
  TrainConfig c = quiet({});
  c.seed = 21;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"dale_rnn.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  const std::vector<double> theta = t.params();
  RandomStreams same = t.streams();  // the trainer draws trials and noise from these
  const int64_t K = 8;
  const std::vector<double> F = t.fisher(task, K);
  REQUIRE(F.size() == size_t(L.paramSize));

  eval::Evaluator ev(m.ir);
  const ir::Slot& out = L.outputs[0];
  std::vector<double> sumSq(L.paramSize, 0.0);
  for (int64_t k = 0; k < K; ++k) {
    TrialBatch b = task.sample(1, same[Stream::Data]);
    Sequence<double> seq;
    seq.batch = 1;
    seq.inputs = b.inputs;
    for (int64_t s = 0; s < b.steps; ++s) {  // xi ~ N(0, 1) as the trainer draws it; keep = 1
      std::vector<double> nz(L.noiseSize, 1.0);
      for (const ir::Slot& sl : L.noises) {
        if (sl.dropout) continue;
        std::vector<float> f(sl.size);
        fillNormals(same[Stream::Noise], f.data(), f.size());
        std::copy(f.begin(), f.end(), nz.begin() + sl.offset);
      }
      seq.noise.push_back(nz);
    }
    // Trial k's loss at params q: pycog's masked MSE, the initial state x = x0.
    auto lossAt = [&](const std::vector<double>& q) {
      seq.params = q;
      seq.initialState.assign(L.stateSize, 0.0);
      for (const ir::Slot& st : L.states)
        for (int64_t i = 0; i < st.size; ++i)
          seq.initialState[st.offset + i] = st.initParam >= 0 ? q[L.params[st.initParam].offset + i] : st.initValue;
      auto tr = forwardSequence<double>(ev, seq);
      double sum = 0, denom = 0;
      for (int64_t s = 0; s < b.steps; ++s)
        for (int64_t i = 0; i < out.size; ++i) {
          double w = b.masks.empty() ? 1.0 : b.masks[s][i];
          double d = tr.outputs[s][out.offset + i] - b.targets[s][i];
          sum += w * d * d, denom += w;
        }
      return sum / denom;
    };
    const double h = 1e-6;
    for (int64_t i = 0; i < L.paramSize; ++i) {
      std::vector<double> qp = theta, qm = theta;
      qp[i] += h, qm[i] -= h;
      const double g = (lossAt(qp) - lossAt(qm)) / (2 * h);
      sumSq[i] += g * g;
    }
  }
  double maxF = 0;
  for (double s : sumSq) maxF = std::max(maxF, s / K);
  REQUIRE(maxF > 0);
  int nonzero = 0;
  for (int64_t i = 0; i < L.paramSize; ++i) {
    const double brute = sumSq[i] / K;
    INFO("param element " << i << ": Trainer::fisher " << F[i] << ", brute force " << brute);
    CHECK(std::fabs(F[i] - brute) <= 1e-4 * maxF + 1e-3 * brute);
    nonzero += brute > 1e-6 * maxF;
  }
  CHECK(nonzero > L.paramSize / 2);
}
