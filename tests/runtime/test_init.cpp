// Param initialization (runtime/params/Init.h) and the random streams (runtime/random/Streams.h):
// the moments of every initializer against its formulas, orthogonality, the spectral radius of
// the Dale RNN's effective W_rec, determinism, stream independence, save/load of the streams.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "params/Init.h"
#include "pipeline/Lower.h"
#include "random/Streams.h"
#include "sema/Program.h"

using namespace cellc;
using namespace cellc::runtime;
using Catch::Contains;

namespace {

StepIR lowerText(const std::string& text, const Overrides& overrides = {}) {
  SourceFile file("test.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, overrides, diags);
  if (!prog) {
    std::ostringstream os;
    diags.render(os, file);
    throw std::runtime_error("cannot load the test cell:\n" + os.str());
  }
  return lower(*prog);
}

StepIR lowerFile(const std::string& path) {
  std::string error;
  SourceFile file = SourceFile::load(path, &error);
  if (!error.empty()) throw std::runtime_error(error);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog) throw std::runtime_error("cannot load " + path);
  return lower(*prog);
}

// A cell whose state does nothing, with the given param declarations (unused params only warn).
StepIR paramsCell(const std::string& decls) {
  return lowerText("cell t {\n  dim n = 2\n  state h[n] = 0\n" + decls + "\n  h' = h\n}\n");
}

size_t slotIndex(const StepIR& ir, const std::string& name) {
  for (size_t i = 0; i < ir.layout.params.size(); ++i)
    if (ir.layout.params[i].name == name) return i;
  throw std::runtime_error("no param " + name);
}

std::vector<double> values(const StepIR& ir, const std::vector<double>& params,
                           const std::string& name) {
  const ir::Slot& s = ir.layout.params[slotIndex(ir, name)];
  return std::vector<double>(params.begin() + s.offset, params.begin() + s.offset + s.size);
}

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMatrix matrix(const std::vector<double>& v, int64_t m, int64_t n) {
  REQUIRE(static_cast<int64_t>(v.size()) == m * n);
  return Eigen::Map<const RowMatrix>(v.data(), m, n);
}

double rho(const RowMatrix& m) {
  Eigen::EigenSolver<Eigen::MatrixXd> es(Eigen::MatrixXd(m), false);
  return es.eigenvalues().cwiseAbs().maxCoeff();
}

struct Moments {
  double n = 0, mean = 0, var = 0, min = 0, max = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  m.n = static_cast<double>(v.size());
  for (double x : v) m.mean += x;
  m.mean /= m.n;
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= m.n - 1;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  return m;
}

// The sample mean and variance within 5 standard errors of mean mu and variance s2, for a
// distribution with fourth central moment mu4: SE(mean) = sqrt(s2 / n), SE(var) ~ sqrt((mu4 -
// s2^2) / n).
void checkMoments(const std::vector<double>& v, double mu, double s2, double mu4) {
  Moments m = moments(v);
  INFO("n " << m.n << ", mean " << m.mean << " (want " << mu << "), var " << m.var << " (want "
            << s2 << ")");
  CHECK(std::abs(m.mean - mu) <= 5 * std::sqrt(s2 / m.n));
  CHECK(std::abs(m.var - s2) <= 5 * std::sqrt((mu4 - s2 * s2) / m.n));
}

}  // namespace

// ---- initializers -------------------------------------------------------------------------------

TEST_CASE("constant initializers and params without one", "[init]") {
  StepIR ir = paramsCell(
      "  param a[3] ~ zeros()\n  param b[2, 2] ~ ones()\n  param c ~ fill(-2.5)\n"
      "  param d[4]\n");
  std::vector<double> p(7, 99.0);
  std::mt19937_64 rng(1);
  initParams(ir, p, rng);
  REQUIRE(p.size() == static_cast<size_t>(ir.layout.paramSize));
  CHECK(values(ir, p, "a") == std::vector<double>(3, 0.0));
  CHECK(values(ir, p, "b") == std::vector<double>(4, 1.0));
  CHECK(values(ir, p, "c") == std::vector<double>{-2.5});
  CHECK(values(ir, p, "d") == std::vector<double>(4, 0.0));
}

