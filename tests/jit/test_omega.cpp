// The vanishing-gradient regularizer's gradient (autodiff::omegaGradient): a second-order
// derivative, d/dtheta of c . (v^T dx'/dx). Checked against central finite differences of
// c . w(theta) through the evaluator's backward step, and the JIT against the evaluator.
#include <catch2/catch.hpp>
#include <random>

#include "BpttCheck.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "sema/Program.h"

using namespace cellc;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return bpttcheck::lowerSource("cells/" + name, o); }

std::vector<double> rnd(size_t n, std::mt19937& rng, double s) {
  std::normal_distribution<double> d(0, s);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST_CASE("the Omega gradient matches finite differences, and the JIT the evaluator", "[omega]") {
  const std::vector<std::pair<std::string, Overrides>> cells = {
      {"dale_rnn.cell", {{"n", 6}, {"n_out", 3}, {"n_in", 2}}},
      {"gru.cell", {{"n", 6}, {"n_in", 2}}},
      {"pbrc.cell", {{"n", 5}, {"n_in", 2}}},
  };
  for (const auto& [name, o] : cells) {
    DYNAMIC_SECTION(name) {
      StepIR ir = lowerCell(name, o);
      const ir::Layout& L = ir.layout;
      const int64_t B = 3;
      std::mt19937 rng(17);
      std::vector<double> theta = rnd(L.paramSize, rng, 0.4), x = rnd(L.stateSize * B, rng, 0.5);
      std::vector<double> u = rnd(L.inputSize * B, rng, 1), xi = rnd(L.noiseSize * B, rng, 1);
      std::vector<double> v = rnd(L.stateSize * B, rng, 1), c = rnd(L.stateSize * B, rng, 1);
      std::vector<double> zeroOut(L.outputSize * B, 0.0);
      eval::Evaluator ref(ir);
      // F(theta) = c . w(theta), w = v^T dx'/dx from the ordinary backward step (no output term).
      auto F = [&](const std::vector<double>& p) {
        std::vector<double> w(L.stateSize * B), dx(L.inputSize * B), dp(L.paramSize, 0.0);
        ref.run(Stage::Backward, {.params = p.data(),
                                  .state = x.data(),
                                  .input = u.data(),
                                  .noise = xi.data(),
                                  .dStateNext = v.data(),
                                  .dOutput = zeroOut.data(),
                                  .dState = w.data(),
                                  .dInput = dx.data(),
                                  .dParams = dp.data(),
                                  .batch = B});
        return dot(c, w);
      };
      std::vector<double> g(L.paramSize, 0.0);
      ref.run(Stage::Omega, {.params = theta.data(),
                             .state = x.data(),
                             .input = u.data(),
                             .noise = xi.data(),
                             .dParams = g.data(),
                             .v = v.data(),
                             .cotangent = c.data(),
                             .batch = B});
      for (int dir = 0; dir < 3; ++dir) {
        std::vector<double> d = rnd(L.paramSize, rng, 1);
        double nd = std::sqrt(dot(d, d));
        for (double& e : d) e /= nd;
        double ad = dot(g, d), best = INFINITY;
        for (double h : {1e-3, 1e-4, 1e-5, 1e-6}) {
          std::vector<double> pp = theta, pm = theta;
          for (size_t i = 0; i < d.size(); ++i) pp[i] += h * d[i], pm[i] -= h * d[i];
          double fd = (F(pp) - F(pm)) / (2 * h);
          best = std::min(best, std::fabs(fd - ad) / std::max({1e-8, std::fabs(fd), std::fabs(ad)}));
        }
        INFO("direction " << dir << ": d/dtheta (c . w) . d = " << ad);
        CHECK(best <= 1e-6);
      }
      // The JIT's Omega function equals the evaluator's, and accumulates.
      for (bool f64 : {true, false}) {
        std::vector<double> got(L.paramSize);
        if (f64) {
          auto k = compileCell<double>(ir, {.omega = true});
          std::vector<double> acc(L.paramSize, 0.5);
          k->run(Stage::Omega, {.params = theta.data(),
                                .state = x.data(),
                                .input = u.data(),
                                .noise = xi.data(),
                                .dParams = acc.data(),
                                .v = v.data(),
                                .cotangent = c.data(),
                                .batch = B});
          for (int64_t i = 0; i < L.paramSize; ++i) got[i] = acc[i] - 0.5;
        } else {
          auto k = compileCell<float>(ir, {.omega = true});
          auto f = [](const std::vector<double>& a) { return std::vector<float>(a.begin(), a.end()); };
          std::vector<float> t = f(theta), xs = f(x), us = f(u), xis = f(xi), vs = f(v), cs = f(c);
          std::vector<float> acc(L.paramSize, 0.0f);
          k->run(Stage::Omega, {.params = t.data(),
                                .state = xs.data(),
                                .input = us.data(),
                                .noise = xis.data(),
                                .dParams = acc.data(),
                                .v = vs.data(),
                                .cotangent = cs.data(),
                                .batch = B});
          got.assign(acc.begin(), acc.end());
        }
        double num = 0, den = 1e-300;
        for (int64_t i = 0; i < L.paramSize; ++i)
          num = std::max(num, std::fabs(got[i] - g[i])), den = std::max(den, std::fabs(g[i]));
        INFO((f64 ? "f64" : "f32") << " relative error " << num / den);
        CHECK(num / den <= (f64 ? 1e-10 : 1e-4));
      }
    }
  }
}

TEST_CASE("a kernel compiled without Omega says so", "[omega]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 4}});
  auto k = compileCell<double>(ir);
  std::vector<double> z(1000, 0.0);
  CHECK_THROWS_WITH(k->run(Stage::Omega, {.params = z.data(),
                                          .state = z.data(),
                                          .input = z.data(),
                                          .noise = z.data(),
                                          .dParams = z.data(),
                                          .v = z.data(),
                                          .cotangent = z.data(),
                                          .batch = 1}),
                    Catch::Contains("without the Omega function"));
}
