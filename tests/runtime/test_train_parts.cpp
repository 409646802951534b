// The parts of training that do not run a cell: optimizers (runtime/train/Optimizer.h), elastic
// weight consolidation and the empirical Fisher (runtime/train/Ewc.h), checkpoint files
// (runtime/train/Checkpoint.h).
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/Lower.h"
#include "sema/Program.h"
#include "train/Checkpoint.h"
#include "train/Ewc.h"
#include "train/Optimizer.h"

using namespace cellc;
using namespace cellc::runtime;
using Catch::Contains;

namespace {

namespace fs = std::filesystem;

StepIR lowerText(const std::string& text) {
  SourceFile file("test.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog) {
    std::ostringstream os;
    diags.render(os, file);
    throw std::runtime_error("cannot load the test cell:\n" + os.str());
  }
  return lower(*prog);
}

// W [3, 3], b [3], W_out [2, 3]: 18 params.
const char* kCell =
    "cell t {\n"
    "  dim n = 3\n"
    "  state h[n] = 0\n"
    "  param W[n, n] ~ orthogonal()\n"
    "  param b[n] ~ zeros()\n"
    "  param W_out[2, n] ~ lecun_normal()\n"
    "  h' = tanh(W @ h + b)\n"
    "  output y = W_out @ h'\n"
    "}\n";

const ir::Slot& slot(const ir::Layout& layout, const std::string& name) {
  const ir::Slot* s = layout.find(ir::Role::Param, name);
  if (!s) throw std::runtime_error("no param " + name);
  return *s;
}

bool sameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}
bool sameBits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