TEST_CASE("moments of uniform, normal and gamma", "[init]") {
  StepIR ir = paramsCell(
      "  param U[200, 200] ~ uniform(-1, 3)\n"
      "  param N[200, 200] ~ normal(0.5, 2)\n"
      "  param G[200, 200] ~ gamma(2, 0.05)\n"
      "  param S[200, 200] ~ gamma(0.5, 3)\n");
  std::vector<double> p;
  std::mt19937_64 rng(7);
  initParams(ir, p, rng);
  SECTION("uniform(-1, 3)") {
    std::vector<double> u = values(ir, p, "U");
    const double w = 4;
    checkMoments(u, 1, w * w / 12, std::pow(w, 4) / 80);
    Moments m = moments(u);
    CHECK(m.min >= -1);
    CHECK(m.max < 3);
  }
  SECTION("normal(0.5, 2)") { checkMoments(values(ir, p, "N"), 0.5, 4, 3 * 16); }
  SECTION("gamma(2, 0.05): mean k theta, variance k theta^2") {
    const double k = 2, th = 0.05;
    std::vector<double> g = values(ir, p, "G");
    checkMoments(g, k * th, k * th * th, 3 * k * (k + 2) * std::pow(th, 4));
    CHECK(moments(g).min > 0);
  }
  SECTION("gamma(0.5, 3): the k < 1 branch") {
    const double k = 0.5, th = 3;
    std::vector<double> g = values(ir, p, "S");
    checkMoments(g, k * th, k * th * th, 3 * k * (k + 2) * std::pow(th, 4));
    CHECK(moments(g).min >= 0);
  }
}

TEST_CASE("glorot is uniform with limit gain sqrt(6 / (fan_in + fan_out))", "[init]") {
  // [m, n] used as W @ x: fan_in = n = 100, fan_out = m = 300; a vector [n] has fan n, n.
  StepIR ir = paramsCell(
      "  param A[300, 100] ~ glorot()\n  param B[300, 100] ~ glorot(2)\n"
      "  param v[40000] ~ glorot()\n");
  std::vector<double> p;
  std::mt19937_64 rng(11);
  initParams(ir, p, rng);
  auto check = [&](const std::string& name, double limit) {
    INFO(name << ", limit " << limit);
    std::vector<double> x = values(ir, p, name);
    const double w = 2 * limit;
    checkMoments(x, 0, w * w / 12, std::pow(w, 4) / 80);
    Moments m = moments(x);
    CHECK(m.min >= -limit);
    CHECK(m.max <= limit);
    CHECK(m.max > 0.99 * limit);
  };
  check("A", std::sqrt(6.0 / 400));
  check("B", 2 * std::sqrt(6.0 / 400));
  check("v", std::sqrt(6.0 / 80000));
}

TEST_CASE("lecun_normal has variance 1 / fan_in and is truncated at 2 std", "[init]") {
  StepIR ir = paramsCell("  param L[100, 400] ~ lecun_normal()\n  param v[50000] ~ lecun_normal()\n");
  std::vector<double> p;
  std::mt19937_64 rng(3);
  initParams(ir, p, rng);
  for (auto [name, fanIn] : {std::pair<std::string, double>{"L", 400}, {"v", 50000}}) {
    INFO(name);
    std::vector<double> x = values(ir, p, name);
    const double s2 = 1 / fanIn;
    // A standard normal truncated to [-2, 2] has a lighter fourth moment than the normal's 3.
    checkMoments(x, 0, s2, 3 * s2 * s2);
    // The truncation: |x| <= 2 sd of the underlying normal, sd = sqrt(1 / fan_in) / 0.8796...
    const double bound = 2 * std::sqrt(s2) / 0.87962566103423978;
    Moments m = moments(x);
    CHECK(m.max <= bound * (1 + 1e-12));
    CHECK(m.min >= -bound * (1 + 1e-12));
    CHECK(m.max > 0.98 * bound);
    CHECK(m.min < -0.98 * bound);
  }
}

