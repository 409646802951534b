// Spikes: comparisons, where(c, a, b) and heaviside(x, k) with its surrogate gradient.
// Comparisons are 1 or 0 and pass no gradient; where sends the adjoint to the side it picked; the
// gradient of heaviside is the fast-sigmoid surrogate 1 / (1 + k|x|)^2 (Zenke & Ganguli 2018), not
// its true derivative (0 almost everywhere), so it is tested against that rule written out here,
// and finite differences only for the parts of a cell that do not pass through heaviside.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <random>
#include <string>
#include <vector>

#include "GradCheck.h"
#include "autodiff/PrintGrad.h"

using namespace cellc;
using namespace cellc::testing;

namespace {

struct OneStep {
  std::vector<double> next, out, dState, dInput, dParams;
};

// One step of a cell, forward and backward with adjoints dNext (state') and dOut (outputs).
OneStep step(const StepIR& ir, const std::vector<double>& params, const std::vector<double>& state,
             const std::vector<double>& input, const std::vector<double>& dNext,
             const std::vector<double>& dOut, int64_t B) {
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  OneStep r;
  r.next.assign(L.stateSize * B, 0.0);
  r.out.assign(L.outputSize * B, 0.0);
  r.dState.assign(L.stateSize * B, 0.0);
  r.dInput.assign(L.inputSize * B, 0.0);
  r.dParams.assign(L.paramSize, 0.0);
  ev.run(Stage::Forward, {.params = params.data(),
                          .state = state.data(),
                          .input = input.data(),
                          .stateNext = r.next.data(),
                          .output = r.out.data(),
                          .batch = B});
  ev.run(Stage::Backward, {.params = params.data(),
                           .state = state.data(),
                           .input = input.data(),
                           .dStateNext = dNext.data(),
                           .dOutput = dOut.data(),
                           .dState = r.dState.data(),
                           .dInput = r.dInput.data(),
                           .dParams = r.dParams.data(),
                           .batch = B});
  return r;
}

// The surrogate rule, written independently of the compiler: d heaviside(x) / dx := 1 / (1 + k|x|)^2.
double surrogate(double x, double k) { return 1.0 / ((1.0 + k * std::fabs(x)) * (1.0 + k * std::fabs(x))); }

}  // namespace

TEST_CASE("comparisons give 1 or 0 and where picks its side", "[spikes]") {
  const char* src = R"(cell cmp {
  dim n = 5
  state h[n] = 0
  param b ~ fill(0.5)
  h' = h
  output gt = h > b
  output lt = h < b
  output ge = h >= b
  output le = h <= b
  output w = where(h - b, h, -h)
  output nan_side = where(h > 0, h, log(h))
})";
  StepIR ir = lowerText("cmp.cell", src);
  const std::vector<double> h = {-1.0, 0.5, 0.50000001, 2.0, 0.0};
  std::vector<double> dNext(5, 0.0), dOut(30, 0.0);
  OneStep r = step(ir, {0.5}, h, {}, dNext, dOut, 1);
  auto slice = [&](int i) { return std::vector<double>(r.out.begin() + 5 * i, r.out.begin() + 5 * i + 5); };
  CHECK(slice(0) == std::vector<double>{0, 0, 1, 1, 0});
  CHECK(slice(1) == std::vector<double>{1, 0, 0, 0, 1});
  CHECK(slice(2) == std::vector<double>{0, 1, 1, 1, 0});
  CHECK(slice(3) == std::vector<double>{1, 1, 0, 0, 1});
  // where(c, a, b): c != 0 picks a (any sign), c == 0 picks b.
  CHECK(slice(4) == std::vector<double>{-1.0, -0.5, 0.50000001, 2.0, 0.0});
  // The side not picked does not leak into the value: log(-1) is NaN, log(0) is -inf.
  std::vector<double> ns = slice(5);
  CHECK(ns[2] == 0.50000001);
  CHECK(ns[3] == 2.0);
  CHECK(std::isnan(ns[0]));  // h = -1: picks log(-1)
  CHECK(ns[4] == -std::numeric_limits<double>::infinity());
}

