// BPTT's batch shards (train/Bptt.h): a batch cut into shards that run side by side gives the
// loss, gradient, outputs and states of the whole batch (up to the order of the sums), with noise,
// dropout masks, loss masks, a trainable initial state, a matrix state, segments and Omega; its
// gradient matches finite differences; a shard's error reaches the caller; the automatic shard
// count follows the batch and the cell, not the threads, and so do the bits.
#include <catch2/catch.hpp>
#include <random>

#include "../jit/BpttCheck.h"
#include "blas/Threads.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "sema/Program.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return lowerSource("cells/" + name, o); }

// Restores the thread count a test changed.
struct ThreadsGuard {
  int saved = threads();
  ~ThreadsGuard() { setThreads(saved); }
};

void checkClose(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  INFO("relative error " << relErr(a, b));
  CHECK(relErr(a, b) <= tol);
}

// Loss masks of 0 and 1 on every step: the loss's denominator is their sum over the whole batch.
void addLossMasks(TrialBatch& b, std::mt19937_64& rng) {
  std::bernoulli_distribution coin(0.6);
  b.masks.clear();
  for (const auto& tg : b.targets) {
    std::vector<double> m(tg.size());
    for (double& x : m) x = coin(rng) ? 1 : 0;
    b.masks.push_back(m);
  }
}

}  // namespace

TEST_CASE("batch shards: the whole batch's loss, gradient, outputs and states", "[bptt][shards]") {
  ThreadsGuard guard;
  setThreads(2);
  struct Case {
    const char* cell;
    Overrides dims;
    int64_t segment;
  };
  // dale_rnn: normal noise, a dropout mask and a trainable x0; gru: plain; pbrc: a [B, n, n]
  // trace; segments of 3 redo the forward in pieces.
  for (const Case& c : {Case{"dale_rnn.cell", {{"n", 6}, {"n_out", 2}, {"n_in", 2}}, 0},
                        Case{"gru.cell", {{"n", 5}, {"n_in", 2}}, 3},
                        Case{"pbrc.cell", {{"n", 4}, {"n_in", 2}}, 3}}) {
    DYNAMIC_SECTION(c.cell) {
      std::mt19937_64 rng(17);
      StepIR ir = lowerCell(c.cell, c.dims);
      auto k = compileCell<double>(ir);
      const ir::Layout& L = ir.layout;
      const int64_t B = 19, T = 7;  // three shards of 7, 6 and 6 trials
      TrialBatch b = randomBatch(L, B, T, rng);
      addLossMasks(b, rng);
      auto noise = randomNoise(L, B, T, rng);
      for (const ir::Slot& s : L.noises)  // a dropout slot holds a mask of 0 and 1 / (1 - p)
        if (s.dropout)
          for (auto& step : noise)
            for (int64_t i = 0; i < B * s.size; ++i) step[B * s.offset + i] = (i % 3 == 0) ? 0.0 : 1.5;
      const std::vector<double> params = randomVec(static_cast<size_t>(L.paramSize), rng, 0.4);
      Bptt<double> whole(*k, B, T, c.segment, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 1);
      Bptt<double> sharded(*k, B, T, c.segment, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 3);
      REQUIRE(whole.shards() == 1);
      REQUIRE(sharded.shards() == 3);
      for (LossKind kind : {LossKind::Mse, LossKind::MseLast}) {
        BpttResult<double> w = whole.lossAndGradient(params, b, {kind, 0}, noise, {}, true);
        BpttResult<double> s = sharded.lossAndGradient(params, b, {kind, 0}, noise, {}, true);
        CHECK(s.loss == Approx(w.loss).epsilon(1e-13));
        checkClose(s.dParams, w.dParams, 1e-12);
        REQUIRE(s.outputs.size() == w.outputs.size());
        for (size_t t = 0; t < w.outputs.size(); ++t) checkClose(s.outputs[t], w.outputs[t], 1e-13);
        // The sharded gradient is a gradient: finite differences of the sharded loss.
        if (kind == LossKind::Mse) checkFiniteDifferences(sharded, params, b, noise, s.dParams, rng);
      }
      std::vector<std::vector<double>> ow, os, sw, ss;
      std::vector<double> fw, fs;
      whole.forward(params, b, noise, {}, ow, &fw, &sw);
      sharded.forward(params, b, noise, {}, os, &fs, &ss);
      checkClose(fs, fw, 1e-13);
      for (int64_t t = 0; t < T; ++t) {
        checkClose(os[t], ow[t], 1e-13);
        checkClose(ss[t], sw[t], 1e-13);
      }
    }
  }
}