TEST_CASE("orthogonal: Q^T Q = gain^2 I, square and rectangular", "[init]") {
  StepIR ir = paramsCell(
      "  param Q[50, 50] ~ orthogonal()\n  param T[60, 20] ~ orthogonal()\n"
      "  param W[20, 60] ~ orthogonal()\n  param G[30, 30] ~ orthogonal(2.5)\n");
  std::vector<double> p;
  std::mt19937_64 rng(5);
  initParams(ir, p, rng);
  RowMatrix q = matrix(values(ir, p, "Q"), 50, 50);
  CHECK((q.transpose() * q - Eigen::MatrixXd::Identity(50, 50)).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((q * q.transpose() - Eigen::MatrixXd::Identity(50, 50)).cwiseAbs().maxCoeff() < 1e-12);
  RowMatrix t = matrix(values(ir, p, "T"), 60, 20);  // tall: orthonormal columns
  CHECK((t.transpose() * t - Eigen::MatrixXd::Identity(20, 20)).cwiseAbs().maxCoeff() < 1e-12);
  RowMatrix w = matrix(values(ir, p, "W"), 20, 60);  // wide: orthonormal rows
  CHECK((w * w.transpose() - Eigen::MatrixXd::Identity(20, 20)).cwiseAbs().maxCoeff() < 1e-12);
  RowMatrix g = matrix(values(ir, p, "G"), 30, 30);
  CHECK((g.transpose() * g - 6.25 * Eigen::MatrixXd::Identity(30, 30)).cwiseAbs().maxCoeff() <
        1e-11);
}

TEST_CASE("orthogonal is sign-corrected: E[Q_ii] = 0 (Haar)", "[init]") {
  // Without the diag(R) sign correction a Householder QR gives Q_00 = -|a_00| / |a_0| < 0 always.
  StepIR ir = paramsCell("  param Q[3, 3] ~ orthogonal()\n");
  std::mt19937_64 rng(9);
  std::vector<double> p, diag;
  for (int r = 0; r < 3000; ++r) {
    initParams(ir, p, rng);
    for (int i = 0; i < 3; ++i) diag.push_back(p[static_cast<size_t>(4 * i)]);
  }
  // Each entry of a Haar 3x3 orthogonal matrix has mean 0 and variance 1/3.
  Moments m = moments(diag);
  CHECK(std::abs(m.mean) < 5 * std::sqrt(1.0 / 3 / m.n));
  CHECK(std::abs(m.var - 1.0 / 3) < 0.03);
}

// ---- spectral_radius ----------------------------------------------------------------------------

TEST_CASE("dale_rnn: the effective W_rec has spectral radius 1.5 after init", "[init][spectral]") {
  StepIR ir = lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/dale_rnn.cell");
  std::vector<double> p;
  std::mt19937_64 rng(2016);
  initParams(ir, p, rng);
  const int64_t n = 100, nExc = 80;
  std::vector<double> raw = values(ir, p, "W_rec_raw");
  REQUIRE(raw.size() == static_cast<size_t>(n * n));

  // W_rec = relu(W_rec_raw * (1 - I)) * ei, by hand.
  RowMatrix w(n, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double x = i == j ? 0.0 : raw[static_cast<size_t>(i * n + j)];
      w(i, j) = std::max(x, 0.0) * (j < nExc ? 1.0 : -1.0);
    }
  CHECK(std::abs(rho(w) - 1.5) <= 1.5e-9);

  // The evaluator's effective matrix is the same one.
  std::vector<double> eff = effectiveMatrix(ir, p, slotIndex(ir, "W_rec_raw"));
  CHECK((matrix(eff, n, n) - w).cwiseAbs().maxCoeff() < 1e-15);

  // The raw matrix is positive; its excitatory columns are still a (rescaled) gamma sample (k = 2:
  // coefficient of variation^2 = 1/k): balance_ei rescales only the inhibitory ones, row by row.
  std::vector<double> exc;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < nExc; ++j) exc.push_back(raw[static_cast<size_t>(i * n + j)]);
  Moments m = moments(exc);
  CHECK(moments(raw).min > 0);
  const double cv2 = m.var / (m.mean * m.mean);
  CHECK(std::abs(cv2 - 0.5) < 0.05);
  // balance_ei(0.8): in every row the inhibitory magnitudes sum to the excitatory ones.
  for (int64_t i = 0; i < n; ++i) {
    double e = 0, in = 0;
    for (int64_t j = 0; j < n; ++j) (j < nExc ? e : in) += raw[static_cast<size_t>(i * n + j)];
    CHECK(in == Approx(e).epsilon(1e-12));
  }

  // The other params: x0 = 0.1, W_in and W_out ~ U(0, 0.1).
  CHECK(values(ir, p, "x0") == std::vector<double>(100, 0.1));
  for (const char* name : {"W_in_raw", "W_out_raw"}) {
    Moments u = moments(values(ir, p, name));
    CHECK(u.min >= 0);
    CHECK(u.max < 0.1);
  }
}