TEST_CASE("comparisons pass no gradient and where sends it to the side it picked", "[spikes][gradients]") {
  // Away from ties, where(c, a, b) is a or b locally, so finite differences hold everywhere.
  const char* src = R"(cell wh {
  dim n = 4
  state h[n] = 0
  param a[n] ~ zeros()
  param b ~ zeros()
  h' = where(h > 0, a * h, b * h * h) + (h >= a) * a + (h < b) * h + (h <= 1) - where(h, 0.5, h)
})";
  const std::vector<double> params = {0.3, -1.2, 0.7, 2.0, -0.4};
  for (const std::vector<double>& state : {std::vector<double>{0.2, -1.5, 1.3, -0.3},
                                           std::vector<double>{-0.1, 0.4, -2.0, 1.7}}) {
    StepIR ir = lowerText("wh.cell", src);
    std::vector<double> ones(4, 1.0);
    OneStep r = step(ir, params, state, {}, ones, {}, 1);
    auto lossAt = [&](const std::vector<double>& p, const std::vector<double>& s) {
      return dot(ones, step(ir, p, s, {}, ones, {}, 1).next);
    };
    for (size_t i = 0; i < params.size(); ++i) {
      FdResult fd = compareWithFd(r.dParams[i], [&](double eps) {
        std::vector<double> p = params;
        p[i] += eps;
        return lossAt(p, state);
      });
      INFO("param " << i << ": " << fd.str());
      CHECK(fd.err <= kFdTolerance);
    }
    for (size_t i = 0; i < state.size(); ++i) {
      FdResult fd = compareWithFd(r.dState[i], [&](double eps) {
        std::vector<double> s = state;
        s[i] += eps;
        return lossAt(params, s);
      });
      INFO("state " << i << ": " << fd.str());
      CHECK(fd.err <= kFdTolerance);
    }
  }
  // Exactly: a comparison's derivative is 0 in both operands, where's is 0 in its condition.
  StepIR ir = lowerText("c.cell", "cell c { state h = 0\n param b ~ zeros()\n h' = (h > b) + (b <= h) + where(h, b, 2) }");
  OneStep r = step(ir, {0.25}, {0.5}, {}, {1.0}, {}, 1);
  CHECK(r.dState == std::vector<double>{0.0});
  CHECK(r.dParams == std::vector<double>{1.0});  // only through where's first side
}

TEST_CASE("heaviside: 1 where x > 0, and its gradient is the fast-sigmoid surrogate rule", "[spikes][gradients]") {
  // u = v + w x - th; v' = heaviside(u) + 0.5 heaviside(v, 2.5); y = sum(w * heaviside(u, 25)).
  // With the loss <a, v'> + <c, y>, the rule 1 / (1 + k|x|)^2 in place of heaviside's derivative:
  //   dv = a (sg10(u) + 0.5 sg2.5(v)) + c w sg25(u),   dx = (a sg10(u) + c w sg25(u)) w,
  //   dw = sum_b (a sg10(u) + c w sg25(u)) x + c H(u - 0 by 25),   dth = -sum (a sg10(u) + c w sg25(u)).
  const char* src = R"(cell spike {
  dim n = 5
  input x[n]
  state v[n] = 0
  param w[n] ~ zeros()
  param th ~ zeros()
  u = v + w * x - th
  v' = heaviside(u) + 0.5 * heaviside(v, 2.5)
  output y = sum(w * heaviside(u, 25))
})";
  StepIR ir = lowerText("spike.cell", src);
  const int64_t B = 3, n = 5;
  std::mt19937 rng(17);
  std::vector<double> params = randn(rng, n + 1, 0.5);
  // States far from, near and exactly at the step (v = 0, and u = 0 where w x = th - v).
  std::vector<double> v = randn(rng, n * B, 1.0), x = randn(rng, n * B, 1.0);
  v[0] = 0.0, v[1] = 1e-9, v[2] = -1e-9, v[3] = 40.0, v[4] = -40.0;
  x[5] = (params[n] - v[5]) / params[0];  // u = 0 (to rounding) at b = 1, i = 0
  std::vector<double> a = randn(rng, n * B, 1.0), c = randn(rng, B, 1.0);
  OneStep r = step(ir, params, v, x, a, c, B);

  std::vector<double> dv(n * B), dx(n * B), dp(n + 1, 0.0), next(n * B), y(B, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n; ++i) {
      const size_t j = static_cast<size_t>(b * n + i);
      const double w = params[i], th = params[n];
      const double u = v[j] + w * x[j] - th;
      const double Hu = u > 0 ? 1.0 : 0.0, Hv = v[j] > 0 ? 1.0 : 0.0;
      next[j] = Hu + 0.5 * Hv;
      y[b] += w * Hu;
      const double du = a[j] * surrogate(u, 10) + c[b] * w * surrogate(u, 25);
      dv[j] = du + a[j] * 0.5 * surrogate(v[j], 2.5);
      dx[j] = du * w;
      dp[i] += du * x[j] + c[b] * Hu;
      dp[n] -= du;
    }
  auto close = [](const std::vector<double>& got, const std::vector<double>& want) {
    double num = 0, den = 1e-300;
    for (size_t i = 0; i < want.size(); ++i) {
      num = std::max(num, std::fabs(got[i] - want[i]));
      den = std::max(den, std::fabs(want[i]));
    }
    return num / den;
  };
  CHECK(r.next == next);
  CHECK(close(r.out, y) <= 1e-15);
  CHECK(close(r.dState, dv) <= 1e-14);
  CHECK(close(r.dInput, dx) <= 1e-14);
  CHECK(close(r.dParams, dp) <= 1e-14);
  // At the step itself the surrogate is 1 (k irrelevant); far from it (v = 40) small, not zero.
  CHECK(surrogate(0.0, 10) == 1.0);
  CHECK(r.dState[3] != 0.0);
}

