// The cross-entropy losses (train/Loss.h): their values against the textbook formula, their
// adjoints against central differences in double (masks, soft targets, unlabelled steps, logits
// far from 0), the gradient of a compiled cell trained with them through BPTT against finite
// differences, and the accuracy of the choices they score.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "driver/Compile.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"
#include "train/Bptt.h"
#include "train/Loss.h"

using namespace cellc;
using namespace cellc::runtime;

namespace {

// A layout with one other output (size 2) before the loss's output y (size K), so that offsets matter.
ir::Layout twoOutputs(int64_t K) {
  ir::Layout L;
  ir::Slot other{"other", ir::Role::Output, Shape{true, {2}}, 0, 2, {}, {}, 0, -1, false};
  ir::Slot y{"y", ir::Role::Output, Shape{true, {K}}, 2, K, {}, {}, 0, -1, false};
  L.outputs = {other, y};
  L.outputSize = 2 + K;
  return L;
}

std::vector<double> normals(size_t n, std::mt19937& rng, double scale) {
  std::normal_distribution<double> d(0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

// Central differences with the step that agrees best with the adjoint (h from 1e-3 to 1e-7).
double fdError(double exact, const std::function<double(double)>& f) {
  double best = 1e300;
  for (double h : {1e-3, 1e-4, 1e-5, 1e-6, 1e-7}) {
    const double fd = (f(h) - f(-h)) / (2 * h);
    best = std::min(best, std::fabs(fd - exact) / std::max(1.0, std::fabs(exact)));
  }
  return best;
}

}  // namespace

TEST_CASE("cross_entropy: the textbook value for one-hot targets, unlabelled steps left out", "[loss][classify]") {
  const int64_t K = 3, B = 2, T = 3;
  ir::Layout L = twoOutputs(K);
  TrialBatch b;
  b.batch = B, b.steps = T;
  b.inputs.assign(T, {});
  b.targets.assign(T, std::vector<double>(K * B, 0.0));
  b.targets[1][0 * K + 2] = 1, b.targets[1][1 * K + 0] = 1;  // step 1: classes 2 and 0
  b.targets[2][0 * K + 1] = 1;                               // step 2: trial 0 only, class 1
  std::mt19937 rng(3);
  std::vector<std::vector<double>> out(T);
  for (auto& o : out) o = normals(static_cast<size_t>(L.outputSize * B), rng, 2.0);
  auto logp = [&](int64_t t, int64_t r, int64_t i) {  // log softmax of trial r's y at step t
    const double* y = out[t].data() + B * 2 + r * K;
    double s = 0;
    for (int64_t j = 0; j < K; ++j) s += std::exp(y[j]);
    return y[i] - std::log(s);
  };
  const double want = -(logp(1, 0, 2) + logp(1, 1, 0) + logp(2, 0, 1)) / 3;
  LossSpec spec{LossKind::CrossEntropy, 1};
  CHECK(lossValue(spec, L, b, out) == Approx(want).epsilon(1e-14));
  CHECK(lossDenominator(spec, L.outputs[1], b) == 3);
  // cross_entropy_last reads the last step alone: one term.
  CHECK(lossValue({LossKind::CrossEntropyLast, 1}, L, b, out) == Approx(-logp(2, 0, 1)).epsilon(1e-14));
  // Uniform logits score log K (the chance loss of zero outputs).
  std::vector<std::vector<double>> zeros(T, std::vector<double>(L.outputSize * B, 0.0));
  CHECK(lossValue(spec, L, b, zeros) == Approx(std::log(3.0)).epsilon(1e-14));
}

TEST_CASE("cross_entropy: adjoints match finite differences, with masks, soft targets and large logits",
          "[loss][classify]") {
  const int64_t K = 4, B = 3, T = 4;
  ir::Layout L = twoOutputs(K);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u01(0, 1);
  TrialBatch b;
  b.batch = B, b.steps = T;
  b.inputs.assign(T, {});
  b.targets.assign(T, std::vector<double>(K * B, 0.0));
  b.masks.assign(T, std::vector<double>(K * B, 0.0));
  for (int64_t t = 1; t < T; ++t)  // step 0 unlabelled
    for (int64_t r = 0; r < B; ++r) {
      if (t == 2 && r == 1) {  // soft class weights
        b.targets[t][r * K + 0] = 0.3, b.targets[t][r * K + 3] = 0.7;
      } else {
        b.targets[t][r * K + (t + r) % K] = 1;
      }
    }
  for (auto& m : b.masks)
    for (double& v : m) v = u01(rng);
  std::vector<std::vector<double>> out(T);
  for (auto& o : out) o = normals(static_cast<size_t>(L.outputSize * B), rng, 3.0);
  out[3][B * 2 + 0] = 800;  // exp would overflow without the shift by the max
  out[3][B * 2 + 1] = 799;
  for (LossKind kind : {LossKind::CrossEntropy, LossKind::CrossEntropyLast}) {
    INFO(lossKindName(kind));
    const LossSpec spec{kind, 1};
    const double denom = lossDenominator(spec, L.outputs[1], b);
    int bad = 0, checked = 0;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> adj(static_cast<size_t>(L.outputSize * B));
      const double term = stepLoss<double>(spec, L, b, t, out[t].data(), denom, adj.data());
      CHECK(std::isfinite(term));
      for (int64_t i = 0; i < L.outputSize * B; ++i) {
        const double err = fdError(adj[static_cast<size_t>(i)], [&](double h) {
          std::vector<std::vector<double>> o = out;
          o[t][static_cast<size_t>(i)] += h;
          return lossValue(spec, L, b, o);
        });
        ++checked;
        if (!(err <= 1e-7)) {
          ++bad;
          UNSCOPED_INFO("step " << t << ", element " << i << ": adjoint " << adj[i] << ", error " << err);
        }
      }
    }
    CHECK(checked == T * B * (2 + K));
    CHECK(bad == 0);
  }
}

TEST_CASE("cross_entropy: negative class weights are refused", "[loss][classify]") {
  ir::Layout L = twoOutputs(2);
  TrialBatch b;
  b.batch = 1, b.steps = 1;
  b.inputs.assign(1, {});
  b.targets = {{1, -1}};
  CHECK_THROWS_WITH(checkTargets(L.outputs[1], {LossKind::CrossEntropy, 1}, b),
                    Catch::Contains("cross_entropy") && Catch::Contains("-1"));
}

TEST_CASE("cross_entropy through BPTT: a compiled cell's gradient matches finite differences", "[loss][classify][bptt]") {
  std::string err;
  SourceFile f = SourceFile::load(CELLC_SOURCE_DIR "/cells/dale_rnn.cell", &err);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, {{"n", 6}, {"n_in", 2}, {"n_out", 3}}, d);
  REQUIRE(p);
  StepIR ir = lower(*p);
  auto kernel = compileCell<double>(ir);
  const ir::Layout& L = ir.layout;
  const int64_t B = 4, T = 9, K = 3;
  std::mt19937 rng(5);
  TrialBatch b;
  b.batch = B, b.steps = T;
  for (int64_t t = 0; t < T; ++t) {
    b.inputs.push_back(normals(static_cast<size_t>(L.inputSize * B), rng, 1.0));
    b.targets.emplace_back(K * B, 0.0);
    if (t >= T - 3)  // a decision epoch: the last three steps
      for (int64_t r = 0; r < B; ++r) b.targets[t][r * K + r % K] = 1;
  }
  std::vector<double> params(static_cast<size_t>(L.paramSize));
  for (double& v : params) v = std::uniform_real_distribution<double>(0.05, 0.6)(rng);
  Bptt<double> bptt(*kernel, B, T);
  const LossSpec spec{LossKind::CrossEntropy, 0};
  BpttResult<double> r = bptt.lossAndGradient(params, b, spec, {}, {});
  auto lossAt = [&](const std::vector<double>& q) {
    std::vector<std::vector<double>> outs;
    bptt.forward(q, b, {}, {}, outs);
    return lossValue(spec, L, b, outs);
  };
  CHECK(r.loss == Approx(lossAt(params)).epsilon(1e-12));
  for (int dir = 0; dir < 3; ++dir) {
    std::vector<double> v = normals(params.size(), rng, 1.0);
    double exact = 0;
    for (size_t i = 0; i < v.size(); ++i) exact += r.dParams[i] * v[i];
    const double e = fdError(exact, [&](double h) {
      std::vector<double> q = params;
      for (size_t i = 0; i < q.size(); ++i) q[i] += h * v[i];
      return lossAt(q);
    });
    INFO("direction " << dir << ": directional derivative " << exact << ", relative error " << e);
    CHECK(e <= 1e-7);
  }
}

