#include "params/Init.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "eval/Evaluate.h"
#include "params/Orthonormal.h"
#include "random/Streams.h"
#include "syntax/Print.h"

namespace cellc::runtime {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Argument names in declared order (the table of sema's initializers()), for messages and the
// summary.
const std::map<std::string, std::vector<std::string>>& argNames() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"zeros", {}}, {"ones", {}}, {"fill", {"value"}}, {"uniform", {"lo", "hi"}},
      {"normal", {"mean", "std"}}, {"glorot", {"gain"}}, {"lecun_normal", {}},
      {"orthogonal", {"gain"}}, {"gamma", {"k", "theta"}}, {"spectral_radius", {"radius", "of"}}, {"balance_ei", {"f"}},
  };
  return m;
}

[[noreturn]] void fail(const ir::Slot& s, const std::string& why) {
  throw std::runtime_error("initializing param " + s.name + " " + s.shape.str() + ": " + why);
}

// Argument i of an init step; `def` when left to default (NaN), an error when it has none.
double arg(const ir::Slot& s, const ir::InitStep& st, size_t i, double def = NAN) {
  double v = i < st.args.size() ? st.args[i] : NAN;
  if (!std::isnan(v)) return v;
  if (!std::isnan(def)) return def;
  const auto& names = argNames().at(st.fn);
  fail(s, st.fn + "() is missing its argument '" + (i < names.size() ? names[i] : "?") + "'");
}

// fan_in, fan_out: [m, n] used as W @ x has fan_in = n, fan_out = m; [n] has n, n; a scalar 1, 1.
std::pair<double, double> fans(const Shape& sh) {
  if (sh.rank() == 2) return {static_cast<double>(sh.dims[1]), static_cast<double>(sh.dims[0])};
  if (sh.rank() == 1) return {static_cast<double>(sh.dims[0]), static_cast<double>(sh.dims[0])};
  return {1.0, 1.0};
}

// lecun_normal's stddev correction: the standard deviation of a standard normal truncated to
// [-2, 2] (JAX's variance_scaling constant).
constexpr double kTruncStd = 0.87962566103423978;

void orthogonal(const ir::Slot& s, double gain, double* out, std::mt19937_64& rng) {
  if (s.shape.rank() != 2) fail(s, "orthogonal() needs a matrix");
  const int64_t m = s.shape.dims[0], n = s.shape.dims[1];
  const int64_t rows = std::max(m, n), cols = std::min(m, n);
  // As jax.nn.initializers.orthogonal: A is [max, min], filled in row-major order.
  RowMatrix a(rows, cols), q(rows, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) a(i, j) = normal(rng);
  orthonormalFactor(a.data(), rows, cols, q.data());
  RowMatrix w = m >= n ? RowMatrix(q) : RowMatrix(q.transpose());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) out[i * n + j] = gain * w(i, j);
}

// The base initializer (the chain's first step) of slot s into out[0 .. s.size).
void base(const ir::Slot& s, const ir::InitStep& st, double* out, std::mt19937_64& rng) {
  const int64_t size = s.size;
  const std::string& fn = st.fn;
  auto fill = [&](auto draw) {
    for (int64_t i = 0; i < size; ++i) out[i] = draw();
  };
  if (fn == "zeros") fill([] { return 0.0; });
  else if (fn == "ones") fill([] { return 1.0; });
  else if (fn == "fill") {
    double v = arg(s, st, 0);
    fill([&] { return v; });
  } else if (fn == "uniform") {
    double lo = arg(s, st, 0), hi = arg(s, st, 1);
    fill([&] { return uniform(rng, lo, hi); });
  } else if (fn == "normal") {
    double mean = arg(s, st, 0), sd = arg(s, st, 1);
    fill([&] { return normal(rng, mean, sd); });
  } else if (fn == "glorot") {
    auto [fanIn, fanOut] = fans(s.shape);
    double limit = arg(s, st, 0, 1.0) * std::sqrt(6.0 / (fanIn + fanOut));
    fill([&] { return uniform(rng, -limit, limit); });
  } else if (fn == "lecun_normal") {
    double sd = std::sqrt(1.0 / fans(s.shape).first) / kTruncStd;
    fill([&] {
      double z;
      do z = normal(rng);
      while (z < -2 || z > 2);
      return sd * z;
    });
  } else if (fn == "orthogonal") {
    orthogonal(s, arg(s, st, 0, 1.0), out, rng);
  } else if (fn == "gamma") {
    double k = arg(s, st, 0), theta = arg(s, st, 1);
    if (!(k > 0) || !(theta > 0)) fail(s, "gamma() needs k > 0 and theta > 0");
    fill([&] { return gammaVariate(rng, k, theta); });
  } else if (fn == "spectral_radius") {
    fail(s, "spectral_radius() rescales a matrix and must follow an initializer");
  } else {
    fail(s, "unknown initializer '" + fn + "'");
  }
}