TEST_CASE("a cell with heaviside: finite differences hold for every gradient not through it", "[spikes][gradients]") {
  // The spike s depends on the input alone, so the gradients in W, b and the state do not pass
  // through heaviside's argument: they are true derivatives, and central differences measure them.
  const char* src = R"(cell gate {
  dim n = 3
  input x[n]
  state h[n] = 0
  param W[n, n] ~ zeros()
  param b[n] ~ zeros()
  s = heaviside(x - 0.2)
  h' = tanh(W @ h + b) * s + (1 - s) * 0.9 * h - where(x < -0.5, h * h, 0)
  output y = sum(h' * s)
})";
  StepIR ir = lowerText("gate.cell", src);
  const int64_t B = 2;
  std::mt19937 rng(5);
  std::vector<double> params = randn(rng, 12, 0.5), h = randn(rng, 6, 1.0);
  const std::vector<double> x = {0.9, -0.7, 0.1, -0.2, 1.4, -1.5};  // |x - 0.2| >= 0.1: no step nearby
  std::vector<double> a = randn(rng, 6, 1.0), c = randn(rng, B, 1.0);
  OneStep r = step(ir, params, h, x, a, c, B);
  auto lossAt = [&](const std::vector<double>& p, const std::vector<double>& s) {
    OneStep f = step(ir, p, s, x, a, c, B);
    return dot(a, f.next) + dot(c, f.out);
  };
  for (int which = 0; which < 2; ++which)
    for (int dir = 0; dir < 3; ++dir) {
      const std::vector<double>& base = which == 0 ? params : h;
      std::vector<double> d = randomUnit(rng, static_cast<int64_t>(base.size()));
      FdResult fd = compareWithFd(dot(which == 0 ? r.dParams : r.dState, d), [&](double eps) {
        std::vector<double> p = params, s = h;
        axpy(which == 0 ? p : s, eps, d);
        return lossAt(p, s);
      });
      INFO((which == 0 ? "params: " : "state: ") << fd.str());
      CHECK(fd.err <= kFdTolerance);
    }
  // ... while the input's gradient is the surrogate's, which differences do not see (they give
  // 0 for the jump of s away from x = 0.2): d/dx_j of the loss is (a_j (tanh(..) - 0.9 h_j)
  // + c (h'_j + s_j (tanh(..) - 0.9 h_j))) / (1 + 10 |x_j - 0.2|)^2.
  for (size_t j = 0; j < 6; ++j) {
    const int64_t bi = static_cast<int64_t>(j) / 3, i = static_cast<int64_t>(j) % 3;
    double pre = params[9 + static_cast<size_t>(i)];
    for (int64_t k = 0; k < 3; ++k) pre += params[static_cast<size_t>(i * 3 + k)] * h[static_cast<size_t>(bi * 3 + k)];
    const double s = x[j] > 0.2 ? 1.0 : 0.0;
    const double dhds = std::tanh(pre) - 0.9 * h[j];
    const double want = (a[j] * dhds + c[static_cast<size_t>(bi)] * (r.next[j] + s * dhds)) * surrogate(x[j] - 0.2, 10);
    INFO("input " << j);
    CHECK(r.dInput[j] == Approx(want).epsilon(1e-13).margin(1e-15));
  }
}