std::vector<double> randomVector(std::mt19937_64& rng, size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_train_parts_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Freeze masks and optimizers
// ------------------------------------------------------------------------------------------------

TEST_CASE("FreezeMask: whole params, parts of params, and errors", "[optimizer]") {
  StepIR ir = lowerText(kCell);
  const ir::Layout& layout = ir.layout;
  REQUIRE(layout.paramSize == 18);
  const ir::Slot& W = slot(layout, "W");
  const ir::Slot& b = slot(layout, "b");
  const ir::Slot& Wout = slot(layout, "W_out");

  FreezeMask none = FreezeMask::none(18);
  CHECK(none.size() == 18);
  CHECK(none.frozenCount() == 0);

  FreezeMask m;
  m.freeze(layout, "W_out");
  REQUIRE(m.size() == 18);
  for (int64_t i = 0; i < 18; ++i)
    CHECK(m.isFrozen(static_cast<size_t>(i)) == (i >= Wout.offset && i < Wout.offset + Wout.size));

  // The diagonal of W, on top of W_out.
  std::vector<uint8_t> diag(9, 0);
  diag[0] = diag[4] = diag[8] = 1;
  m.freezeWhere(layout, "W", diag);
  CHECK(m.frozenCount() == static_cast<size_t>(Wout.size) + 3);
  for (int k = 0; k < 9; ++k)
    CHECK(m.isFrozen(static_cast<size_t>(W.offset + k)) == (k % 4 == 0));
  for (int k = 0; k < 3; ++k) CHECK_FALSE(m.isFrozen(static_cast<size_t>(b.offset + k)));

  CHECK_THROWS_AS(m.freeze(layout, "nope"), std::invalid_argument);
  CHECK_THROWS_WITH(m.freeze(layout, "nope"),
                    Contains("unknown param 'nope'") && Contains("W_out"));
  CHECK_THROWS_WITH(m.freezeWhere(layout, "W", std::vector<uint8_t>(8, 1)),
                    Contains("'W'") && Contains("8") && Contains("9"));
  CHECK_THROWS_AS(m.freezeWhere(layout, "W", std::vector<uint8_t>(10, 1)), std::invalid_argument);
  FreezeMask wrong = FreezeMask::none(5);
  CHECK_THROWS_AS(wrong.freeze(layout, "b"), std::invalid_argument);
}

TEST_CASE("Sgd: global-norm clipping above and below the threshold", "[optimizer]") {
  const double lr = 0.1;
  SECTION("below: the plain gradient") {
    Sgd sgd(lr, 1.0);
    std::vector<double> p = {1.0, 2.0, -3.0};
    std::vector<double> g = {0.3, 0.4, 0.0};  // norm 0.5
    sgd.step(p, g);
    CHECK(sgd.lastGradNorm() == Approx(0.5).epsilon(1e-15));
    CHECK(sameBits(p, {1.0 - lr * 0.3, 2.0 - lr * 0.4, -3.0}));
    CHECK(sgd.steps() == 1);
  }
  SECTION("above: scaled to the clip norm") {
    Sgd sgd(lr, 1.0);
    std::vector<double> p = {1.0, 2.0};
    std::vector<double> g = {3.0, 4.0};  // norm 5: factor 1/5
    sgd.step(p, g);
    CHECK(sgd.lastGradNorm() == 5.0);
    CHECK(p[0] == Approx(1.0 - lr * 0.6).epsilon(1e-15));
    CHECK(p[1] == Approx(2.0 - lr * 0.8).epsilon(1e-15));
    // The step taken has exactly the clip norm's length (times lr).
    CHECK(std::hypot(p[0] - 1.0, p[1] - 2.0) == Approx(lr * 1.0).epsilon(1e-14));
  }
  SECTION("at the threshold and without clipping") {
    Sgd at(lr, 5.0), off(lr, 0.0);
    std::vector<double> p1 = {1.0, 2.0}, p2 = p1;
    at.step(p1, {3.0, 4.0});
    off.step(p2, {3.0, 4.0});
    CHECK(sameBits(p1, {1.0 - lr * 3.0, 2.0 - lr * 4.0}));
    CHECK(sameBits(p2, p1));
  }
  SECTION("huge finite gradients: the norm does not overflow") {
    Sgd sgd(1.0, 1.0);
    std::vector<double> p = {0.0, 0.0};
    sgd.step(p, {3e200, 4e200});
    CHECK(sgd.lastGradNorm() == Approx(5e200).epsilon(1e-14));
    CHECK(p[0] == Approx(-0.6).epsilon(1e-14));
    CHECK(p[1] == Approx(-0.8).epsilon(1e-14));
  }
  SECTION("sizes and bad values") {
    Sgd sgd(lr, 1.0, FreezeMask::none(3));
    std::vector<double> p(2, 0.0);
    CHECK_THROWS_AS(sgd.step(p, {1.0, 1.0}), std::invalid_argument);
    std::vector<double> q(3, 0.0);
    CHECK_THROWS_AS(sgd.step(q, {1.0, 1.0}), std::invalid_argument);
    CHECK_THROWS_AS(Sgd(-1.0), std::invalid_argument);
    CHECK_THROWS_AS(Sgd(std::nan("")), std::invalid_argument);
    CHECK_THROWS_AS(Adam(0.1, 1.0), std::invalid_argument);
  }
}

TEST_CASE("Optimizers: frozen elements never move and do not count in the norm", "[optimizer]") {
  FreezeMask mask = FreezeMask::none(4);
  mask.frozen[1] = 1;
  mask.frozen[3] = 1;
  const std::vector<double> p0 = {1.0, 2.0, 3.0, 4.0};
  const std::vector<double> g = {0.3, 1e6, 0.4, std::nan("")};  // unfrozen norm 0.5

  Sgd sgd(0.1, 1.0, mask);
  std::vector<double> p = p0;
  sgd.step(p, g);
  CHECK(sgd.lastGradNorm() == Approx(0.5).epsilon(1e-15));  // 1e6 and NaN ignored
  CHECK(sameBits(p[1], p0[1]));
  CHECK(sameBits(p[3], p0[3]));
  CHECK(sameBits(p[0], 1.0 - 0.1 * 0.3));  // no clipping: the norm of what moves is 0.5
  CHECK(sameBits(p[2], 3.0 - 0.1 * 0.4));

  Adam adam(0.01, 0.9, 0.999, 1e-8, mask, 1.0);
  std::vector<double> q = p0;
  for (int k = 0; k < 5; ++k) adam.step(q, g);
  CHECK(sameBits(q[1], p0[1]));
  CHECK(sameBits(q[3], p0[3]));
  CHECK(q[0] != p0[0]);
  CHECK(adam.firstMoment()[1] == 0.0);
  CHECK(adam.secondMoment()[3] == 0.0);
  CHECK(adam.lastGradNorm() == Approx(0.5).epsilon(1e-15));
}

TEST_CASE("Optimizers: a non-finite gradient throws and changes nothing", "[optimizer]") {
  Adam adam(0.1);
  std::vector<double> p = {1.0, 2.0};
  adam.step(p, {0.1, 0.2});
  const std::string before = adam.saveToString();
  const std::vector<double> pBefore = p;
  CHECK_THROWS_AS(adam.step(p, {0.1, std::numeric_limits<double>::infinity()}), std::domain_error);
  CHECK_THROWS_WITH(adam.step(p, {std::nan(""), 0.0}), Contains("element 0"));
  CHECK(adam.saveToString() == before);
  CHECK(sameBits(p, pBefore));
}

TEST_CASE("Adam: a hand-computed 3-step sequence", "[optimizer]") {
  // lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8. Reference values computed in 50-digit decimal
  // arithmetic from m_t = b1 m + (1-b1) g, v_t = b2 v + (1-b2) g^2,
  // theta -= lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps).
  // Step 1 in closed form: m_hat = g, v_hat = g^2, so theta -= lr g / (|g| + eps).
  Adam adam(0.1);
  std::vector<double> p = {1.0, -2.0, 0.5};
  const std::vector<std::vector<double>> grads = {
      {0.5, -1.0, 0.0}, {0.3, 2.0, -0.1}, {-0.2, 0.5, 0.4}};
  const std::vector<std::vector<double>> expected = {
      {9.00000001999999960000e-1, -1.90000000099999999000e+0, 5.00000000000000000000e-1},
      {8.04250986708875437036e-1, -1.93661035347207508821e+0, 5.74413671835647590347e-1},
      {7.54988852763579211077e-1, -1.97817547314677404679e+0, 5.26382393907268863674e-1}};
  for (size_t t = 0; t < 3; ++t) {
    adam.step(p, grads[t]);
    for (size_t i = 0; i < 3; ++i) {
      INFO("step " << t + 1 << " element " << i);
      CHECK(p[i] == Approx(expected[t][i]).epsilon(1e-14));
    }
    if (t == 0) {
      CHECK(p[0] == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-15));
      CHECK(p[1] == Approx(-2.0 + 0.1 * 1.0 / (1.0 + 1e-8)).epsilon(1e-15));
      CHECK(p[2] == 0.5);  // zero gradient: zero moments, no move
    }
  }
  CHECK(adam.steps() == 3);
  CHECK(adam.kind() == "adam");
}

