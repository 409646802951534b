// Random well-typed expressions, written as .cell source text, lowered through the whole front end
// (parse, sema, IR, autodiff, simplifier) and their gradients checked against finite differences
// with the reference evaluator; where a step has a sequence-invariant part, its hoisted form
// (pipeline/Hoist.h) must give the same gradient, and so must its staged form walked by BPTT
// (pipeline/InputStage.h). Together they must use every op of the IR.
//
// Each cell has a vector state h[n] (sometimes also a matrix state M[m, n] and a scalar state s)
// updated as h' = tanh(<expr of shape [n]>), an output of a random shape, zero to two
// intermediates, sometimes a matrix input and an output that later equations use. Cases whose
// forward values overflow or exceed 1e6 anywhere are regenerated (and counted).
// CELLC_RANDOM_COUNT / CELLC_RANDOM_SEED change the count (default 1000) and the seed;
// CELLC_PRINT_RANDOM prints every generated cell.
// softmax, log_softmax, logsumexp and amax reduce or normalize random operands (ties of amax are
// harmless: its shared adjoint is what central differences measure at a tie).
// Expressions keep log and sqrt arguments positive (softplus(..) + c, exp(..)), divide by
// softplus(..) + c, raise only positive bases to non-integer powers, and give clip lo <= hi. The
// kinks of relu, abs, min, max and clip are not avoided: a mismatch is accepted only when one of
// their arguments is within 1e-4 of a kink at the sampled point, and such cases are counted; the
// same for the steps of comparisons, where's condition and heaviside, which the generator uses
// only as where's condition (its surrogate gradient is tested against its rule elsewhere).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "GradCheck.h"
#include "pipeline/Hoist.h"
#include "pipeline/InputStage.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::testing;
using ir::NodeId;
using ir::Op;

namespace {

using Dims = std::vector<int64_t>;

struct Named {
  std::string name;
  Dims dims;
  double weight = 1;  // how often a leaf picks it
};


class ExprGen {
 public:
  explicit ExprGen(std::mt19937& rng) : rng_(rng) {}

  // The source of one random cell.
  std::string cell(int index) {
    // States and inputs are picked more often than params, consts (no gradient) least.
    names_ = {{"a", {}, 1},      {"b", {}, 1},      {"c", {}, 0.3},    {"h", {4}, 2.5},
              {"u", {4}, 2},     {"xi", {4}, 1},    {"p", {4}, 1},     {"ei", {4}, 0.3},
              {"w", {4}, 0.3},   {"v", {3}, 2},     {"q", {3}, 1},     {"P", {4, 4}, 1},
              {"I", {4, 4}, 0.3}, {"Q", {3, 4}, 1}, {"R", {4, 3}, 1}};
    const bool matrixState = coin(0.4), scalarState = coin(0.3), matrixInput = coin(0.3);
    const bool earlyOutput = coin(0.3);
    if (matrixState) names_.push_back({"M", {3, 4}, 2.5});
    if (scalarState) names_.push_back({"s", {}, 2.5});
    if (matrixInput) names_.push_back({"U", {3, 4}, 2});
    std::ostringstream os;
    os << "cell rnd" << index << " {\n"
       << "  dim n = 4\n  dim m = 3\n"
       << "  input u[n]\n  input v[m]\n  noise xi[n]\n";
    if (matrixInput) os << "  input U[m, n]\n";
    os << "  state h[n] = 0\n";
    if (matrixState) os << "  state M[m, n] = 0\n";
    if (scalarState) os << "  state s = 0\n";
    os << "  param a ~ normal(0, 1)\n  param b ~ normal(0, 1)\n"
       << "  param p[n] ~ normal(0, 1)\n  param q[m] ~ normal(0, 1)\n"
       << "  param P[n, n] ~ normal(0, 1)\n  param Q[m, n] ~ normal(0, 1)\n"
       << "  param R[n, m] ~ normal(0, 1)\n"
       << "  const c = 0.75\n  const w[n] = 0.5\n  const ei[n] = dale(0.5)\n"
       << "  const I[n, n] = eye(n)\n";
    int intermediates = pick(3);
    for (int i = 0; i < intermediates; ++i) {
      Dims d = randomShape();
      std::string name = "t" + std::to_string(i);
      os << "  " << name << " = " << gen(d, depth()) << "\n";
      names_.push_back({name, d, 2});
    }
    if (earlyOutput) {  // an output that later equations use
      Dims d = randomShape();
      os << "  output z = " << gen(d, depth()) << "\n";
      names_.push_back({"z", d, 2});
    }
    os << "  h' = tanh(" << gen({4}, depth()) << ")\n";
    names_.push_back({"h'", {4}, 2});
    if (matrixState) {
      os << "  M' = tanh(" << gen({3, 4}, depth()) << ")\n";
      names_.push_back({"M'", {3, 4}, 2});
    }
    if (scalarState) os << "  s' = tanh(" << gen({}, depth()) << ")\n";
    os << "  output y = " << gen(randomShape(), depth()) << "\n}\n";
    return os.str();
  }