TEST_CASE("spectral_radius of the raw matrix itself", "[init][spectral]") {
  StepIR ir = paramsCell("  param W[30, 30] ~ normal(0, 1) | spectral_radius(0.9, W)\n");
  std::vector<double> p;
  std::mt19937_64 rng(4);
  initParams(ir, p, rng);
  CHECK(std::abs(rho(matrix(p, 30, 30)) - 0.9) <= 0.9e-9);
  CHECK(std::abs(spectralRadius(p.data(), 30) - 0.9) <= 0.9e-9);
}

TEST_CASE("spectral_radius of a non-homogeneous effective matrix", "[init][spectral]") {
  SECTION("tanh(W_raw), a reachable target: converges") {
    StepIR ir = lowerText(R"(cell t {
  dim n = 20
  state h[n] = 0
  param W_raw[n, n] ~ normal(0, 1) | spectral_radius(0.8, W_eff)
  W_eff = tanh(W_raw)
  h' = tanh(W_eff @ h)
})");
    std::vector<double> p;
    std::mt19937_64 rng(8);
    initParams(ir, p, rng);
    RowMatrix eff = matrix(p, 20, 20).array().tanh().matrix();
    CHECK(std::abs(rho(eff) - 0.8) <= 0.8e-9);
  }
  SECTION("tanh(W_raw), out of reach (|tanh| < 1 bounds the radius by n): throws") {
    StepIR ir = lowerText(R"(cell t {
  dim n = 4
  state h[n] = 0
  param W_raw[n, n] ~ normal(0, 1) | spectral_radius(10, W_eff)
  W_eff = tanh(W_raw)
  h' = tanh(W_eff @ h)
})");
    std::vector<double> p;
    std::mt19937_64 rng(8);
    CHECK_THROWS_WITH(initParams(ir, p, rng), Contains("W_raw") && Contains("converge"));
  }
  SECTION("an effective matrix with an offset: W_raw + 0.5 I") {
    StepIR ir = lowerText(R"(cell t {
  dim n = 10
  state h[n] = 0
  param W_raw[n, n] ~ uniform(0, 1) | spectral_radius(3, W_eff)
  W_eff = W_raw + 0.5 * eye(n)
  h' = tanh(W_eff @ h)
})");
    std::vector<double> p;
    std::mt19937_64 rng(12);
    initParams(ir, p, rng);
    RowMatrix eff = matrix(p, 10, 10) + 0.5 * RowMatrix::Identity(10, 10);
    CHECK(std::abs(rho(eff) - 3) <= 3e-9);
  }
}

TEST_CASE("spectral_radius of a zero matrix throws, naming the param", "[init][spectral]") {
  StepIR ir = paramsCell("  param Z[5, 5] ~ zeros() | spectral_radius(1, Z)\n");
  std::vector<double> p;
  std::mt19937_64 rng(1);
  CHECK_THROWS_WITH(initParams(ir, p, rng), Contains("Z"));
}

TEST_CASE("an effective matrix that reads an input is refused", "[init][spectral]") {
  // Sema refuses it (E212) before initialization could measure a batched matrix.
  CHECK_THROWS_WITH(lowerText(R"(cell t {
  dim n = 3
  input x[n]
  state h[n] = 0
  param W_raw[n, n] ~ normal(0, 1) | spectral_radius(1, W_eff)
  W_eff = W_raw * x
  h' = tanh(W_eff @ h)
})"), Contains("E212") && Contains("W_eff"));
}

// ---- determinism and the summary ----------------------------------------------------------------

TEST_CASE("the same seed gives the same params, another seed others", "[init]") {
  StepIR ir = lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/dale_rnn.cell");
  std::vector<double> a, b, c;
  std::mt19937_64 r1(123), r2(123), r3(124);
  initParams(ir, a, r1);
  initParams(ir, b, r2);
  initParams(ir, c, r3);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(r1() == r2());  // the same number of draws
}