TEST_CASE("Adam and Sgd: the vectorized updates give the scalar formulas' bits", "[optimizer]") {
  // train/UpdateKernels.cpp is built for this machine's vector units; this file is not. Equal
  // bits say that no multiply-add was contracted and no element's arithmetic was reordered.
  const size_t n = 1031;  // not a multiple of any vector width
  std::mt19937_64 rng(5);
  std::normal_distribution<double> N(0, 1);
  for (bool someFrozen : {false, true}) {
    FreezeMask mask = FreezeMask::none(n);
    if (someFrozen)
      for (size_t i = 0; i < n; i += 7) mask.frozen[i] = 1;
    Adam adam(1e-3, 0.9, 0.999, 1e-8, mask, 0);
    Sgd sgd(1e-2, 0, mask);
    std::vector<double> p(n), q(n), ref(n), sref(n), m(n, 0), v(n, 0);
    for (size_t i = 0; i < n; ++i) p[i] = q[i] = ref[i] = sref[i] = N(rng);
    for (int t = 1; t <= 5; ++t) {
      std::vector<double> g(n);
      for (double& x : g) x = N(rng) * 1e-2;
      adam.step(p, g);
      sgd.step(q, g);
      const double c1 = 1 - std::pow(0.9, t), c2 = 1 - std::pow(0.999, t);
      for (size_t i = 0; i < n; ++i) {
        if (mask.isFrozen(i)) continue;
        m[i] = (1 - 0.9) * g[i] + 0.9 * m[i];
        v[i] = (1 - 0.999) * (g[i] * g[i]) + 0.999 * v[i];
        ref[i] -= 1e-3 * ((m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8));
        sref[i] -= 1e-2 * (g[i] * 1.0);
      }
    }
    INFO("some frozen: " << someFrozen);
    size_t adamDiff = 0, sgdDiff = 0;
    for (size_t i = 0; i < n; ++i) {
      adamDiff += std::bit_cast<uint64_t>(p[i]) != std::bit_cast<uint64_t>(ref[i]);
      sgdDiff += std::bit_cast<uint64_t>(q[i]) != std::bit_cast<uint64_t>(sref[i]);
    }
    CHECK(adamDiff == 0);
    CHECK(sgdDiff == 0);
  }
}

TEST_CASE("Optimizers: save and load resume bit for bit", "[optimizer]") {
  const size_t n = 257;
  FreezeMask mask = FreezeMask::none(n);
  for (size_t i = 0; i < n; i += 7) mask.frozen[i] = 1;

  auto make = [&](const std::string& kind) -> std::unique_ptr<Optimizer> {
    if (kind == "sgd") return std::make_unique<Sgd>(0.05, 1.0, mask);
    return std::make_unique<Adam>(1e-3, 0.9, 0.999, 1e-8, mask, 1.0);
  };
  for (std::string kind : {"sgd", "adam"}) {
    INFO(kind);
    std::mt19937_64 rng(42);
    const std::vector<double> p0 = randomVector(rng, n, -1, 1);
    std::vector<std::vector<double>> grads;
    for (int k = 0; k < 5; ++k) grads.push_back(randomVector(rng, n, -0.2, 0.2));

    // 5 steps straight.
    auto a = make(kind);
    std::vector<double> pa = p0;
    for (int k = 0; k < 5; ++k) a->step(pa, grads[static_cast<size_t>(k)]);

    // 2 steps, save, load into a fresh object, 3 more steps.
    auto b = make(kind);
    std::vector<double> pb = p0;
    for (int k = 0; k < 2; ++k) b->step(pb, grads[static_cast<size_t>(k)]);
    std::stringstream state(std::ios::in | std::ios::out | std::ios::binary);
    b->save(state);
    b.reset();
    auto c = make(kind);
    c->load(state);
    CHECK(c->steps() == 2);
    for (int k = 2; k < 5; ++k) c->step(pb, grads[static_cast<size_t>(k)]);

    CHECK(sameBits(pa, pb));
    CHECK(sameBits(a->lastGradNorm(), c->lastGradNorm()));
    CHECK(a->saveToString() == c->saveToString());

    // The same through strings, into an optimizer with an empty mask (it adopts the size).
    auto d = makeOptimizer(kind, 0.05);
    d->loadFromString(a->saveToString());
    CHECK(d->size() == static_cast<int64_t>(n));
    CHECK(d->steps() == 5);
  }
}