// Whether node id reads only params and constants.
bool paramOnly(const ir::Graph& g, ir::NodeId id, std::vector<char>& seen) {
  if (seen[static_cast<size_t>(id)]) return true;
  seen[static_cast<size_t>(id)] = 1;
  const ir::Node& n = g[id];
  switch (n.op) {
    case ir::Op::State: case ir::Op::Input: case ir::Op::Noise:
    case ir::Op::AdjState: case ir::Op::AdjOutput:
      return false;
    default: break;
  }
  if (n.shape.batched) return false;
  for (ir::NodeId i : n.in)
    if (!paramOnly(g, i, seen)) return false;
  return true;
}

// The name spectral_radius measures for param p: the `of` of the chain's last spectral_radius,
// which is the node StepIR::effective[p] holds.
std::string lastOf(const ir::Slot& s) {
  std::string of;
  for (const ir::InitStep& st : s.init)
    if (!st.of.empty()) of = st.of;
  return of;
}

// The degree of positive homogeneity of node id in param `slot` (f(c W) = c^d f(W) for c > 0):
// 0 when it does not read the param, 1 through ops that commute with a positive scale, -1 when
// the graph alone cannot say (the caller then checks numerically).
int degreeIn(const ir::Graph& g, ir::NodeId id, int64_t slot, std::vector<int8_t>& memo) {
  int8_t& m = memo[static_cast<size_t>(id)];
  if (m != 2) return m;
  const ir::Node& n = g[id];
  if (n.op == ir::Op::Param) return m = n.a0 == slot ? 1 : 0;
  int ones = 0, others = 0;
  for (ir::NodeId i : n.in) {
    const int d = degreeIn(g, i, slot, memo);
    ones += d == 1;
    others += d == -1;
  }
  if (ones == 0 && others == 0) return m = 0;
  if (others > 0) return m = -1;
  const bool all = ones == static_cast<int>(n.in.size());
  switch (n.op) {
    case ir::Op::Neg: case ir::Op::Relu: case ir::Op::Abs: case ir::Op::Transpose:
    case ir::Op::Slice: case ir::Op::Squeeze: case ir::Op::Unsqueeze: case ir::Op::Pad:
    case ir::Op::Broadcast: case ir::Op::Sum: case ir::Op::SumBatch:
      return m = 1;
    case ir::Op::Add: case ir::Op::Sub: case ir::Op::Max: case ir::Op::Min: case ir::Op::Concat:
      return m = all ? 1 : -1;  // W + 0.5 I is not homogeneous; W + W^T is
    case ir::Op::Mul: case ir::Op::MatMul: case ir::Op::Outer: case ir::Op::BatchOuterSum:
      return m = ones == 1 ? 1 : -1;
    case ir::Op::Div:
      return m = ones == 1 && degreeIn(g, n.in[0], slot, memo) == 1 ? 1 : -1;
    default:
      return m = -1;
  }
}

// Whether the effective matrix of param p is c times itself (base, its value at orig) when the raw
// param (orig) is scaled by c: equal to rounding, elementwise. Leaves params as it found them.
bool homogeneous(const StepIR& ir, size_t p, std::vector<double>& params, const std::vector<double>& orig,
                 const std::vector<double>& base, double c) {
  const ir::Slot& s = ir.layout.params[p];
  double* raw = params.data() + s.offset;
  for (int64_t i = 0; i < s.size; ++i) raw[i] = orig[static_cast<size_t>(i)] * c;
  const std::vector<double> scaled = effectiveMatrix(ir, params, p);
  std::copy(orig.begin(), orig.end(), raw);
  double scale = 0;
  for (double v : base) scale = std::max(scale, std::abs(c * v));
  for (size_t i = 0; i < base.size(); ++i)
    if (!(std::abs(scaled[i] - c * base[i]) <= 1e-12 * scale)) return false;
  return true;
}