TEST_CASE("cellc grad shows heaviside's surrogate and where's routing", "[spikes][print]") {
  const char* src = R"(cell g {
  input x
  state v = 0
  param th ~ fill(1)
  v' = 0.9 * v + x - heaviside(v - th, 4) * th + where(x > 0, v, 0)
})";
  SourceFile file("g.cell", src);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  StepIR ir = lower(*prog);
  std::string text = autodiff::printGradient(*prog, ir);
  INFO(text);
  CHECK(text.find("heaviside(v - th, 4)") != std::string::npos);
  CHECK(text.find("heaviside(x, fast_sigmoid = k) passes the surrogate gradient") != std::string::npos);
  CHECK(text.find("1 + 4 * abs(v - th)") != std::string::npos);
  CHECK(text.find("where(") != std::string::npos);
}

TEST_CASE("heaviside's named surrogates: each gradient equals its rule written out by hand",
          "[spikes][gradients][surrogate]") {
  // v' = heaviside(v - 0.3, NAME = k) * 2 with the loss <a, v'>: dv = 2 a surrogate(v - 0.3).
  // The rules, written independently of the compiler (docs/language.md, Spikes):
  struct Rule {
    const char* name;
    double (*d)(double x, double k);
  };
  const Rule rules[] = {
      {"fast_sigmoid", [](double x, double k) { return 1.0 / ((1.0 + k * std::fabs(x)) * (1.0 + k * std::fabs(x))); }},
      {"sigmoid", [](double x, double k) { const double s = 1.0 / (1.0 + std::exp(-k * x)); return k * s * (1.0 - s); }},
      {"atan", [](double x, double k) { const double t = M_PI / 2 * k * x; return k / 2 / (1.0 + t * t); }},
      {"triangle", [](double x, double k) { return std::max(0.0, 1.0 - k * std::fabs(x)); }},
  };
  for (const Rule& rule : rules)
    for (double k : {0.5, 4.0, 25.0}) {
      INFO(rule.name << " = " << k);
      std::ostringstream src;
      src << "cell s {\n  dim n = 8\n  state v[n] = 0\n  v' = heaviside(v - 0.3, " << rule.name << " = " << k
          << ") * 2\n}\n";
      StepIR ir = lowerText("s.cell", src.str());
      const int64_t B = 2, n = 8;
      // At, near and far from the step, inside and outside the triangle's support 1 / k.
      std::vector<double> v = {0.3, 0.3 + 1e-9, 0.3 - 1e-9, 0.3 + 0.01, 0.3 - 0.05, 0.3 + 0.5, -3.0, 40.0,
                               0.3 + 1.0 / k, 0.3 - 0.999 / k, 0.3 + 1.001 / k, 0.3 - 0.2, 0.9, -0.2, 0.31, 0.29};
      std::mt19937 rng(3);
      std::vector<double> a = randn(rng, n * B, 1.0);
      OneStep r = step(ir, {}, v, {}, a, {}, B);
      double worst = 0;
      int nonzero = 0;
      for (size_t j = 0; j < v.size(); ++j) {
        CHECK(r.next[j] == (v[j] - 0.3 > 0 ? 2.0 : 0.0));
        const double want = 2 * a[j] * rule.d(v[j] - 0.3, k);
        worst = std::max(worst, std::fabs(r.dState[j] - want) / std::max(1.0, std::fabs(want)));
        nonzero += want != 0;
      }
      CHECK(worst <= 1e-14);
      CHECK(nonzero >= 8);  // the rule is exercised, not only its zeros
    }
}