TEST_CASE("Optimizers: load refuses state that does not fit, and changes nothing", "[optimizer]") {
  Adam adam(0.1, 0.9, 0.999, 1e-8, FreezeMask::none(3));
  std::vector<double> p = {1, 2, 3};
  adam.step(p, {0.1, 0.2, 0.3});
  const std::string state = adam.saveToString();

  Sgd sgd(0.1, 0, FreezeMask::none(3));
  CHECK_THROWS_WITH(sgd.loadFromString(state), Contains("'adam'") && Contains("'sgd'"));

  Adam bigger(0.1, 0.9, 0.999, 1e-8, FreezeMask::none(4));
  CHECK_THROWS_WITH(bigger.loadFromString(state), Contains("3 elements") && Contains("4"));

  Adam fresh(0.1, 0.9, 0.999, 1e-8, FreezeMask::none(3));
  const std::string freshState = fresh.saveToString();
  for (size_t len = 0; len < state.size(); ++len) {
    INFO("prefix of " << len << " bytes");
    CHECK_THROWS_AS(fresh.loadFromString(state.substr(0, len)), std::runtime_error);
  }
  CHECK_THROWS_WITH(fresh.loadFromString(state + "x"), Contains("after the state"));
  CHECK_THROWS_WITH(fresh.loadFromString("garbage garbage garbage"), Contains("not cellc"));
  std::string v2 = state;
  v2[8] = 2;  // version
  CHECK_THROWS_WITH(fresh.loadFromString(v2), Contains("unsupported version 2"));
  CHECK(fresh.saveToString() == freshState);

  // An element count of 2^60 with an empty mask: refused at the end of the data, no huge
  // allocation.
  Adam open(0.1);
  std::string huge = state;
  uint64_t count = uint64_t(1) << 60;
  std::memcpy(huge.data() + 8 + 4 + 4 + 4, &count, 8);  // magic, version, kind length, "adam"
  CHECK_THROWS_WITH(open.loadFromString(huge), Contains("truncated"));
  CHECK(open.size() == -1);
}

// ------------------------------------------------------------------------------------------------
// EWC and the Fisher
// ------------------------------------------------------------------------------------------------

namespace {

Consolidated randomTask(std::mt19937_64& rng, size_t n, double lambda, const std::string& name) {
  Consolidated c;
  c.anchor = randomVector(rng, n, -1, 1);
  c.fisher = randomVector(rng, n, 0, 2);
  c.lambda = lambda;
  c.task = name;
  return c;
}

// Central differences of the penalty against addGradient, element by element.
void checkGradient(const Ewc& ewc, const std::vector<double>& theta) {
  std::vector<double> grad(theta.size(), 0.0);
  ewc.addGradient(theta, grad);
  const double h = 1e-4;
  for (size_t i = 0; i < theta.size(); ++i) {
    std::vector<double> plus = theta, minus = theta;
    plus[i] += h;
    minus[i] -= h;
    double fd = (ewc.penalty(plus) - ewc.penalty(minus)) / (plus[i] - minus[i]);
    INFO("element " << i << ": analytic " << grad[i] << ", finite difference " << fd);
    CHECK(std::fabs(fd - grad[i]) <= 1e-7 * std::max(std::fabs(grad[i]), 1.0));
  }
}

}  // namespace

TEST_CASE("EWC: penalty and gradient against finite differences, stacked tasks", "[ewc]") {
  std::mt19937_64 rng(7);
  const size_t n = 24;
  Consolidated t1 = randomTask(rng, n, 500, "task1");
  Consolidated t2 = randomTask(rng, n, 10, "task2");
  const std::vector<double> theta = randomVector(rng, n, -1, 1);

  Ewc one, two, only2;
  CHECK(one.penalty(theta) == 0.0);
  one.add(t1);
  two.add(t1);
  two.add(t2);
  only2.add(t2);
  CHECK(two.tasks() == 2);
  CHECK(two.size() == n);

  // The definition, written out.
  double expect1 = 0;
  for (size_t i = 0; i < n; ++i)
    expect1 += 0.5 * 500 * t1.fisher[i] * (theta[i] - t1.anchor[i]) * (theta[i] - t1.anchor[i]);
  CHECK(one.penalty(theta) == Approx(expect1).epsilon(1e-13));
  CHECK(one.penalty(t1.anchor) == 0.0);
  CHECK(two.penalty(theta) == Approx(one.penalty(theta) + only2.penalty(theta)).epsilon(1e-13));

  checkGradient(one, theta);
  checkGradient(two, theta);

  // addGradient adds: the stacked gradient is the sum of the single ones, on top of what was there.
  std::vector<double> g0 = randomVector(rng, n, -1, 1);
  std::vector<double> gTwo = g0, gSum = g0;
  two.addGradient(theta, gTwo);
  one.addGradient(theta, gSum);
  only2.addGradient(theta, gSum);
  for (size_t i = 0; i < n; ++i) CHECK(gTwo[i] == Approx(gSum[i]).epsilon(1e-13));

  // Errors.
  Consolidated bad = t2;
  bad.fisher.pop_back();
  CHECK_THROWS_AS(two.add(bad), std::invalid_argument);
  Consolidated shorter = randomTask(rng, n - 1, 1, "short");
  CHECK_THROWS_WITH(two.add(shorter), Contains("'short'") && Contains("23") && Contains("24"));
  Consolidated negative = t2;
  negative.lambda = -1;
  CHECK_THROWS_AS(two.add(negative), std::invalid_argument);
  CHECK_THROWS_AS(two.penalty(std::vector<double>(n + 1)), std::invalid_argument);
  CHECK(two.tasks() == 2);
}