// spectral_radius(radius, of): rescale the raw param by c so that the measured radius is the
// target. One rescale suffices when the effective matrix is positively homogeneous in the raw one
// (relu(c W mask) signs = c relu(W mask) signs): then log rho is log c plus a constant and the
// first step lands on the target. Otherwise iterate, by the secant method on log rho against
// log c, and check the radius after every rescale.
void spectral(const StepIR& ir, size_t p, const ir::InitStep& st, std::vector<double>& params) {
  const ir::Slot& s = ir.layout.params[p];
  const double target = arg(s, st, 0);
  if (!(target > 0) || !std::isfinite(target)) fail(s, "spectral_radius() needs a positive radius");
  if (s.shape.rank() != 2 || s.shape.dims[0] != s.shape.dims[1])
    fail(s, "spectral_radius() needs a square matrix");
  const std::string of = st.of.empty() ? s.name : st.of;
  if (of != s.name && of != lastOf(s))
    fail(s, "only the last spectral_radius() of a chain may name an effective matrix (" + of + ")");

  double* raw = params.data() + s.offset;
  const std::vector<double> orig(raw, raw + s.size);
  auto effective = [&] {
    return of == s.name ? std::vector<double>(raw, raw + s.size) : effectiveMatrix(ir, params, p);
  };
  auto measure = [&] { return spectralRadius(effective().data(), s.shape.dims[0]); };
  auto rescale = [&](double logC) {
    const double c = std::exp(logC);
    for (int64_t i = 0; i < s.size; ++i) raw[i] = orig[static_cast<size_t>(i)] * c;
  };

  const std::vector<double> base = effective();
  double rho = spectralRadius(base.data(), s.shape.dims[0]);
  if (!(rho > 0) || !std::isfinite(rho))
    fail(s, "the spectral radius of " + of + " is " + printNumber(rho) +
                " after the initializer; it cannot be rescaled to " + printNumber(target));
  // When the effective matrix scales with the raw one (its ops show it; else checked elementwise,
  // which costs one evaluation, not an eigensolve), rho(c M) = c rho(M): one rescale lands on the
  // target without measuring again. An eigensolve of n = 1024 takes seconds; the secant steps below take several.
  const ir::NodeId eff = p < ir.effective.size() ? ir.effective[p] : -1;
  const bool scales = of == s.name || (eff >= 0 && scalesWithRaw(ir.g, eff, static_cast<int64_t>(p)));
  if (scales || homogeneous(ir, p, params, orig, base, target / rho)) {
    rescale(std::log(target / rho));
    return;
  }
  double logC = 0, slope = 1;
  constexpr int kMaxIter = 20;
  for (int it = 0;; ++it) {
    if (std::abs(rho - target) <= 1e-9 * target) return;
    if (it == kMaxIter || !(rho > 0) || !std::isfinite(rho)) break;
    // At most a factor e^10 per rescale, so that a target out of reach fails without overflow.
    const double step = std::clamp((std::log(target) - std::log(rho)) / slope, -10.0, 10.0);
    logC += step;
    rescale(logC);
    const double next = measure();
    if (next > 0 && std::isfinite(next) && step != 0) {
      double sl = (std::log(next) - std::log(rho)) / step;
      slope = std::isfinite(sl) && sl > 1e-3 ? sl : 1;
    }
    rho = next;
  }
  fail(s, "spectral_radius(" + printNumber(target) + ", " + of + ") did not converge in " +
              std::to_string(kMaxIter) + " rescales (radius " + printNumber(rho) + " at scale " +
              printNumber(std::exp(logC)) + "): " + of +
              " is not proportional to the raw matrix and the target may be out of its reach");
}

}  // namespace

// LAPACK's dgeev with no eigenvectors: its Hessenberg QR updates only the active window, where
// Eigen's EigenSolver keeps the whole Schur form up to date (row-wise reflections across a
// column-major matrix): at n = 1024 that is about 10x slower, tens of seconds.
extern "C" void dgeev_(const char* jobvl, const char* jobvr, const int* n, double* a, const int* lda,
                       double* wr, double* wi, double* vl, const int* ldvl, double* vr, const int* ldvr,
                       double* work, const int* lwork, int* info);

double spectralRadius(const double* a, int64_t n) {
  if (n == 0) return 0;
  if (n > std::numeric_limits<int>::max() / n) throw std::invalid_argument("spectralRadius: matrix too large");
  const int N = static_cast<int>(n), one = 1;
  // The eigenvalues of A^T are those of A: the row-major buffer can go in as it is.
  std::vector<double> m(a, a + n * n), wr(n), wi(n), work(1);
  int lwork = -1, info = 0;
  dgeev_("N", "N", &N, m.data(), &N, wr.data(), wi.data(), nullptr, &one, nullptr, &one, work.data(),
         &lwork, &info);
  lwork = std::max(static_cast<int>(work[0]), 4 * N);
  work.resize(static_cast<size_t>(lwork));
  if (info == 0)
    dgeev_("N", "N", &N, m.data(), &N, wr.data(), wi.data(), nullptr, &one, nullptr, &one, work.data(),
           &lwork, &info);
  if (info != 0)
    throw std::runtime_error("spectralRadius: the eigensolver failed (LAPACK dgeev info " +
                             std::to_string(info) + ")");
  double r = 0;
  for (int64_t i = 0; i < n; ++i) r = std::max(r, std::hypot(wr[i], wi[i]));
  return r;
}

