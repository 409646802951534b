// BPTT with segment recomputation: gradients against finite differences in double, the same
// gradient for every segment length, dropout masks in forward and backward, the memory bound
// for a plastic cell, and no recomputation within the memory budget.
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <random>

#include "../jit/BpttCheck.h"
#include "driver/Compile.h"
#include "sema/Program.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return bpttcheck::lowerSource("cells/" + name, o); }

TrialBatch randomBatch(const ir::Layout& L, int64_t B, int64_t T, std::mt19937_64& rng, bool mask) {
  std::normal_distribution<double> n(0, 1);
  std::bernoulli_distribution coin(0.7);
  TrialBatch b;
  b.batch = B, b.steps = T;
  const int64_t out = L.outputs[0].size * B;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> in(L.inputSize * B), tg(out), m(out);
    for (double& x : in) x = n(rng);
    for (double& x : tg) x = n(rng);
    for (double& x : m) x = coin(rng) ? 1 : 0;
    b.inputs.push_back(in);
    b.targets.push_back(tg);
    if (mask) b.masks.push_back(m);
  }
  return b;
}

std::vector<double> randomParams(int64_t n, std::mt19937_64& rng, double scale) {
  std::normal_distribution<double> d(0, scale);
  std::vector<double> p(n);
  for (double& x : p) x = d(rng);
  return p;
}

std::vector<std::vector<double>> randomNoise(const ir::Layout& L, int64_t B, int64_t T, std::mt19937_64& rng) {
  if (L.noiseSize == 0) return {};
  std::vector<std::vector<double>> nz(T, std::vector<double>(L.noiseSize * B));
  std::normal_distribution<double> d(0, 1);
  for (auto& s : nz)
    for (double& x : s) x = d(rng);
  return nz;
}

// Directional finite-difference check of the whole-sequence gradient.
void checkGradient(Bptt<double>& bptt, const std::vector<double>& params, const TrialBatch& b,
                   const LossSpec& loss, const std::vector<std::vector<double>>& noise,
                   const std::vector<std::vector<double>>& masks, std::mt19937_64& rng) {
  BpttResult<double> r = bptt.lossAndGradient(params, b, loss, noise, masks);
  std::normal_distribution<double> d(0, 1);
  for (int dir = 0; dir < 3; ++dir) {
    std::vector<double> v(params.size());
    double norm = 0;
    for (double& x : v) {
      x = d(rng);
      norm += x * x;
    }
    for (double& x : v) x /= std::sqrt(norm);
    double ad = 0;
    for (size_t i = 0; i < v.size(); ++i) ad += r.dParams[i] * v[i];
    double bestErr = INFINITY;
    for (double h : {1e-3, 1e-4, 1e-5, 1e-6}) {
      std::vector<double> pp = params, pm = params;
      for (size_t i = 0; i < v.size(); ++i) pp[i] += h * v[i], pm[i] -= h * v[i];
      double fd = (bptt.lossAndGradient(pp, b, loss, noise, masks).loss -
                   bptt.lossAndGradient(pm, b, loss, noise, masks).loss) / (2 * h);
      bestErr = std::min(bestErr, std::fabs(fd - ad) / std::max({1e-8, std::fabs(fd), std::fabs(ad)}));
    }
    INFO("direction " << dir << ", directional derivative " << ad);
    CHECK(bestErr <= 1e-6);
  }
}

}  // namespace