TEST_CASE("EWC: save and load round-trip exactly", "[ewc]") {
  std::mt19937_64 rng(11);
  Ewc ewc;
  ewc.add(randomTask(rng, 9, 500, "task 1"));
  ewc.add(randomTask(rng, 9, 1e4, ""));
  const std::string bytes = ewc.saveToString();

  Ewc back;
  back.loadFromString(bytes);
  REQUIRE(back.tasks() == 2);
  for (size_t k = 0; k < 2; ++k) {
    const Consolidated& a = ewc.consolidated()[k];
    const Consolidated& b = back.consolidated()[k];
    CHECK(a.task == b.task);
    CHECK(sameBits(a.lambda, b.lambda));
    CHECK(sameBits(a.anchor, b.anchor));
    CHECK(sameBits(a.fisher, b.fisher));
  }
  CHECK(back.saveToString() == bytes);

  Ewc empty;
  Ewc loadedEmpty;
  loadedEmpty.loadFromString(empty.saveToString());
  CHECK(loadedEmpty.tasks() == 0);

  for (size_t len = 0; len < bytes.size(); len += 5)
    CHECK_THROWS_AS(back.loadFromString(bytes.substr(0, len)), std::runtime_error);
  CHECK_THROWS_WITH(back.loadFromString(bytes + "?"), Contains("after the state"));
  CHECK(back.saveToString() == bytes);  // unchanged by the failed loads
}

TEST_CASE("EWC, course form: the step's F times the selector, constant in the gradient", "[ewc]") {
  std::mt19937_64 rng(5);
  const size_t n = 12;
  Consolidated course = randomTask(rng, n, 500, "task1");
  course.form = EwcForm::Course;
  for (size_t i = 0; i < n; ++i) course.fisher[i] = i % 3 == 0 ? 0.0 : 1.0;  // a selector
  Consolidated kirk = randomTask(rng, n, 10, "task0");
  const std::vector<double> stepF = randomVector(rng, n, 0, 3), theta = randomVector(rng, n, -1, 1);

  Ewc ewc;
  ewc.add(kirk);
  CHECK_FALSE(ewc.needsStepFisher());
  ewc.add(course);
  REQUIRE(ewc.needsStepFisher());
  double expect = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dk = theta[i] - kirk.anchor[i], dc = theta[i] - course.anchor[i];
    expect += 0.5 * 10 * kirk.fisher[i] * dk * dk + 0.5 * 500 * stepF[i] * course.fisher[i] * dc * dc;
  }
  CHECK(ewc.penalty(theta, &stepF) == Approx(expect).epsilon(1e-13));
  // The gradient holds F fixed: central differences of the penalty at the same F.
  std::vector<double> grad(n, 0.0);
  ewc.addGradient(theta, grad, &stepF);
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> plus = theta, minus = theta;
    plus[i] += 1e-4;
    minus[i] -= 1e-4;
    const double fd = (ewc.penalty(plus, &stepF) - ewc.penalty(minus, &stepF)) / (plus[i] - minus[i]);
    CHECK(std::fabs(fd - grad[i]) <= 1e-7 * std::max(std::fabs(grad[i]), 1.0));
    if (i % 3 == 0) CHECK(grad[i] == Approx(10 * kirk.fisher[i] * (theta[i] - kirk.anchor[i])));  // not covered
  }
  // Without the step's F it cannot be computed, and says so.
  CHECK_THROWS_WITH(ewc.penalty(theta), Contains("course-form") && Contains("none"));
  std::vector<double> g(n, 0.0), shortF(n - 1, 1.0);
  CHECK_THROWS_WITH(ewc.addGradient(theta, g, &shortF), Contains("12 elements, got 11"));

  // The form survives a round trip; a version-1 state (no form) loads as the Fisher form.
  Ewc back;
  back.loadFromString(ewc.saveToString());
  REQUIRE(back.tasks() == 2);
  CHECK(back.consolidated()[0].form == EwcForm::Fisher);
  CHECK(back.consolidated()[1].form == EwcForm::Course);
  Ewc onlyKirk;
  onlyKirk.add(kirk);
  std::string v1 = onlyKirk.saveToString();
  v1[8] = 1;  // version
  const size_t formAt = 8 + 4 + 8 + 8 + 4 + kirk.task.size();
  v1.erase(formAt, 4);
  Ewc old;
  old.loadFromString(v1);
  REQUIRE(old.tasks() == 1);
  CHECK(old.consolidated()[0].form == EwcForm::Fisher);
  CHECK(sameBits(old.consolidated()[0].fisher, kirk.fisher));
  std::string badForm = onlyKirk.saveToString();
  badForm[formAt] = 7;
  CHECK_THROWS_WITH(old.loadFromString(badForm), Contains("form 7"));
}