std::vector<double> effectiveMatrix(const StepIR& ir, const std::vector<double>& params, size_t p) {
  const ir::Slot& s = ir.layout.params.at(p);
  if (params.size() != static_cast<size_t>(ir.layout.paramSize))
    throw std::invalid_argument("effectiveMatrix: params has " + std::to_string(params.size()) +
                                " elements, the layout " + std::to_string(ir.layout.paramSize));
  const ir::NodeId node = p < ir.effective.size() ? ir.effective[p] : -1;
  const std::string of = lastOf(s);
  if (of.empty() || of == s.name)
    return std::vector<double>(params.begin() + s.offset, params.begin() + s.offset + s.size);
  if (node < 0) fail(s, "the IR has no node for the effective matrix " + of);
  std::vector<char> seen(ir.g.size(), 0);
  if (!paramOnly(ir.g, node, seen))
    fail(s, "the effective matrix " + of + " reads a state, an input or noise, not only params");
  if (ir.g[node].shape.dims != s.shape.dims)
    fail(s, "the effective matrix " + of + " is " + ir.g[node].shape.str());
  eval::Leaves leaves;
  leaves.params = params.data();
  return eval::evaluate(ir.g, {node}, ir.layout, leaves, 1).at(0);
}

bool scalesWithRaw(const ir::Graph& g, ir::NodeId node, int64_t slot) {
  std::vector<int8_t> memo(g.size(), 2);
  return degreeIn(g, node, slot, memo) == 1;
}

// balance_ei(f): in each row, scale the inhibitory columns (the last 1 - f of them, as dale(f)
// signs them) so that their sum of magnitudes equals the excitatory columns' (pycog balanced E
// and I this way; without it the all-positive mode of a Dale matrix at radius 1.5 explodes).
static void balanceEI(const ir::Slot& s, const ir::InitStep& st, double* w) {
  const int64_t rows = s.shape.dims.at(0), cols = s.shape.dims.at(1);
  const int64_t ne = static_cast<int64_t>(std::floor(st.args.at(0) * static_cast<double>(cols) + 1e-9));
  for (int64_t i = 0; i < rows; ++i) {
    double e = 0, in = 0;
    for (int64_t j = 0; j < cols; ++j) (j < ne ? e : in) += std::fabs(w[i * cols + j]);
    if (in > 0)
      for (int64_t j = ne; j < cols; ++j) w[i * cols + j] *= e / in;
  }
}

void initParams(const StepIR& ir, std::vector<double>& params, std::mt19937_64& rng) {
  const ir::Layout& L = ir.layout;
  params.assign(static_cast<size_t>(L.paramSize), 0.0);
  for (const ir::Slot& s : L.params)
    if (!s.init.empty()) base(s, s.init[0], params.data() + s.offset, rng);
  for (size_t p = 0; p < L.params.size(); ++p) {
    const ir::Slot& s = L.params[p];
    for (size_t i = 1; i < s.init.size(); ++i) {
      if (s.init[i].fn == "balance_ei") balanceEI(s, s.init[i], params.data() + s.offset);
      else if (s.init[i].fn == "spectral_radius") spectral(ir, p, s.init[i], params);
      else fail(s, "unknown transform '" + s.init[i].fn + "'");
    }
  }
}

std::vector<std::string> initSummary(const StepIR& ir) {
  std::vector<std::string> lines;
  for (const ir::Slot& s : ir.layout.params) {
    std::string line = s.name + " " + s.shape.str();
    if (s.init.empty()) {
      lines.push_back(line + " ~ zeros() (no initializer)");
      continue;
    }
    std::string chain;
    for (const ir::InitStep& st : s.init) {
      auto it = argNames().find(st.fn);
      std::vector<std::string> args;
      bool skipped = false;  // after a defaulted argument, name the rest
      for (size_t i = 0; i < st.args.size(); ++i) {
        const std::string name = it != argNames().end() && i < it->second.size() ? it->second[i] : "";
        if (name == "of") {
          if (!st.of.empty()) args.push_back(skipped ? "of = " + st.of : st.of);
          continue;
        }
        if (std::isnan(st.args[i])) {
          skipped = true;
          continue;
        }
        args.push_back((skipped && !name.empty() ? name + " = " : "") + printNumber(st.args[i]));
      }
      std::string call = st.fn + "(";
      for (size_t i = 0; i < args.size(); ++i) call += (i ? ", " : "") + args[i];
      chain += (chain.empty() ? "" : " | ") + call + ")";
    }
    lines.push_back(line + " ~ " + chain);
  }
  return lines;
}

}  // namespace cellc::runtime