TEST_CASE("batch shards: dropout masks on the state, one per step", "[bptt][shards][dropout]") {
  ThreadsGuard guard;
  setThreads(2);
  std::mt19937_64 rng(29);
  StepIR ir = lowerCell("gru.cell", {{"n", 6}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 16, T = 5;
  TrialBatch b = randomBatch(ir.layout, B, T, rng);
  std::uniform_real_distribution<double> u(0, 1);
  auto masks = dropoutMasks<double>(ir.layout, {0.3, true, {}}, B, T, [&] { return u(rng); });
  const std::vector<double> params = randomVec(static_cast<size_t>(ir.layout.paramSize), rng, 0.4);
  Bptt<double> whole(*k, B, T, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 1);
  Bptt<double> sharded(*k, B, T, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 2);
  BpttResult<double> w = whole.lossAndGradient(params, b, {}, {}, masks);
  BpttResult<double> s = sharded.lossAndGradient(params, b, {}, {}, masks);
  CHECK(s.loss == Approx(w.loss).epsilon(1e-13));
  checkClose(s.dParams, w.dParams, 1e-12);
}

TEST_CASE("batch shards: Omega is a mean over the whole batch", "[bptt][shards][omega]") {
  ThreadsGuard guard;
  setThreads(2);
  std::mt19937_64 rng(31);
  StepIR ir = lowerCell("dale_rnn.cell", {{"n", 6}, {"n_out", 2}, {"n_in", 2}});
  auto k = compileCell<double>(ir, {.omega = true});
  const int64_t B = 10, T = 8;
  TrialBatch b = randomBatch(ir.layout, B, T, rng);
  const std::vector<double> params = randomVec(static_cast<size_t>(ir.layout.paramSize), rng, 0.4);
  Bptt<double> whole(*k, B, T, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 1);
  Bptt<double> sharded(*k, B, T, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 2);
  whole.setOmega({2.0, 0});
  sharded.setOmega({2.0, 0});
  BpttResult<double> w = whole.lossAndGradient(params, b, {}, {}, {});
  BpttResult<double> s = sharded.lossAndGradient(params, b, {}, {}, {});
  REQUIRE(w.omega > 0);
  CHECK(s.omega == Approx(w.omega).epsilon(1e-13));
  CHECK(s.loss == Approx(w.loss).epsilon(1e-13));
  checkClose(s.dParams, w.dParams, 1e-12);
}

TEST_CASE("batch shards: two of at least kMinShardTrials trials with small products, whatever the threads",
          "[bptt][shards]") {
  ThreadsGuard guard;
  StepIR ir = lowerCell("gru.cell", {{"n", 4}, {"n_in", 1}});
  auto k = compileCell<float>(ir);
  // Products that split between the threads themselves: GRU n = 512 (W h: 512 x 512 a trial).
  StepIR wide = lowerCell("gru.cell", {{"n", 512}, {"n_in", 1}});
  auto kw = compileCell<float>(wide);
  CHECK(kw->traits().productWorkPerTrial == 512 * 512);
  for (int t : {1, 2, 3}) {
    setThreads(t);
    CHECK(batchShards<float>(*k, 2 * kMinShardTrials) == 2);
    CHECK(batchShards<float>(*k, 2 * kMinShardTrials - 1) == 1);
    CHECK(batchShards<float>(*k, 128) == 2);
    CHECK(Bptt<float>(*k, 128, 4).shards() == 2);
    CHECK(Bptt<float>(*k, 128, 4, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Auto, 1).shards() == 1);
    CHECK(batchShards<float>(*kw, 16) == 2);  // 8 trials x 512^2 = 2^21 a shard
    CHECK(batchShards<float>(*kw, 64) == 1);  // 32 trials: 2^23
  }
}

TEST_CASE("batch shards: the same bits on one thread and on two, and for the evaluator one after the other",
          "[bptt][shards]") {
  ThreadsGuard guard;
  std::mt19937_64 rng(37);
  StepIR ir = lowerCell("nbrc.cell", {{"n", 6}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  eval::Evaluator reference(ir);
  CHECK_FALSE(reference.traits().concurrentCalls);
  const int64_t B = 24, T = 6;
  TrialBatch b = randomBatch(ir.layout, B, T, rng);
  const std::vector<double> params = randomVec(static_cast<size_t>(ir.layout.paramSize), rng, 0.5);
  std::vector<BpttResult<double>> runs;
  for (int t : {1, 2}) {
    setThreads(t);
    Bptt<double> bptt(*k, B, T);
    REQUIRE(bptt.shards() == 2);
    runs.push_back(bptt.lossAndGradient(params, b, {}, {}, {}));
  }
  CHECK(runs[0].loss == runs[1].loss);
  CHECK(runs[0].dParams == runs[1].dParams);
  Bptt<double> slow(reference, B, T);
  REQUIRE(slow.shards() == 2);
  BpttResult<double> e = slow.lossAndGradient(params, b, {}, {}, {});
  CHECK(e.loss == Approx(runs[1].loss).epsilon(1e-13));
  checkClose(e.dParams, runs[1].dParams, 1e-12);
}

namespace {

// A JIT kernel whose hoisted forward fails for batches of one size: one shard's.
class FailingKernel : public ForwardingKernel<double> {
 public:
  FailingKernel(StepKernel<double>& k, int64_t failBatch)
      : ForwardingKernel<double>(k), fail_(failBatch) {}
  void run(Stage stage, const StepArgs<double>& a) override {
    if (stage == Stage::ForwardHoisted && a.batch == fail_)
      throw std::runtime_error("this shard failed");
    inner_.run(stage, a);
  }

 private:
  int64_t fail_;
};

}  // namespace

TEST_CASE("batch shards: a shard's error reaches the caller, and the pool keeps working",
          "[bptt][shards]") {
  ThreadsGuard guard;
  setThreads(2);
  std::mt19937_64 rng(41);
  StepIR ir = lowerCell("gru.cell", {{"n", 5}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 19, T = 4;  // shards of 10 and 9 trials
  TrialBatch b = randomBatch(ir.layout, B, T, rng);
  const std::vector<double> params = randomVec(static_cast<size_t>(ir.layout.paramSize), rng, 0.4);
  FailingKernel failing(*k, 9);
  Bptt<double> bad(failing, B, T);
  REQUIRE(bad.shards() == 2);
  std::vector<std::vector<double>> outs;
  CHECK_THROWS_WITH(bad.lossAndGradient(params, b, {}, {}, {}), Catch::Contains("this shard failed"));
  CHECK_THROWS_WITH(bad.forward(params, b, {}, {}, outs), Catch::Contains("this shard failed"));
  Bptt<double> good(*k, B, T);
  CHECK(std::isfinite(good.lossAndGradient(params, b, {}, {}, {}).loss));
}