TEST_CASE("BPTT gradients match finite differences, for every segment length", "[bptt]") {
  std::mt19937_64 rng(7);
  StepIR ir = lowerCell("dale_rnn.cell", {{"n", 6}, {"n_out", 3}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 3, T = 12;
  TrialBatch b = randomBatch(ir.layout, B, T, rng, true);
  auto noise = randomNoise(ir.layout, B, T, rng);
  std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.4);
  std::vector<double> reference;
  for (int64_t seg : {1, 3, 5, 12}) {
    DYNAMIC_SECTION("segment " << seg) {
      Bptt<double> bptt(*k, B, T, seg);
      for (LossKind kind : {LossKind::Mse, LossKind::MseLast}) {
        checkGradient(bptt, params, b, {kind, 0}, noise, {}, rng);
      }
    }
  }
  // Segmenting is exact: every segment length yields the same gradient.
  Bptt<double> whole(*k, B, T, T), pieces(*k, B, T, 4);
  auto g1 = whole.lossAndGradient(params, b, {}, noise, {});
  auto g2 = pieces.lossAndGradient(params, b, {}, noise, {});
  CHECK(g1.loss == g2.loss);
  for (size_t i = 0; i < g1.dParams.size(); ++i) CHECK(g1.dParams[i] == Approx(g2.dParams[i]).epsilon(1e-12));
}

TEST_CASE("BPTT through a plastic cell's matrix state", "[bptt]") {
  std::mt19937_64 rng(11);
  StepIR ir = lowerCell("pbrc.cell", {{"n", 5}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 2, T = 9;
  TrialBatch b = randomBatch(ir.layout, B, T, rng, false);
  std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.5);
  Bptt<double> bptt(*k, B, T, 0);
  checkGradient(bptt, params, b, {LossKind::MseLast, 0}, {}, {}, rng);
}

TEST_CASE("dropout masks: the same in forward and backward", "[bptt][dropout]") {
  std::mt19937_64 rng(3);
  StepIR ir = lowerCell("gru.cell", {{"n", 6}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 3, T = 8;
  TrialBatch b = randomBatch(ir.layout, B, T, rng, false);
  std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.5);
  std::uniform_real_distribution<double> u(0, 1);
  for (bool perStep : {false, true}) {
    DropoutSpec spec{0.5, perStep, {}};
    auto masks = dropoutMasks<double>(ir.layout, spec, B, T, [&] { return u(rng); });
    REQUIRE(masks.size() == (perStep ? size_t(T) : size_t(1)));
    int zeros = 0;
    for (double m : masks[0]) {
      CHECK((m == 0.0 || m == 2.0));
      zeros += m == 0.0;
    }
    CHECK(zeros > 0);
    Bptt<double> bptt(*k, B, T, 3);
    checkGradient(bptt, params, b, {LossKind::Mse, 0}, {}, masks, rng);
    // A dropped unit carries nothing forward: outputs differ from the unmasked run.
    std::vector<std::vector<double>> a, c;
    bptt.forward(params, b, {}, masks, a);
    bptt.forward(params, b, {}, {}, c);
    CHECK(a.back() != c.back());
  }
}

TEST_CASE("PBRC n=256, batch 64, T=500: one training step within 2 GB", "[bptt][slow]") {
  StepIR ir = lowerCell("pbrc.cell", {{"n", 256}, {"n_in", 1}});
  auto k = compileCell<float>(ir);
  const int64_t B = 64, T = 500;
  const double stepBytes = 4.0 * (ir.layout.stateSize * B + k->tapeSize(B));
  INFO("a step's state + tape: " << stepBytes / 1e6 << " MB; storing all: " << stepBytes * T / 1e9 << " GB");
  CHECK(stepBytes * T > 8e9);  // the naive tape would not fit
  Bptt<float> bptt(*k, B, T);
  std::mt19937_64 rng(1);
  TrialBatch b = randomBatch(ir.layout, B, T, rng, false);
  std::vector<float> params(ir.layout.paramSize, 0.01f);
  BpttResult<float> r = bptt.lossAndGradient(params, b, {LossKind::MseLast, 0}, {}, {});
  INFO("segment " << r.segment << ", peak " << r.peakBytes / 1e9 << " GB");
  CHECK(r.peakBytes < 2e9);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  INFO("max RSS " << ru.ru_maxrss / 1e6 << " GB");
  CHECK(ru.ru_maxrss * 1024.0 < 2e9);
  CHECK(std::isfinite(r.loss));
}

TEST_CASE("Omega: the regularizer enters the loss and the gradient", "[bptt][omega]") {
  std::mt19937_64 rng(23);
  StepIR ir = lowerCell("dale_rnn.cell", {{"n", 6}, {"n_out", 3}, {"n_in", 2}});
  auto k = compileCell<double>(ir, {.omega = true});
  const int64_t B = 3, T = 12;
  TrialBatch b = randomBatch(ir.layout, B, T, rng, true);
  std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.4);
  Bptt<double> bptt(*k, B, T, 4);
  BpttResult<double> plain = bptt.lossAndGradient(params, b, {}, {}, {});
  CHECK(plain.omega == 0);
  bptt.setOmega({2.0, 0});
  BpttResult<double> reg = bptt.lossAndGradient(params, b, {}, {}, {});
  INFO("Omega = " << reg.omega);
  CHECK(reg.omega > 0);
  CHECK(std::isfinite(reg.omega));
  CHECK(reg.loss == Approx(plain.loss + 2.0 * reg.omega).epsilon(1e-12));
  double diff = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    REQUIRE(std::isfinite(reg.dParams[i]));
    diff += std::fabs(reg.dParams[i] - plain.dParams[i]);
  }
  CHECK(diff > 0);
  // Segmenting stays exact with the regularizer on.
  Bptt<double> whole(*k, B, T, T);
  whole.setOmega({2.0, 0});
  BpttResult<double> w = whole.lossAndGradient(params, b, {}, {}, {});
  CHECK(w.loss == Approx(reg.loss).epsilon(1e-12));
  for (size_t i = 0; i < params.size(); ++i) CHECK(w.dParams[i] == Approx(reg.dParams[i]).epsilon(1e-10).margin(1e-14));
  // A kernel compiled without the Omega function says so.
  auto plainKernel = compileCell<double>(ir);
  Bptt<double> noOmega(*plainKernel, B, T, 4);
  noOmega.setOmega({2.0, 0});
  CHECK_THROWS_WITH(noOmega.lossAndGradient(params, b, {}, {}, {}), Catch::Contains("without the Omega function"));
}

namespace {

// Counts the stages a kernel is asked for, and passes them on.
template <class T>
class CountingKernel : public ForwardingKernel<T> {
 public:
  using ForwardingKernel<T>::ForwardingKernel;
  void run(Stage stage, const StepArgs<T>& a) override {
    ++calls[static_cast<size_t>(stage)];  // shards may call at once (traits().concurrentCalls)
    this->inner_.run(stage, a);
  }
  int64_t count(Stage s) const { return calls[static_cast<size_t>(s)].load(); }
  int64_t forwards() const { return count(Stage::Forward) + count(Stage::ForwardHoisted); }
  std::array<std::atomic<int64_t>, static_cast<size_t>(Stage::kCount)> calls{};
};

}  // namespace

TEST_CASE("BPTT recomputes only when the memory budget says so", "[bptt][memory]") {
  std::mt19937_64 rng(5);
  StepIR ir = lowerCell("gru.cell", {{"n", 8}, {"n_in", 2}});
  auto k = compileCell<double>(ir);
  const int64_t B = 3, T = 20;
  TrialBatch b = randomBatch(ir.layout, B, T, rng, false);
  std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.4);
  const int64_t S = ir.layout.stateSize * B, tapeN = k->tapeSize(B), O = ir.layout.outputSize * B;
  const int64_t all = 8 * ((T + 1) * S + T * (tapeN + O));

  // Within the budget: every step's tape is kept, and the forward runs once. (The segment plan
  // off: its buffer would take a share of the budget.)
  CountingKernel<double> kept(*k);
  Bptt<double> whole(kept, B, T, 0, all, SegmentGemms::Off);
  CHECK(whole.segment() == T);
  auto r1 = whole.lossAndGradient(params, b, {}, {}, {});
  CHECK(kept.forwards() == T);
  CHECK(r1.peakBytes == all);

  // Below it: segments, the longest that fit; only the steps before the last segment are redone.
  CountingKernel<double> cut(*k);
  Bptt<double> pieces(cut, B, T, 0, all / 2, SegmentGemms::Off);
  const int64_t K = pieces.segment();
  CHECK(K > 1);
  CHECK(K < T);
  auto r2 = pieces.lossAndGradient(params, b, {}, {}, {});
  CHECK(r2.peakBytes <= all / 2);
  CHECK(bpttBytes(T, K + 1, S, tapeN, O, 8) > all / 2);  // K is the longest within the budget
  CHECK(cut.forwards() == T + K * ((T + K - 1) / K - 1));
  // The same gradient either way, and on a second call with the buffers reused.
  auto r3 = pieces.lossAndGradient(params, b, {}, {}, {});
  CHECK(r1.loss == r2.loss);
  for (size_t i = 0; i < r1.dParams.size(); ++i) {
    CHECK(r1.dParams[i] == Approx(r2.dParams[i]).epsilon(1e-12));
    CHECK(r2.dParams[i] == r3.dParams[i]);
  }
}