TEST_CASE("heaviside's surrogate is named in cellc grad, and a wrong name is E209 at its key", "[spikes][print]") {
  const char* src = R"(cell g {
  input x
  state v = 0
  v' = 0.9 * v + x - heaviside(v - 1, atan = 2)
})";
  SourceFile file("g.cell", src);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  std::string text = autodiff::printGradient(*prog, lower(*prog));
  INFO(text);
  CHECK(text.find("heaviside(x, atan = k) passes the surrogate gradient (k / 2) / (1 + (pi / 2 * k * x)^2)") !=
        std::string::npos);
  CHECK(text.find("heaviside(v - 1, atan = 2)") != std::string::npos);

  SourceFile bad("bad.cell", "cell g {\n  input x\n  state v = 0\n  v' = x - heaviside(v - 1, fast_sigmod = 2)\n}\n");
  DiagnosticSink d2;
  CHECK_FALSE(loadCell(bad, {}, d2));
  REQUIRE(d2.all().size() == 1);
  CHECK(d2.all()[0].code == Code::E209);
  CHECK(d2.all()[0].loc.line == 4);
  CHECK(d2.all()[0].loc.col == 29);
  CHECK(d2.all()[0].message.find("did you mean fast_sigmoid?") != std::string::npos);
}

// ---- cells/lif.cell: its BPTT gradient against the surrogate rule, written out by hand ------------

namespace {

struct LifRef {
  std::vector<double> dParams, dInit;  // dParams in the cell's order: W_in, W_rec, b, W_out, b_out
  std::vector<std::vector<double>> z;  // [T][B * n_out]
  int64_t spikes = 0, silent = 0;      // over every unit and step
};

// cells/lif.cell's equations and their backward with H' := 1 / (1 + k|x|)^2, in plain loops.
// Params p, initial state v0 [B][n] then o0 [B][n_out], inputs x [T][B][n_in]; the loss
// sum_t <w_t, z_t> + <vT, (v_T, o_T)>.
LifRef lifByHand(int64_t n, int64_t nIn, int64_t nOut, int64_t B, const std::vector<double>& p,
                 const std::vector<double>& init, const std::vector<std::vector<double>>& x,
                 const std::vector<std::vector<double>>& w, const std::vector<double>& vT) {
  const double dt = 10, beta = std::exp(-dt / 20), betaOut = std::exp(-dt / 100), theta = 1, k = 10;
  const size_t T = x.size();
  const size_t oWin = 0, oWrec = oWin + n * nIn, oB = oWrec + n * n, oWout = oB + n, oBout = oWout + nOut * n;
  auto H = [](double u) { return u > 0 ? 1.0 : 0.0; };
  LifRef r;
  r.dParams.assign(p.size(), 0.0);
  r.dInit.assign(init.size(), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    // Forward, keeping v_t for t = 0..T.
    std::vector<std::vector<double>> v(T + 1, std::vector<double>(n)), o(T + 1, std::vector<double>(nOut));
    for (int64_t i = 0; i < n; ++i) v[0][i] = init[b * n + i];
    for (int64_t j = 0; j < nOut; ++j) o[0][j] = init[B * n + b * nOut + j];
    r.z.resize(T, std::vector<double>(B * nOut));
    for (size_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < n; ++i) {
        double a = beta * v[t][i] + p[oB + i] - theta * H(v[t][i] - theta);
        for (int64_t j = 0; j < n; ++j) a += p[oWrec + i * n + j] * H(v[t][j] - theta);
        for (int64_t j = 0; j < nIn; ++j) a += p[oWin + i * nIn + j] * x[t][b * nIn + j];
        v[t + 1][i] = a;
        (H(a - theta) > 0 ? r.spikes : r.silent)++;
      }
      for (int64_t j = 0; j < nOut; ++j) {
        double a = betaOut * o[t][j];
        for (int64_t i = 0; i < n; ++i) a += p[oWout + j * n + i] * H(v[t + 1][i] - theta);
        o[t + 1][j] = a;
        r.z[t][b * nOut + j] = a + p[oBout + j];
      }
    }
    // Backward.
    std::vector<double> gv(n), go(nOut);
    for (int64_t i = 0; i < n; ++i) gv[i] = vT[b * n + i];
    for (int64_t j = 0; j < nOut; ++j) go[j] = vT[B * n + b * nOut + j];
    for (size_t t = T; t-- > 0;) {
      for (int64_t j = 0; j < nOut; ++j) {
        go[j] += w[t][b * nOut + j];
        r.dParams[oBout + j] += w[t][b * nOut + j];
      }
      for (int64_t i = 0; i < n; ++i) {  // o_{t+1} = beta_out o_t + W_out H(v_{t+1} - theta)
        const double q = H(v[t + 1][i] - theta);
        double gq = 0;
        for (int64_t j = 0; j < nOut; ++j) {
          r.dParams[oWout + j * n + i] += go[j] * q;
          gq += p[oWout + j * n + i] * go[j];
        }
        gv[i] += gq * surrogate(v[t + 1][i] - theta, k);
      }
      std::vector<double> gs(n, 0.0);  // v_{t+1} = beta v_t + W_rec s_t + W_in x_t + b - theta s_t
      for (int64_t i = 0; i < n; ++i) {
        r.dParams[oB + i] += gv[i];
        for (int64_t j = 0; j < nIn; ++j) r.dParams[oWin + i * nIn + j] += gv[i] * x[t][b * nIn + j];
        for (int64_t j = 0; j < n; ++j) {
          r.dParams[oWrec + i * n + j] += gv[i] * H(v[t][j] - theta);
          gs[j] += p[oWrec + i * n + j] * gv[i];
        }
        gs[i] -= theta * gv[i];
      }
      for (int64_t i = 0; i < n; ++i) gv[i] = beta * gv[i] + gs[i] * surrogate(v[t][i] - theta, k);
      for (int64_t j = 0; j < nOut; ++j) go[j] *= betaOut;
    }
    for (int64_t i = 0; i < n; ++i) r.dInit[b * n + i] = gv[i];
    for (int64_t j = 0; j < nOut; ++j) r.dInit[B * n + b * nOut + j] = go[j];
  }
  return r;
}