TEST_CASE("Fisher: mean of squared per-trial gradients", "[ewc]") {
  FisherAccumulator acc(2);
  CHECK_THROWS_AS(acc.fisher(), std::logic_error);
  acc.addTrialGradient({1.0, 2.0});
  acc.addTrialGradient({3.0, -4.0});
  CHECK(acc.trials() == 2);
  CHECK(acc.fisher() == std::vector<double>{5.0, 10.0});
  CHECK_THROWS_AS(acc.addTrialGradient({1.0}), std::invalid_argument);
  CHECK_THROWS_AS(acc.addTrialGradient({1.0, std::nan("")}), std::domain_error);
  CHECK(acc.trials() == 2);
}

TEST_CASE("Fisher: linear regression has the closed-form expectation", "[ewc]") {
  // y = w* . x + e, x_j ~ N(0, s_j^2) independent, e ~ N(0, sigma^2); per-trial loss
  // L = (w . x - y)^2 / 2, gradient g = (d . x - e) x with d = w - w*. Then
  //   E[g_i^2] = s_i^2 (sigma^2 + sum_j d_j^2 s_j^2) + 2 d_i^2 s_i^4
  // (Isserlis: E[x_i^2 x_j^2] = s_i^2 s_j^2 for j != i, 3 s_i^4 for j = i). At w = w* it is
  // sigma^2 s_i^2: sigma^4 times the Fisher s_i^2 / sigma^2 of the model y ~ N(w . x, sigma^2),
  // since the squared-error loss is sigma^2 times that model's negative log-likelihood.
  const std::vector<double> wStar = {0.5, -1.0, 2.0};
  const std::vector<double> s = {1.0, 0.5, 2.0};
  const double sigma = 0.3;
  const int trials = 200000;

  for (bool atSolution : {true, false}) {
    INFO((atSolution ? "at w*" : "away from w*"));
    std::vector<double> w = wStar;
    if (!atSolution) w = {0.7, -1.2, 2.05};
    std::mt19937_64 rng(atSolution ? 1 : 2);
    std::normal_distribution<double> normal(0.0, 1.0);
    FisherAccumulator acc(3);
    std::vector<double> g(3), x(3);
    for (int k = 0; k < trials; ++k) {
      double y = 0, pred = 0;
      for (size_t j = 0; j < 3; ++j) {
        x[j] = s[j] * normal(rng);
        y += wStar[j] * x[j];
        pred += w[j] * x[j];
      }
      y += sigma * normal(rng);
      for (size_t j = 0; j < 3; ++j) g[j] = (pred - y) * x[j];
      acc.addTrialGradient(g);
    }
    std::vector<double> F = acc.fisher();
    double spread = sigma * sigma;
    for (size_t j = 0; j < 3; ++j) spread += (w[j] - wStar[j]) * (w[j] - wStar[j]) * s[j] * s[j];
    for (size_t i = 0; i < 3; ++i) {
      double d = w[i] - wStar[i];
      double expected = s[i] * s[i] * spread + 2 * d * d * std::pow(s[i], 4);
      INFO("element " << i << ": Fisher " << F[i] << ", expected " << expected);
      // The relative standard error at 2e5 trials is under 1%; 4% is > 4 standard errors.
      CHECK(F[i] == Approx(expected).epsilon(0.04));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Checkpoints
// ------------------------------------------------------------------------------------------------

namespace {

Checkpoint sampleCheckpoint() {
  Checkpoint c;
  c.cellSource = kCell;
  c.cellPath = "cells/t.cell";
  c.overrides = {{"n", 3}, {"tau", 50.5}, {"alpha", -0.0}};
  c.experiment = "[train]\noptimizer = \"adam\"\nlr = 1e-3\n";
  c.step = 123456789012LL;
  c.params = {1.0, -0.0, 5e-324, std::numeric_limits<double>::max(), 0.1,
              std::bit_cast<double>(uint64_t(0x7ff8000000000abcULL)),  // a NaN with a payload
              -std::numeric_limits<double>::infinity()};
  c.bestParams = {0.25, 0.5, 0.75, 1, 2, 3, 4};
  c.bestValidation = 0.0123;
  Adam adam(1e-3);
  std::vector<double> p = {1, 2, 3};
  adam.step(p, {0.1, -0.2, 0.3});
  c.optimizerKind = adam.kind();
  c.optimizerState = adam.saveToString();
  c.randomState = "seed 1\ninit 1 2 3\n";
  Ewc ewc;
  ewc.add({{1, 2, 3}, {0.1, 0.2, 0.3}, 500, "task1"});
  c.ewcState = ewc.saveToString();
  c.extra = {{"phase", "2"}, {"binary", std::string("a\0b\xff", 4)}, {"", "empty key"}};
  return c;
}

void checkSame(const Checkpoint& a, const Checkpoint& b) {
  CHECK(a.cellSource == b.cellSource);
  CHECK(a.cellPath == b.cellPath);
  REQUIRE(a.overrides.size() == b.overrides.size());
  for (const auto& [k, v] : a.overrides) {
    REQUIRE(b.overrides.count(k));
    CHECK(sameBits(v, b.overrides.at(k)));
  }
  CHECK(a.experiment == b.experiment);
  CHECK(a.step == b.step);
  CHECK(sameBits(a.params, b.params));
  CHECK(sameBits(a.bestParams, b.bestParams));
  CHECK(sameBits(a.bestValidation, b.bestValidation));
  CHECK(a.optimizerKind == b.optimizerKind);
  CHECK(a.optimizerState == b.optimizerState);
  CHECK(a.randomState == b.randomState);
  CHECK(a.ewcState == b.ewcState);
  CHECK(a.extra == b.extra);
}

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A container with valid header and checksums around `body` (sections as the caller wrote them),
// written from the format description in Checkpoint.h.
std::string container(const std::string& body) {
  std::string out(kCheckpointMagic);
  putU64(out, kCheckpointMagic.size() + 12 + body.size() + 4);
  putU32(out, crc32(out.data(), out.size()));
  out += body;
  putU32(out, crc32(out.data(), out.size()));
  return out;
}
void addSection(std::string& body, const std::string& name, const std::string& data) {
  putU32(body, static_cast<uint32_t>(name.size()));
  body += name;
  putU64(body, data.size());
  body += data;
}
// The sections of a valid container, in order.
std::vector<std::pair<std::string, std::string>> sectionsOf(const std::string& bytes) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = kCheckpointMagic.size() + 12, end = bytes.size() - 4;
  while (pos < end) {
    uint32_t nl;
    std::memcpy(&nl, bytes.data() + pos, 4);
    std::string name = bytes.substr(pos + 4, nl);
    uint64_t len;
    std::memcpy(&len, bytes.data() + pos + 4 + nl, 8);
    out.emplace_back(name, bytes.substr(pos + 12 + nl, len));
    pos += 12 + nl + len;
  }
  return out;
}

std::string decodeError(const std::string& bytes) {
  try {
    decodeCheckpoint(bytes, "mem.ckpt");
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Checkpoint: CRC-32 check value", "[checkpoint]") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0u);
  // Incremental equals one pass.
  CHECK(crc32("6789", 4, crc32("12345", 5)) == 0xCBF43926u);
}

TEST_CASE("Checkpoint: every field round-trips exactly through a file", "[checkpoint]") {
  TempDir tmp;
  const std::string path = tmp.path("run.ckpt");
  Checkpoint c = sampleCheckpoint();
  writeCheckpoint(path, c);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  Checkpoint back = readCheckpoint(path);
  checkSame(c, back);
  CHECK(slurp(path).starts_with("CELLC-CHECKPOINT 1\n"));

  // Overwriting replaces; defaults (empty everything, infinite best validation) round-trip too.
  Checkpoint empty;
  writeCheckpoint(path, empty);
  Checkpoint back2 = readCheckpoint(path);
  checkSame(empty, back2);
  CHECK(std::isinf(back2.bestValidation));

  // The resumed optimizer and EWC state are usable.
  Adam adam(1e-3);
  adam.loadFromString(back.optimizerState);
  CHECK(adam.steps() == 1);
  Ewc ewc;
  ewc.loadFromString(back.ewcState);
  CHECK(ewc.tasks() == 1);

  // A directory that does not exist: a clear error, nothing left behind.
  CHECK_THROWS_AS(writeCheckpoint(tmp.path("no/such/dir/x.ckpt"), c), CheckpointError);
}

TEST_CASE("Checkpoint: damaged files are refused with a reason", "[checkpoint]") {
  TempDir tmp;
  const std::string good = encodeCheckpoint(sampleCheckpoint());
  REQUIRE_NOTHROW(decodeCheckpoint(good, "mem"));

  SECTION("missing, empty, a directory") {
    CHECK_THROWS_WITH(readCheckpoint(tmp.path("absent.ckpt")),
                      Contains("absent.ckpt") && Contains("no such file"));
    spit(tmp.path("empty.ckpt"), "");
    CHECK_THROWS_WITH(readCheckpoint(tmp.path("empty.ckpt")),
                      Contains("empty.ckpt") && Contains("empty file"));
    CHECK_THROWS_WITH(readCheckpoint(tmp.dir.string()), Contains("not a regular file"));
  }
  SECTION("wrong magic, other version") {
    spit(tmp.path("npy.ckpt"), "\x93NUMPY\x01\x00 not a checkpoint at all");
    CHECK_THROWS_WITH(readCheckpoint(tmp.path("npy.ckpt")), Contains("not a cellc checkpoint"));
    std::string v2 = good;
    v2[kCheckpointMagic.size() - 2] = '2';
    CHECK_THAT(decodeError(v2), Contains("unsupported checkpoint format version '2'"));
  }
  SECTION("one byte flipped anywhere") {
    int refused = 0;
    for (size_t pos = 0; pos < good.size(); ++pos) {
      std::string bad = good;
      bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
      std::string why = decodeError(bad);
      INFO("byte " << pos << " of " << good.size());
      CHECK_FALSE(why.empty());
      if (pos >= kCheckpointMagic.size()) CHECK_THAT(why, Contains("corrupt"));
      refused += !why.empty();
    }
    CHECK(refused == static_cast<int>(good.size()));
    // And through a file.
    std::string bad = good;
    bad[good.size() / 2] ^= 1;
    spit(tmp.path("flip.ckpt"), bad);
    CHECK_THROWS_WITH(readCheckpoint(tmp.path("flip.ckpt")),
                      Contains("flip.ckpt") && Contains("corrupt: checksum mismatch"));
  }
  SECTION("truncated at every 7th length") {
    for (size_t len = 0; len < good.size(); len += 7) {
      std::string why = decodeError(good.substr(0, len));
      INFO("length " << len);
      CHECK_THAT(why, Contains(len == 0 ? "empty file" : "truncated"));
    }
    spit(tmp.path("short.ckpt"), good.substr(0, good.size() - 1));
    CHECK_THROWS_WITH(readCheckpoint(tmp.path("short.ckpt")),
                      Contains("short.ckpt") && Contains("truncated"));
    CHECK_THAT(decodeError(good + "tail"), Contains("corrupt"));
  }
  SECTION("a section length of 2^60 is refused without allocating") {
    // With checksums recomputed, so the length itself is what is refused.
    std::string body;
    putU32(body, 6);
    body += "params";
    putU64(body, uint64_t(1) << 60);
    body += "just a few bytes";
    CHECK_THAT(decodeError(container(body)),
               Contains("'params'") && Contains("1152921504606846976") &&
               Contains("beyond the end of the file"));
    // Patched into a real file without fixing the checksum: refused as corrupt.
    std::string patched = good;
    uint64_t huge = uint64_t(1) << 60;
    size_t lenAt = kCheckpointMagic.size() + 12 + 4 + std::string("cell.source").size();
    std::memcpy(patched.data() + lenAt, &huge, 8);
    CHECK_THAT(decodeError(patched), Contains("checksum mismatch"));
    // A count inside a section that cannot fit.
    std::string body2;
    for (auto& [name, data] : sectionsOf(good)) {
      if (name == "overrides") {
        std::string d;
        putU64(d, uint64_t(1) << 60);
        addSection(body2, name, d);
      } else {
        addSection(body2, name, data);
      }
    }
    CHECK_THAT(decodeError(container(body2)), Contains("'overrides'") && Contains("count"));
  }
  SECTION("a missing, duplicated or malformed section") {
    auto rebuild = [&](const std::string& drop, const std::string& dup, const std::string& cut) {
      std::string body;
      for (auto& [name, data] : sectionsOf(good)) {
        if (name == drop) continue;
        addSection(body, name, name == cut ? data.substr(0, data.size() - 1) : data);
        if (name == dup) addSection(body, name, data);
      }
      return container(body);
    };
    CHECK(decodeError(rebuild("", "", "")).empty());  // the test's own container is valid
    CHECK_THAT(decodeError(rebuild("params", "", "")), Contains("missing section 'params'"));
    CHECK_THAT(decodeError(rebuild("optimizer.state", "", "")),
               Contains("missing section 'optimizer.state'"));
    CHECK_THAT(decodeError(rebuild("", "step", "")), Contains("'step' appears twice"));
    CHECK_THAT(decodeError(rebuild("", "", "params")), Contains("not a whole number of doubles"));
    CHECK_THAT(decodeError(rebuild("", "", "step")), Contains("'step'"));
    CHECK_THAT(decodeError(rebuild("", "", "extra")), Contains("'extra'"));
    // Unknown sections are skipped (room for later additions to version 1).
    std::string body;
    for (auto& [name, data] : sectionsOf(good)) addSection(body, name, data);
    addSection(body, "future.thing", "whatever");
    CHECK(decodeError(container(body)).empty());
  }
  SECTION("random garbage never crashes") {
    std::mt19937_64 rng(3);
    for (int k = 0; k < 300; ++k) {
      size_t len = rng() % 200;
      std::string junk(len, '\0');
      for (char& ch : junk) ch = static_cast<char>(rng());
      if (k % 2) junk = good.substr(0, 31) + junk;  // a valid-looking header first
      CHECK_THROWS_AS(decodeCheckpoint(junk, "junk"), CheckpointError);
    }
  }
}

TEST_CASE("Checkpoint: checkCompatible explains each mismatch", "[checkpoint]") {
  Checkpoint c = sampleCheckpoint();
  const int64_t size = static_cast<int64_t>(c.params.size());
  CHECK_NOTHROW(checkCompatible(c, c.cellSource, c.overrides, size));

  std::string edited = c.cellSource;
  edited.replace(edited.find("tanh"), 4, "relu");
  CHECK_THROWS_WITH(checkCompatible(c, edited, c.overrides, size),
                    Contains("cell text differs") && Contains("cells/t.cell") &&
                        Contains("line 7") && Contains("tanh") && Contains("relu"));

  auto other = c.overrides;
  other["n"] = 128;
  other.erase("tau");
  other["sigma"] = 0.01;
  CHECK_THROWS_WITH(checkCompatible(c, c.cellSource, other, size),
                    Contains("-D n: checkpoint 3, now 128") &&
                        Contains("-D tau: checkpoint 50.5, now not set") &&
                        Contains("-D sigma: checkpoint not set (the cell's default), now 0.01"));

  CHECK_THROWS_WITH(checkCompatible(c, c.cellSource, c.overrides, size + 2),
                    Contains("holds 7 params, the model has 9"));
  CHECK_THROWS_AS(checkCompatible(c, edited, other, size + 2), CheckpointError);
}