TEST_CASE("initSummary: one line per param", "[init]") {
  StepIR ir = lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/dale_rnn.cell");
  std::vector<std::string> lines = initSummary(ir);
  REQUIRE(lines.size() == ir.layout.params.size());
  CHECK(lines[slotIndex(ir, "W_rec_raw")] ==
        "W_rec_raw [100, 100] ~ gamma(2, 0.05) | balance_ei(0.8) | spectral_radius(1.5, W_rec)");
  CHECK(lines[slotIndex(ir, "x0")] == "x0 [100] ~ fill(0.1)");
  CHECK(lines[slotIndex(ir, "W_in_raw")] == "W_in_raw [100, 1] ~ uniform(0, 0.1)");

  StepIR other = paramsCell(
      "  param a[3]\n  param g[2, 2] ~ glorot()\n  param o[2, 2] ~ orthogonal(gain = 2)\n"
      "  param s ~ normal(0, 1)\n");
  std::vector<std::string> l2 = initSummary(other);
  REQUIRE(l2.size() == 4);
  CHECK(l2[0] == "a [3] ~ zeros() (no initializer)");
  CHECK(l2[1] == "g [2, 2] ~ glorot()");
  CHECK(l2[2] == "o [2, 2] ~ orthogonal(2)");
  CHECK(l2[3] == "s [] ~ normal(0, 1)");
}

TEST_CASE("every cell in cells/ initializes to finite params", "[init]") {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(CELLC_SOURCE_DIR) + "/cells"))
    if (e.path().extension() == ".cell") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  for (const std::string& path : files) {
    INFO(path);
    StepIR ir = lowerFile(path);
    std::vector<double> p;
    std::mt19937_64 rng(1);
    REQUIRE_NOTHROW(initParams(ir, p, rng));
    CHECK(p.size() == static_cast<size_t>(ir.layout.paramSize));
    CHECK(std::all_of(p.begin(), p.end(), [](double x) { return std::isfinite(x); }));
    CHECK(initSummary(ir).size() == ir.layout.params.size());
  }
}

// ---- random streams -----------------------------------------------------------------------------

TEST_CASE("streams: independent of each other's use", "[random]") {
  StepIR ir = lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/dale_rnn.cell");
  RandomStreams s1(42), s2(42);
  for (int i = 0; i < 1000; ++i) s2[Stream::Data]();
  for (int i = 0; i < 37; ++i) normal(s2[Stream::Noise]);
  std::vector<double> a, b;
  initParams(ir, a, s1[Stream::Init]);
  initParams(ir, b, s2[Stream::Init]);
  CHECK(a == b);
  CHECK(s1[Stream::Dropout]() == s2[Stream::Dropout]());

  // The streams differ from each other and from another master seed.
  RandomStreams s(42), t(43);
  std::vector<uint64_t> first;
  for (Stream k : {Stream::Init, Stream::Data, Stream::Noise, Stream::Dropout}) first.push_back(s[k]());
  std::sort(first.begin(), first.end());
  CHECK(std::adjacent_find(first.begin(), first.end()) == first.end());
  RandomStreams s42(42);
  CHECK(s42[Stream::Init]() != t[Stream::Init]());
  CHECK(s.seed() == 42);
}

TEST_CASE("streams: save and load continue the exact same sequences", "[random]") {
  RandomStreams s(2024);
  for (int i = 0; i < 500; ++i) s[Stream::Init]();
  for (int i = 0; i < 3; ++i) s[Stream::Noise]();
  const std::string saved = s.save();
  std::vector<uint64_t> expected;
  for (Stream k : {Stream::Init, Stream::Data, Stream::Noise, Stream::Dropout})
    for (int i = 0; i < 400; ++i) expected.push_back(s[k]());

  RandomStreams r(7);
  r.load(saved);
  CHECK(r.seed() == 2024);
  std::vector<uint64_t> got;
  for (Stream k : {Stream::Init, Stream::Data, Stream::Noise, Stream::Dropout})
    for (int i = 0; i < 400; ++i) got.push_back(r[k]());
  CHECK(got == expected);
  CHECK(r.save() == s.save());

  // Round trip of a fresh object too.
  RandomStreams f(1), g(2);
  g.load(f.save());
  CHECK(g[Stream::Data]() == f[Stream::Data]());
}