TEST_CASE("accuracy: the choice is the largest logit, weighted as the loss weighs the term", "[loss][classify]") {
  const int64_t K = 3, B = 4, T = 2;
  ir::Layout L = twoOutputs(K);
  TrialBatch b;
  b.batch = B, b.steps = T;
  b.inputs.assign(T, {});
  b.targets.assign(T, std::vector<double>(K * B, 0.0));  // step 0 unlabelled
  const int wanted[B] = {0, 2, 2, 1};
  const int chosen[B] = {0, 2, 1, 1};  // trial 2 wrong
  std::vector<std::vector<double>> out(T, std::vector<double>(L.outputSize * B, 0.0));
  for (int64_t r = 0; r < B; ++r) {
    b.targets[1][r * K + wanted[r]] = 1;
    out[1][B * 2 + r * K + chosen[r]] = 1.5;
    out[0][B * 2 + r * K + (chosen[r] + 1) % K] = 9;  // unlabelled: not scored
  }
  Accuracy a = accuracyOf({LossKind::CrossEntropy, 1}, L, b, out);
  CHECK(a.total == 4);
  CHECK(a.correct == 3);
  CHECK(a.value() == 0.75);
  CHECK(a.chance() == 0.5);  // class 2 is half of the targets: the best constant guess
  // An MSE loss scores no choices.
  CHECK(accuracyOf({LossKind::Mse, 1}, L, b, out).total == 0);
}