// StepKernel has one call entry: a wrapper that forwards run() sees every stage BPTT takes, and
// BPTT takes the same fast stages through it (hoisted steps, the segment plan, shards) as on the
// kernel itself, to the bit. The per-stage virtuals this replaced let a wrapper that overrode
// only forward and backward silently fall back to the self-contained steps.
TEST_CASE("BPTT through a counting wrapper: the same stages and the same bits", "[bptt][kernel]") {
  std::mt19937_64 rng(8);
  StepIR ir = lowerCell("gru.cell", {{"n", 12}, {"n_in", 3}});
  auto k = compileCell<double>(ir);
  const int64_t T = 7;
  for (int64_t B : {int64_t{2}, int64_t{24}}) {  // the segment plan (B <= 4); two shards (B = 24)
    CAPTURE(B);
    TrialBatch b = randomBatch(ir.layout, B, T, rng, false);
    std::vector<double> params = randomParams(ir.layout.paramSize, rng, 0.4);
    Bptt<double> direct(*k, B, T);
    CountingKernel<double> counted(*k);
    Bptt<double> wrapped(counted, B, T);
    REQUIRE(wrapped.segmentGemms() == direct.segmentGemms());
    REQUIRE(wrapped.shards() == direct.shards());
    const auto r1 = direct.lossAndGradient(params, b, {}, {}, {});
    const auto r2 = wrapped.lossAndGradient(params, b, {}, {}, {});
    CHECK(r1.loss == r2.loss);
    CHECK(r1.dParams == r2.dParams);
    // Only the stages of a sequence walk: never the self-contained steps.
    CHECK(counted.count(Stage::Forward) == 0);
    CHECK(counted.count(Stage::Backward) == 0);
    const int64_t shards = direct.shards();
    CHECK(counted.count(Stage::Prologue) == shards);
    CHECK(counted.count(Stage::ForwardHoisted) == T * shards);
    CHECK(counted.count(Stage::Epilogue) == shards);
    if (B == 2) {
      REQUIRE(direct.segmentGemms());
      CHECK(counted.count(Stage::BackwardSegment) == T);
      CHECK(counted.count(Stage::SegmentEpilogue) == 1);
      CHECK(counted.count(Stage::BackwardHoisted) == 0);
    } else {
      REQUIRE(shards == 2);
      CHECK(counted.count(Stage::BackwardHoisted) + counted.count(Stage::BackwardSegment) ==
            T * shards);
    }
  }
}