TEST_CASE("streams: load rejects garbage and leaves the state unchanged", "[random]") {
  RandomStreams s(99);
  const std::string good = s.save();
  auto replaceLine = [&](int lineNo, const std::string& with) {
    std::istringstream in(good);
    std::string line, out;
    for (int i = 0; std::getline(in, line); ++i) out += (i == lineNo ? with : line) + "\n";
    return out;
  };
  std::string noiseLine;
  {
    std::istringstream in(good);
    for (int i = 0; i < 5; ++i) std::getline(in, noiseLine);
  }
  std::string firstWord = noiseLine.substr(6, noiseLine.find(' ', 6) - 6);
  std::vector<std::string> bad = {
      "",
      "hello world",
      "cellc-random-streams 1\n",
      "cellc-random-streams 2\n" + good.substr(good.find('\n') + 1),
      good.substr(0, good.size() / 2),                                       // truncated
      replaceLine(1, "seed -x"),
      replaceLine(2, "data" + noiseLine.substr(5)),                          // wrong order
      replaceLine(4, "noise 1 2 3"),                                         // too few words
      replaceLine(4, noiseLine + " 5"),                                      // too many
      replaceLine(4, "noise 99999999999999999999999" + noiseLine.substr(6 + firstWord.size())),
      replaceLine(4, "noise abc" + noiseLine.substr(6 + firstWord.size())),
      good + "trailing\n",
  };
  RandomStreams r(5);
  const std::string before = r.save();
  for (const std::string& b : bad) {
    INFO("input: " << b.substr(0, 80));
    CHECK_THROWS_AS(r.load(b), std::runtime_error);
    CHECK(r.save() == before);
  }
  CHECK_NOTHROW(r.load(good));
  CHECK(r.save() == good);
}

TEST_CASE("samplers: ranges and moments", "[random]") {
  std::mt19937_64 rng(17);
  std::vector<double> u, z;
  for (int i = 0; i < 100000; ++i) u.push_back(uniform01(rng));
  for (int i = 0; i < 100000; ++i) z.push_back(normal(rng));
  Moments mu = moments(u);
  CHECK(mu.min >= 0);
  CHECK(mu.max < 1);
  checkMoments(u, 0.5, 1.0 / 12, 1.0 / 80);
  checkMoments(z, 0, 1, 3);
  CHECK_THROWS_AS(gammaVariate(rng, 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(gammaVariate(rng, 1, -1), std::invalid_argument);
}

TEST_CASE("scalesWithRaw: the ops of an effective matrix show whether it scales with the raw one",
          "[init][spectral]") {
  auto scales = [](const std::string& eff) {
    StepIR ir = lowerText("cell t {\n  dim n = 6\n  state h[n] = 0\n  const ei[n] = dale(0.5)\n"
                          "  param V[n, n] ~ normal(0, 1)\n"
                          "  param W_raw[n, n] ~ normal(0, 1) | spectral_radius(1, W_eff)\n"
                          "  W_eff = " + eff + "\n  h' = tanh(W_eff @ h)\n}");
    const size_t p = 1;
    REQUIRE(ir.layout.params[p].name == "W_raw");
    REQUIRE(ir.effective.at(p) >= 0);
    return scalesWithRaw(ir.g, ir.effective[p], static_cast<int64_t>(p));
  };
  CHECK(scales("relu(W_raw * (1 - eye(n))) * ei"));  // dale_rnn's W_rec
  CHECK(scales("-abs(W_raw) @ V + transpose(W_raw)"));
  CHECK(scales("V @ relu(W_raw) / 2"));
  CHECK_FALSE(scales("tanh(W_raw)"));
  CHECK_FALSE(scales("W_raw + 0.5 * eye(n)"));   // degree 1 plus degree 0
  CHECK_FALSE(scales("W_raw @ W_raw"));          // degree 2
  CHECK_FALSE(scales("V / W_raw"));              // degree -1
  CHECK_FALSE(scales("clip(W_raw, -1, 1)"));
}