double maxRel(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, std::fabs(got[i] - want[i]));
    den = std::max(den, std::fabs(want[i]));
  }
  return num / den;
}

}  // namespace

TEST_CASE("lif.cell: the BPTT gradient equals the surrogate rule written out by hand", "[spikes][gradients][lif]") {
  const int64_t n = 6, nIn = 2, nOut = 3, B = 3, T = 20;
  StepIR ir = lowerFile(CELLC_SOURCE_DIR "/cells/lif.cell", {{"n", n}, {"n_in", nIn}, {"n_out", nOut}});
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  REQUIRE(L.paramSize == n * nIn + n * n + n + nOut * n + nOut);
  REQUIRE(L.stateSize == n + nOut);
  std::mt19937 rng(2019);
  // Weights and inputs large enough that units cross the threshold often, but not always.
  runtime::Sequence<double> seq = randomSequence(L, B, T, rng, 0.8, 0.3, 1.0, 1.0);
  LinearLoss loss = LinearLoss::random(L, B, T, rng);
  auto traj = runtime::forwardSequence<double>(ev, seq);
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);
  LifRef ref = lifByHand(n, nIn, nOut, B, seq.params, seq.initialState, seq.inputs, loss.w, loss.v);
  INFO("spikes " << ref.spikes << ", silent " << ref.silent);
  CHECK(ref.spikes > T * B);  // the surrogate's path through the spikes is exercised
  CHECK(ref.silent > T * B);
  for (int64_t t = 0; t < T; ++t) CHECK(maxRel(traj.outputs[t], ref.z[t]) <= 1e-13);
  CHECK(maxRel(grads.dParams, ref.dParams) <= 1e-12);
  CHECK(maxRel(grads.dInitialState, ref.dInit) <= 1e-12);

  // Away from the spikes: the readout's W_out and b_out do not change any spike, so their
  // gradient is a true derivative and central differences measure it.
  const ir::Slot* wOut = L.find(ir::Role::Param, "W_out");
  const ir::Slot* bOut = L.find(ir::Role::Param, "b_out");
  REQUIRE(wOut);
  REQUIRE(bOut);
  for (const ir::Slot* slot : {wOut, bOut}) {
    std::vector<double> d(L.paramSize, 0.0);
    std::vector<double> u = randomUnit(rng, slot->size);
    std::copy(u.begin(), u.end(), d.begin() + slot->offset);
    FdResult fd = compareWithFd(dot(grads.dParams, d), [&](double eps) {
      runtime::Sequence<double> s = seq;
      axpy(s.params, eps, d);
      return loss(runtime::forwardSequence<double>(ev, s));
    });
    INFO(slot->name << ": " << fd.str());
    CHECK(fd.err <= kFdTolerance);
  }
}