 private:
  bool coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  int64_t between(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  int depth() { return 2 + pick(3); }

  Dims randomShape() {
    static const std::vector<Dims> shapes = {{},     {4},    {3},    {1},    {2},   {4, 4},
                                             {3, 4}, {4, 3}, {2, 3}, {4, 1}, {1, 4}};
    return shapes[pick(static_cast<int>(shapes.size()))];
  }

  std::string number() {
    static const char* nums[] = {"0.5", "2", "1.5", "0.25", "3", "c", "n", "m"};
    return nums[pick(8)];
  }

  // A slice item [lo:hi) of size `len` out of `full` (":" when whole).
  std::string sliceItem(int64_t full, int64_t len) {
    if (len == full && coin(0.7)) return ":";
    int64_t lo = between(0, full - len);
    if (lo == 0 && coin(0.3)) return ":" + std::to_string(len);
    return std::to_string(lo) + ":" + std::to_string(lo + len);
  }

  // `src` of shape `from` indexed down to shape `to`: either the same rank (slices), or one or two
  // point indices (on the axes `points` names).
  std::string indexInto(const std::string& src, const Dims& from, const Dims& to) {
    std::vector<std::string> items;
    if (from.size() == to.size()) {
      bool any = false;
      for (size_t k = 0; k < from.size(); ++k) {
        items.push_back(sliceItem(from[k], to[k]));
        any = any || items.back() != ":";
      }
      if (!any) return src;
    } else if (from.size() == to.size() + 1) {
      std::vector<size_t> axes;  // point-indexing one of these leaves axes that fit `to`
      for (size_t axis = 0; axis < from.size(); ++axis) {
        bool ok = true;
        for (size_t k = 0, j = 0; k < from.size(); ++k)
          if (k != axis && from[k] < to[j++]) ok = false;
        if (ok) axes.push_back(axis);
      }
      size_t axis = axes[static_cast<size_t>(pick(static_cast<int>(axes.size())))];
      for (size_t k = 0, j = 0; k < from.size(); ++k) {
        if (k == axis) items.push_back(std::to_string(between(0, from[k] - 1)));
        else items.push_back(sliceItem(from[k], to[j++]));
      }
      while (items.size() > 1 && items.back() == ":") items.pop_back();
    } else {
      for (int64_t d : from) items.push_back(std::to_string(between(0, d - 1)));
    }
    std::string s = src + "[";
    for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
    return s + "]";
  }

  // Can shape `from` be indexed down to `to`?
  static bool fits(const Dims& from, const Dims& to) {
    if (from.size() == to.size()) {
      for (size_t k = 0; k < to.size(); ++k)
        if (from[k] < to[k]) return false;
      return true;
    }
    if (from.size() == to.size() + 2) return true;  // scalar from a matrix
    if (from.size() != to.size() + 1) return false;
    for (size_t axis = 0; axis < from.size(); ++axis) {
      bool ok = true;
      for (size_t k = 0, j = 0; k < from.size(); ++k)
        if (k != axis && from[k] < to[j++]) ok = false;
      if (ok) return true;
    }
    return false;
  }

  const Named* weighted(const std::vector<const Named*>& ns) {
    double total = 0;
    for (const Named* n : ns) total += n->weight;
    double r = std::uniform_real_distribution<double>(0, total)(rng_);
    for (const Named* n : ns) {
      if (r < n->weight) return n;
      r -= n->weight;
    }
    return ns.back();
  }

  std::string leaf(const Dims& s) {
    std::vector<const Named*> exact, other;
    for (const Named& n : names_) {
      if (n.dims == s) exact.push_back(&n);
      else if (fits(n.dims, s)) other.push_back(&n);
    }
    if (s.empty() && coin(0.25)) return number();
    if (!exact.empty() && (other.empty() || coin(0.6))) return weighted(exact)->name;
    if (!other.empty()) {
      const Named* n = weighted(other);
      return indexInto(n->name, n->dims, s);
    }
    return "(" + gen(s, 1) + ")";
  }

  // A shape that broadcasts to s: trailing dims of s, some set to 1.
  Dims subShape(const Dims& s) {
    size_t drop = static_cast<size_t>(pick(static_cast<int>(s.size()) + 1));
    Dims d(s.begin() + static_cast<long>(drop), s.end());
    for (int64_t& x : d)
      if (coin(0.2)) x = 1;
    return d;
  }

  std::string unary(const Dims& s, int depth) {
    std::string e = gen(s, depth - 1);
    switch (pick(15)) {
      case 0: return "-(" + e + ")";
      case 1: return "exp(" + e + ")";
      case 2: return "exp(tanh(" + e + "))";
      case 3: return "log(softplus(" + e + ") + 0.5)";
      case 4: return "log(exp(" + e + ") + 0.1)";
      case 5: return "tanh(" + e + ")";
      case 6: return "sigmoid(" + e + ")";
      case 7: return "relu(" + e + ")";
      case 8: return "softplus(" + e + ")";
      case 9: return "abs(" + e + ")";
      case 10: return "sqrt(softplus(" + e + ") + 0.1)";
      case 11: return "sqrt(exp(" + e + "))";
      case 12: if (!s.empty()) return "softmax(" + e + ")"; return "-" + e;
      case 13: if (!s.empty()) return "log_softmax(" + e + ")"; return "-" + e;
      default: return "-" + e;  // unary minus on a primary
    }
  }

  std::string binary(const Dims& s, int depth) {
    // Operand shapes that broadcast to s: one of them may drop leading axes or have 1s.
    Dims da = s, db = s;
    if (s.size() == 2 && s[0] > 1 && s[1] > 1 && coin(0.15)) {
      da = {s[0], 1};
      db = coin(0.5) ? Dims{s[1]} : Dims{1, s[1]};
    } else if (coin(0.5)) {
      (coin(0.5) ? da : db) = subShape(s);
    }
    if (coin(0.5)) std::swap(da, db);
    auto A = [&] { return gen(da, depth - 1); };
    auto Bx = [&] { return gen(db, depth - 1); };
    auto S = [&] { return gen(s, depth - 1); };  // for ops with one varying operand
    switch (pick(13)) {
      case 0: case 1: return "(" + A() + " + " + Bx() + ")";
      case 2: case 3: return "(" + A() + " - " + Bx() + ")";
      case 4: case 5: return "(" + A() + " * " + Bx() + ")";
      case 6: return "(" + A() + " / (softplus(" + Bx() + ") + 0.5))";
      case 7:
        switch (pick(4)) {
          case 0: return "((softplus(" + A() + ") + 0.5) ^ tanh(" + Bx() + "))";
          case 1: return "(" + S() + " ^ 3)";
          case 2: return "(" + S() + " ^ 2)";
          default: return "((sigmoid(" + S() + ") + 0.5) ^ 1.5)";
        }
      case 8: return "min(" + A() + ", " + Bx() + ")";
      case 9: return "max(" + A() + ", " + Bx() + ")";
      case 10: {
        if (coin(0.3)) return "clip(" + S() + ", -0.5, 0.5)";
        std::string lo = Bx();  // lo <= hi by construction
        return "clip(" + A() + ", " + lo + " - 0.5, " + lo + " + softplus(" + Bx() + "))";
      }
      case 11: {
        // A comparison is a value (of gradient 0); heaviside only decides a where, since its
        // surrogate gradient is not what differences measure (tests/compiler/test_spikes.cpp).
        static const char* cmps[] = {" > ", " < ", " >= ", " <= "};
        std::string c = "(" + A() + cmps[pick(4)] + Bx() + ")";
        static const char* surrogates[] = {"sigmoid = 2", "atan = 3", "triangle = 0.5"};
        switch (pick(5)) {
          case 0: return "(" + c + " * " + S() + ")";
          case 1: return "where(" + c + ", " + A() + ", " + Bx() + ")";
          case 2: return "where(heaviside(" + A() + "), " + S() + ", " + Bx() + ")";
          case 3: return "where(heaviside(" + A() + ", " + surrogates[pick(3)] + "), " + S() + ", " + Bx() + ")";
          default: return "where(heaviside(" + A() + ", 3), " + Bx() + ", " + S() + ")";
        }
      }
      default: return "(" + S() + " / " + number() + ")";
    }
  }

  std::string matmul(const Dims& s, int depth) {
    int64_t k = between(1, 4);
    if (s.empty()) return "(" + gen({k}, depth - 1) + " @ " + gen({k}, depth - 1) + ")";
    if (s.size() == 1) {
      if (coin(0.5)) return "(" + gen({s[0], k}, depth - 1) + " @ " + gen({k}, depth - 1) + ")";
      return "(" + gen({k}, depth - 1) + " @ " + gen({k, s[0]}, depth - 1) + ")";
    }
    return "(" + gen({s[0], k}, depth - 1) + " @ " + gen({k, s[1]}, depth - 1) + ")";
  }

  std::string reduce(const Dims& s, int depth) {
    const int which = pick(10);
    const char* fn = which < 6 ? "sum" : which < 8 ? "mean" : "amax";
    int64_t k = between(1, 4);
    if (which == 9) {  // logsumexp reduces the last axis: [k] -> [], [a, k] -> [a]
      if (s.empty()) return "logsumexp(" + gen({k}, depth - 1) + ")";
      return "logsumexp(" + gen({s[0], k}, depth - 1) + ")";
    }
    if (s.empty()) {
      Dims from = randomShape();
      if (from.size() == 1 && coin(0.3)) return std::string(fn) + "(" + gen(from, depth - 1) + ", 0)";
      return std::string(fn) + "(" + gen(from.empty() ? Dims{k} : from, depth - 1) + ")";
    }
    // s = [a]: reduce axis 1 of [a, k] or axis 0 of [k, a]
    if (coin(0.5)) return std::string(fn) + "(" + gen({s[0], k}, depth - 1) + ", 1)";
    return std::string(fn) + "(" + gen({k, s[0]}, depth - 1) + ", 0)";
  }

  std::string concat(const Dims& s, int depth) {
    int64_t last = s.back();
    std::vector<int64_t> parts;
    int64_t left = last;
    while (left > 0) {
      int64_t p = parts.size() == 2 ? left : between(1, left);
      if (parts.empty() && p == last) p = last - 1;  // at least two parts
      parts.push_back(p);
      left -= p;
    }
    std::string e = "concat(";
    for (size_t i = 0; i < parts.size(); ++i) {
      Dims d = s;
      d.back() = parts[i];
      e += (i ? ", " : "") + gen(d, depth - 1);
    }
    return e + ")";
  }

  // A generated value of a larger shape, indexed down to s.
  std::string sliceOf(const Dims& s, int depth) {
    Dims from = s;
    if (s.size() < 2 && coin(0.4)) {
      // one more axis, point-indexed
      size_t axis = static_cast<size_t>(pick(static_cast<int>(s.size()) + 1));
      from.insert(from.begin() + static_cast<long>(axis), between(1, 4));
      std::string src = "(" + gen(from, depth - 1) + ")";
      std::vector<std::string> items;
      for (size_t k = 0; k < from.size(); ++k)
        items.push_back(k == axis ? std::to_string(between(0, from[k] - 1)) : ":");
      std::string r = src + "[";
      for (size_t i = 0; i < items.size(); ++i) r += (i ? ", " : "") + items[i];
      return r + "]";
    }
    if (s.empty()) return leaf(s);
    for (int64_t& d : from) d = between(d, 4);
    return indexInto("(" + gen(from, depth - 1) + ")", from, s);
  }

  std::string gen(const Dims& s, int depth) {
    if (depth <= 0 || coin(0.2)) return leaf(s);
    struct Choice {
      double weight;
      int kind;
    };
    std::vector<Choice> cs = {{3, 0}, {4, 1}, {1.5, 2}, {1, 5}};
    if (s.size() <= 1) cs.push_back({1.2, 3});                     // sum / mean
    if (!s.empty() && s.back() >= 2) cs.push_back({0.8, 4});       // concat
    if (s.size() == 2) cs.push_back({1.2, 6}), cs.push_back({0.8, 7});  // outer, transpose
    double total = 0;
    for (const Choice& c : cs) total += c.weight;
    double r = std::uniform_real_distribution<double>(0, total)(rng_);
    int kind = cs.back().kind;
    for (const Choice& c : cs) {
      if (r < c.weight) {
        kind = c.kind;
        break;
      }
      r -= c.weight;
    }
    switch (kind) {
      case 0: return unary(s, depth);
      case 1: return binary(s, depth);
      case 2: return matmul(s, depth);
      case 3: return reduce(s, depth);
      case 4: return concat(s, depth);
      case 5: return sliceOf(s, depth);
      case 6: return "outer(" + gen({s[0]}, depth - 1) + ", " + gen({s[1]}, depth - 1) + ")";
      default: return "transpose(" + gen({s[1], s[0]}, depth - 1) + ")";
    }
  }

  std::mt19937& rng_;
  std::vector<Named> names_;
};

// The smallest distance to a kink over every relu/abs argument, min/max operand difference and
// clip x - lo, x - hi, at every step of the sequence.
double kinkDistance(const StepIR& ir, const runtime::Sequence<double>& seq,
                    const runtime::Trajectory<double>& traj) {
  ir::Graph g = ir.g;
  std::vector<NodeId> probes;
  for (NodeId id = 0; id < static_cast<NodeId>(ir.g.size()); ++id) {
    const ir::Node n = ir.g[id];
    switch (n.op) {
      case Op::Relu: case Op::Abs: probes.push_back(n.in[0]); break;
      case Op::Min: case Op::Max: case Op::Lt: case Op::Le: probes.push_back(g.sub(n.in[0], n.in[1])); break;
      case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
        probes.push_back(n.in[0]);  // (where's condition is one of these)
        break;
      case Op::Clip:
        probes.push_back(g.sub(n.in[0], n.in[1]));
        probes.push_back(g.sub(n.in[0], n.in[2]));
        break;
      default: break;
    }
  }
  double best = std::numeric_limits<double>::infinity();
  if (probes.empty()) return best;
  for (int64_t t = 0; t < seq.steps(); ++t) {
    eval::Leaves leaves{seq.params.data(), traj.states[t].data(), seq.inputs[t].data(),
                        seq.noise[t].data()};
    for (const std::vector<double>& v : eval::evaluate(g, probes, ir.layout, leaves, seq.batch))
      for (double x : v) best = std::min(best, std::fabs(x));
  }
  return best;
}

// Every forward value (intermediates included) at every step is finite and below `bound` in
// magnitude: tanh(exp(800)) is a finite state whose gradient is 0 * inf.
bool allBounded(const StepIR& ir, const runtime::Sequence<double>& seq,
                const runtime::Trajectory<double>& traj, double bound) {
  std::vector<NodeId> all = ir::topoOrder(ir.g, ir.forwardRoots());
  for (int64_t t = 0; t < seq.steps(); ++t) {
    eval::Leaves leaves{seq.params.data(), traj.states[t].data(), seq.inputs[t].data(),
                        seq.noise[t].data()};
    for (const std::vector<double>& v : eval::evaluate(ir.g, all, ir.layout, leaves, seq.batch))
      for (double x : v)
        if (!std::isfinite(x) || std::fabs(x) > bound) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("gradients of random expressions match finite differences and cover every op",
          "[gradients][random]") {
  // CELLC_RANDOM_COUNT and CELLC_RANDOM_SEED override the defaults, for longer bug hunts.
  const char* countEnv = std::getenv("CELLC_RANDOM_COUNT");
  const char* seedEnv = std::getenv("CELLC_RANDOM_SEED");
  const int kWanted = countEnv ? std::atoi(countEnv) : 1000;
  const int64_t B = 3, T = 3;
  std::mt19937 rng(seedEnv ? static_cast<uint32_t>(std::atol(seedEnv)) : 20240611u);
  ExprGen gen(rng);
  std::set<Op> seen;
  int accepted = 0, rejected = 0, attempts = 0, kinkAccepted = 0, checks = 0;
  double worst = 0;

  while (accepted < kWanted) {
    REQUIRE(attempts < 4 * kWanted);
    std::string src = gen.cell(attempts++);
    if (std::getenv("CELLC_PRINT_RANDOM")) std::cout << src << std::flush;
    INFO("source:\n" << src);
    StepIR ir;
    try {
      ir = lowerText("random.cell", src);
    } catch (const std::exception& e) {
      FAIL("the generated cell does not lower: " << e.what());
    }
    eval::Evaluator ev(ir);
    const ir::Layout& L = ev.layout();
    runtime::Sequence<double> seq = randomSequence(L, B, T, rng);
    LinearLoss loss = LinearLoss::random(L, B, T, rng);
    auto traj = runtime::forwardSequence<double>(ev, seq);
    if (!allBounded(ir, seq, traj, 1e6)) {  // exp(exp(..)) and friends: too large to difference
      ++rejected;
      continue;
    }
    ++accepted;
    for (const ir::Node& n : ir.g.nodes()) seen.insert(n.op);
    auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);
    // The hoisted step (pipeline/Hoist.h), where it hoists anything, gives the same gradient.
    if (StepIR hoisted = hoist(ir); !hoisted.hoisted.empty()) {
      for (const ir::Node& n : hoisted.g.nodes()) seen.insert(n.op);
      eval::Evaluator hev(hoisted);
      auto hg = runtime::backwardSequence<double>(hev, seq, traj, loss.w, loss.v);
      double num = 0, den = 1e-300;
      for (size_t i = 0; i < hg.dParams.size(); ++i) {
        num = std::max(num, std::fabs(hg.dParams[i] - grads.dParams[i]));
        den = std::max(den, std::fabs(grads.dParams[i]));
      }
      INFO(ir::printGraph(hoisted.g, hoisted.hoisted));
      CHECK(num / den <= 1e-10);
    }
    // The staged step (pipeline/InputStage.h, every product of inputs staged, inline ones too),
    // walked by BPTT in chunks of 2 steps across segments of 2, gives the plain step's loss and
    // gradient.
    if (StepIR staged = stageInputs(hoist(ir), 0); !staged.staged.empty() && !L.outputs.empty()) {
      for (const ir::Node& n : staged.g.nodes()) seen.insert(n.op);
      eval::Evaluator sev(staged);
      runtime::TrialBatch tb;
      tb.batch = B, tb.steps = T, tb.inputs = seq.inputs;
      for (int64_t t = 0; t < T; ++t) tb.targets.push_back(randomUnit(rng, L.outputs[0].size * B));
      const int64_t budget = runtime::kDefaultMemoryBudgetMb << 20;
      runtime::Bptt<double> viaStaged(sev, B, T, 2, budget, runtime::SegmentGemms::Off, 1, true),
          viaPlain(ev, B, T, 2, budget, runtime::SegmentGemms::Off, 1, false);
      REQUIRE(viaStaged.inputStage());
      viaStaged.setInputStageChunk(2);
      auto rs = viaStaged.lossAndGradient(seq.params, tb, {}, seq.noise, {});
      auto rp = viaPlain.lossAndGradient(seq.params, tb, {}, seq.noise, {});
      double num = 0, den = 1e-300;
      for (size_t i = 0; i < rp.dParams.size(); ++i) {
        num = std::max(num, std::fabs(rs.dParams[i] - rp.dParams[i]));
        den = std::max(den, std::fabs(rp.dParams[i]));
      }
      INFO(ir::printGraph(staged.g, staged.staged));
      CHECK(rs.loss == Approx(rp.loss).epsilon(1e-10));
      CHECK(num / den <= 1e-10);
    }
    auto lossOf = [&](const runtime::Sequence<double>& s) {
      return loss(runtime::forwardSequence<double>(ev, s));
    };
    double kink = -1;  // computed on the first mismatch
    auto verify = [&](const char* what, const FdResult& r) {
      ++checks;
      worst = std::max(worst, r.err);
      if (r.err <= kFdTolerance) return;
      if (kink < 0) kink = kinkDistance(ir, seq, traj);
      if (kink < 1e-4) {
        ++kinkAccepted;
        if (std::getenv("CELLC_PRINT_RANDOM"))
          std::cout << "accepted at a kink (" << kink << "): " << what << ": " << r.str() << "\n" << src;
        return;
      }
      INFO(what << ": " << r.str() << "; nearest kink " << kink);
      INFO(ir::printGraph(ir.g, ir.backwardRoots()));
      CHECK(r.err <= kFdTolerance);
    };
    for (int dir = 0; dir < 3; ++dir) {
      {
        std::vector<double> d = randomUnit(rng, L.paramSize);
        verify("params", compareWithFd(dot(grads.dParams, d), [&](double eps) {
                 runtime::Sequence<double> s = seq;
                 axpy(s.params, eps, d);
                 return lossOf(s);
               }));
      }
      {
        std::vector<double> flat = randomUnit(rng, T * L.inputSize * B);
        double ad = 0;
        for (int64_t t = 0; t < T; ++t)
          ad += dot(grads.dInputs[t], std::vector<double>(flat.begin() + t * L.inputSize * B,
                                                          flat.begin() + (t + 1) * L.inputSize * B));
        verify("inputs", compareWithFd(ad, [&](double eps) {
                 runtime::Sequence<double> s = seq;
                 for (int64_t t = 0; t < T; ++t)
                   for (int64_t i = 0; i < L.inputSize * B; ++i)
                     s.inputs[t][i] += eps * flat[t * L.inputSize * B + i];
                 return lossOf(s);
               }));
      }
      {
        std::vector<double> d = randomUnit(rng, L.stateSize * B);
        verify("initial state", compareWithFd(dot(grads.dInitialState, d), [&](double eps) {
                 runtime::Sequence<double> s = seq;
                 axpy(s.initialState, eps, d);
                 return lossOf(s);
               }));
      }
    }
  }

  std::string missing;
  for (int i = 0; i < ir::kNumOps; ++i)
    if (!seen.count(static_cast<Op>(i))) missing += std::string(" ") + ir::opName(static_cast<Op>(i));
  std::cout << "random expressions: " << accepted << " checked (" << rejected
            << " rejected as too large), " << checks << " directional checks, " << kinkAccepted
            << " mismatches accepted at a kink, worst relative error " << worst
            << "; ops never seen:" << (missing.empty() ? " none" : missing) << "\n";
  INFO("ops never seen:" << missing);
  CHECK(missing.empty());
}
