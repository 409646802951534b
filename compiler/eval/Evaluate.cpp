// The reference evaluator. Every op is a loop over the output's elements that reads its operands
// through explicit index arithmetic; matrix products go through Eigen. Slow and plain on purpose.
#include "eval/Evaluate.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace cellc::eval {

using namespace cellc::ir;

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw InternalError("evaluator: " + what);
}

// One node's value: `nb` copies (B when batched, else 1) of a row-major array of `shape.dims`.
struct Value {
  Shape shape;
  int64_t nb = 1;
  int64_t numel = 1;
  std::vector<double> v;

  // Element `i` (flat, row-major) of batch element `b`; an unbatched value is the same for all b.
  double at(int64_t b, int64_t i) const { return v[static_cast<size_t>((nb > 1 ? b : 0) * numel + i)]; }
};

Value blank(const Shape& s, int64_t batch) {
  Value r;
  r.shape = s;
  r.nb = s.batched ? batch : 1;
  r.numel = s.numel();
  r.v.assign(static_cast<size_t>(r.nb * r.numel), 0.0);
  return r;
}

// Row-major multi-index of flat index i.
std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    idx[k] = i % dims[k];
    i /= dims[k];
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t i = 0;
  for (size_t k = 0; k < dims.size(); ++k) i = i * dims[k] + idx[k];
  return i;
}

// Flat index into an operand of shape `from` that numpy-broadcasts to the output index `idx`
// (right-aligned; size-1 axes of the operand repeat).
int64_t broadcastIndex(const std::vector<int64_t>& idx, const std::vector<int64_t>& from) {
  size_t off = idx.size() - from.size();
  int64_t i = 0;
  for (size_t k = 0; k < from.size(); ++k) i = i * from[k] + (from[k] == 1 ? 0 : idx[off + k]);
  return i;
}

void checkBroadcastable(const Shape& from, const Shape& to, const char* op) {
  bool ok = from.dims.size() <= to.dims.size() && (!from.batched || to.batched);
  for (size_t k = 0; ok && k < from.dims.size(); ++k) {
    int64_t f = from.dims[from.dims.size() - 1 - k], t = to.dims[to.dims.size() - 1 - k];
    ok = f == t || f == 1;
  }
  if (!ok) fail(std::string(op) + ": operand " + from.str() + " does not broadcast to " + to.str());
}

// Elementwise op over operands broadcast to the node's shape: out = f(x0, x1, ...).
template <class F>
Value pointwise(const Node& n, const std::vector<const Value*>& xs, int64_t batch, F f) {
  Value out = blank(n.shape, batch);
  for (const Value* x : xs) checkBroadcastable(x->shape, n.shape, opName(n.op));
  std::vector<double> args(xs.size());
  std::vector<int64_t> src(xs.size());
  // Operands of the output's shape, or of one element, need no index arithmetic: an n x n
  // param-only expression (spectral_radius of an effective matrix at n = 1024) is 1M elements.
  bool direct = true;
  for (const Value* x : xs) direct = direct && (x->shape.dims == n.shape.dims || x->numel == 1);
  for (int64_t i = 0; i < out.numel; ++i) {
    if (direct) {
      for (size_t j = 0; j < xs.size(); ++j) src[j] = xs[j]->numel == 1 ? 0 : i;
    } else {
      const std::vector<int64_t> idx = unravel(i, n.shape.dims);
      for (size_t j = 0; j < xs.size(); ++j) src[j] = broadcastIndex(idx, xs[j]->shape.dims);
    }
    for (int64_t b = 0; b < out.nb; ++b) {
      for (size_t j = 0; j < xs.size(); ++j) args[j] = xs[j]->at(b, src[j]);
      out.v[static_cast<size_t>(b * out.numel + i)] = f(args.data());
    }
  }
  return out;
}

double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;

Value matmul(const Node& n, const Value& a, const Value& b, int64_t batch) {
  const auto &da = a.shape.dims, &db = b.shape.dims;
  if (da.empty() || db.empty() || da.size() > 2 || db.size() > 2 || da.back() != db.front())
    fail("MatMul " + a.shape.str() + " @ " + b.shape.str());
  Value out = blank(n.shape, batch);
  // As matrices: a is [m, k] (a vector is one row), b is [k, p] (a vector is one column).
  int64_t m = da.size() == 2 ? da[0] : 1, k = da.back();
  int64_t p = db.size() == 2 ? db[1] : 1;
  if (out.numel != m * p) fail("MatMul result shape " + n.shape.str());
  for (int64_t bi = 0; bi < out.nb; ++bi) {
    CMap A(&a.v[static_cast<size_t>((a.nb > 1 ? bi : 0) * a.numel)], m, k);
    CMap Bm(&b.v[static_cast<size_t>((b.nb > 1 ? bi : 0) * b.numel)], k, p);
    Map Y(&out.v[static_cast<size_t>(bi * out.numel)], m, p);
    Y.noalias() = A * Bm;  // [m, p] row-major is exactly the result's layout in every case
  }
  return out;
}

Value compute(const Node& n, const std::vector<const Value*>& x, const Layout& L,
              const Leaves& leaves, int64_t batch) {
  auto need = [&](size_t count) {
    if (x.size() != count) fail(std::string(opName(n.op)) + " with " + std::to_string(x.size()) + " operands");
  };
  auto leaf = [&](const std::vector<Slot>& slots, const double* buf, bool batched, const char* role) {
    if (n.a0 < 0 || n.a0 >= static_cast<int64_t>(slots.size()))
      fail(std::string(role) + " slot " + std::to_string(n.a0) + " out of range");
    const Slot& s = slots[static_cast<size_t>(n.a0)];
    if (s.shape.dims != n.shape.dims || n.shape.batched != batched || s.size != n.shape.numel())
      fail(std::string(role) + " " + s.name + ": node shape " + n.shape.str() + ", slot shape " + s.shape.str());
    if (!buf) fail(std::string("no buffer for ") + role + " " + s.name);
    Value out = blank(n.shape, batch);
    const double* src = buf + (batched ? batch * s.offset : s.offset);
    std::copy(src, src + out.v.size(), out.v.begin());
    return out;
  };

  switch (n.op) {
    case Op::Const: {
      Value out = blank(n.shape, batch);
      std::fill(out.v.begin(), out.v.end(), n.value);
      return out;
    }
    case Op::Param: return leaf(L.params, leaves.params, false, "param");
    case Op::State: return leaf(L.states, leaves.state, true, "state");
    case Op::Input: return leaf(L.inputs, leaves.input, true, "input");
    case Op::Noise: return leaf(L.noises, leaves.noise, true, "noise");
    case Op::AdjState: return leaf(L.states, leaves.adjState, true, "adjoint of state");
    case Op::AdjOutput: return leaf(L.outputs, leaves.adjOutput, true, "adjoint of output");
    case Op::Cotangent: return leaf(L.states, leaves.cotangent, true, "cotangent of a state adjoint");
    case Op::Hoisted:
    case Op::AdjHoisted: {
      if (!leaves.hoistedSlots) fail("a hoisted leaf, but no hoisted layout");
      bool adj = n.op == Op::AdjHoisted;
      return leaf(*leaves.hoistedSlots, adj ? leaves.adjHoisted : leaves.hoisted, false,
                  adj ? "adjoint of hoisted value" : "hoisted value");
    }
    case Op::Staged:
    case Op::AdjStaged: {
      if (!leaves.stagedSlots) fail("a staged leaf, but no staged layout");
      const bool adj = n.op == Op::AdjStaged;
      const std::vector<Slot>& slots = *leaves.stagedSlots;
      if (n.a0 < 0 || n.a0 >= static_cast<int64_t>(slots.size())) fail("staged slot out of range");
      const Slot& s = slots[static_cast<size_t>(n.a0)];
      const double* buf = adj ? leaves.adjStaged : leaves.staged;
      if (!buf) fail(adj ? "no buffer for the staged adjoints" : "no buffer for the staged values");
      if (s.shape.dims != n.shape.dims || !n.shape.batched) fail("staged value " + s.name + ": node shape " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t b = 0; b < batch; ++b)
        std::copy_n(buf + b * leaves.stagedWidth + s.offset, s.size, out.v.begin() + b * s.size);
      return out;
    }
    case Op::Eye: {
      if (n.shape.rank() != 2 || n.shape.dims[0] != n.shape.dims[1]) fail("Eye of shape " + n.shape.str());
      Value out = blank(n.shape, batch);
      int64_t d = n.shape.dims[0];
      for (int64_t b = 0; b < out.nb; ++b)
        for (int64_t i = 0; i < d; ++i) out.v[static_cast<size_t>(b * out.numel + i * d + i)] = 1.0;
      return out;
    }
    case Op::Dale: {
      if (n.shape.rank() != 1) fail("Dale of shape " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t b = 0; b < out.nb; ++b)
        for (int64_t i = 0; i < out.numel; ++i)
          out.v[static_cast<size_t>(b * out.numel + i)] = i < n.a0 ? 1.0 : -1.0;
      return out;
    }
    case Op::Neg: need(1); return pointwise(n, x, batch, [](const double* a) { return -a[0]; });
    case Op::Exp: need(1); return pointwise(n, x, batch, [](const double* a) { return std::exp(a[0]); });
    case Op::Log: need(1); return pointwise(n, x, batch, [](const double* a) { return std::log(a[0]); });
    case Op::Tanh: need(1); return pointwise(n, x, batch, [](const double* a) { return std::tanh(a[0]); });
    case Op::Sigmoid: need(1); return pointwise(n, x, batch, [](const double* a) { return sigmoid(a[0]); });
    case Op::Relu: need(1); return pointwise(n, x, batch, [](const double* a) { return a[0] > 0 ? a[0] : 0.0; });
    case Op::Softplus: need(1); return pointwise(n, x, batch, [](const double* a) { return softplus(a[0]); });
    case Op::Abs: need(1); return pointwise(n, x, batch, [](const double* a) { return std::fabs(a[0]); });
    case Op::Sqrt: need(1); return pointwise(n, x, batch, [](const double* a) { return std::sqrt(a[0]); });
    case Op::Add: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] + a[1]; });
    case Op::Sub: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] - a[1]; });
    case Op::Mul: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] * a[1]; });
    case Op::Div: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] / a[1]; });
    case Op::Pow: need(2); return pointwise(n, x, batch, [](const double* a) { return std::pow(a[0], a[1]); });
    case Op::Min: need(2); return pointwise(n, x, batch, [](const double* a) { return std::min(a[0], a[1]); });
    case Op::Max: need(2); return pointwise(n, x, batch, [](const double* a) { return std::max(a[0], a[1]); });
    case Op::Lt: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] < a[1] ? 1.0 : 0.0; });
    case Op::Le: need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] <= a[1] ? 1.0 : 0.0; });
    case Op::Clip:
      need(3);
      return pointwise(n, x, batch, [](const double* a) { return std::min(std::max(a[0], a[1]), a[2]); });
    case Op::Where: need(3); return pointwise(n, x, batch, [](const double* a) { return a[0] != 0 ? a[1] : a[2]; });
    case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
      need(2); return pointwise(n, x, batch, [](const double* a) { return a[0] > 0 ? 1.0 : 0.0; });
    case Op::Broadcast: need(1); return pointwise(n, x, batch, [](const double* a) { return a[0]; });
    case Op::Outer: {
      need(2);
      const Value &a = *x[0], &b = *x[1];
      if (a.shape.rank() != 1 || b.shape.rank() != 1 ||
          n.shape.dims != std::vector<int64_t>{a.numel, b.numel})
        fail("Outer " + a.shape.str() + " x " + b.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t bi = 0; bi < out.nb; ++bi)
        for (int64_t i = 0; i < a.numel; ++i)
          for (int64_t j = 0; j < b.numel; ++j)
            out.v[static_cast<size_t>(bi * out.numel + i * b.numel + j)] = a.at(bi, i) * b.at(bi, j);
      return out;
    }
    case Op::Transpose: {
      need(1);
      const Value& a = *x[0];
      if (a.shape.rank() != 2 || n.shape.dims != std::vector<int64_t>{a.shape.dims[1], a.shape.dims[0]})
        fail("Transpose " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      int64_t r = a.shape.dims[0], c = a.shape.dims[1];
      for (int64_t bi = 0; bi < out.nb; ++bi)
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < c; ++j)
            out.v[static_cast<size_t>(bi * out.numel + j * r + i)] = a.at(bi, i * c + j);
      return out;
    }
    case Op::Slice: {
      need(1);
      const Value& a = *x[0];
      if (n.a0 < 0 || n.a0 >= a.shape.rank() || n.a1 < 0 || n.a2 > a.shape.dims[n.a0] ||
          n.a2 - n.a1 != n.shape.dims[n.a0])
        fail("Slice of " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t i = 0; i < out.numel; ++i) {
        std::vector<int64_t> idx = unravel(i, n.shape.dims);
        idx[n.a0] += n.a1;
        int64_t src = ravel(idx, a.shape.dims);
        for (int64_t bi = 0; bi < out.nb; ++bi) out.v[static_cast<size_t>(bi * out.numel + i)] = a.at(bi, src);
      }
      return out;
    }
    case Op::Pad: {
      need(1);
      const Value& a = *x[0];
      if (n.a0 < 0 || n.a0 >= a.shape.rank() || n.shape.dims[n.a0] != n.a2 ||
          n.a1 < 0 || n.a1 + a.shape.dims[n.a0] > n.a2)
        fail("Pad of " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      int64_t len = a.shape.dims[n.a0];
      for (int64_t i = 0; i < out.numel; ++i) {
        std::vector<int64_t> idx = unravel(i, n.shape.dims);
        if (idx[n.a0] < n.a1 || idx[n.a0] >= n.a1 + len) continue;  // zeros
        idx[n.a0] -= n.a1;
        int64_t src = ravel(idx, a.shape.dims);
        for (int64_t bi = 0; bi < out.nb; ++bi) out.v[static_cast<size_t>(bi * out.numel + i)] = a.at(bi, src);
      }
      return out;
    }
    case Op::Squeeze:
    case Op::Unsqueeze: {
      need(1);
      const Value& a = *x[0];
      std::vector<int64_t> d = a.shape.dims;
      if (n.op == Op::Squeeze) {
        if (n.a0 < 0 || n.a0 >= a.shape.rank() || d[n.a0] != 1) fail("Squeeze of " + a.shape.str());
        d.erase(d.begin() + n.a0);
      } else {
        if (n.a0 < 0 || n.a0 > a.shape.rank()) fail("Unsqueeze of " + a.shape.str());
        d.insert(d.begin() + n.a0, 1);
      }
      if (d != n.shape.dims || a.shape.batched != n.shape.batched)
        fail(std::string(opName(n.op)) + " " + a.shape.str() + " -> " + n.shape.str());
      Value out = a;  // same elements, new shape
      out.shape = n.shape;
      return out;
    }
    case Op::Concat: {
      if (x.empty() || n.shape.rank() == 0) fail("Concat of nothing");
      Value out = blank(n.shape, batch);
      int64_t last = n.shape.rank() - 1, total = 0;
      for (const Value* a : x) {
        if (a->shape.rank() != n.shape.rank()) fail("Concat operand " + a->shape.str());
        for (int64_t k = 0; k < last; ++k)
          if (a->shape.dims[k] != n.shape.dims[k]) fail("Concat operand " + a->shape.str() + " into " + n.shape.str());
        total += a->shape.dims[last];
      }
      if (total != n.shape.dims[last]) fail("Concat sizes do not add up to " + n.shape.str());
      for (int64_t i = 0; i < out.numel; ++i) {
        std::vector<int64_t> idx = unravel(i, n.shape.dims);
        size_t j = 0;
        while (idx[last] >= x[j]->shape.dims[last]) idx[last] -= x[j++]->shape.dims[last];
        int64_t src = ravel(idx, x[j]->shape.dims);
        for (int64_t bi = 0; bi < out.nb; ++bi) out.v[static_cast<size_t>(bi * out.numel + i)] = x[j]->at(bi, src);
      }
      return out;
    }
    case Op::MatMul: need(2); return matmul(n, *x[0], *x[1], batch);
    case Op::BatchOuterSum: {
      need(2);
      const Value &a = *x[0], &b = *x[1];
      if (a.shape.rank() != 1 || b.shape.rank() != 1 || !a.shape.batched || !b.shape.batched ||
          n.shape.batched || n.shape.dims != std::vector<int64_t>{a.numel, b.numel})
        fail("BatchOuterSum " + a.shape.str() + " x " + b.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      CMap A(a.v.data(), batch, a.numel), Bm(b.v.data(), batch, b.numel);
      Map Y(out.v.data(), a.numel, b.numel);
      Y.noalias() = A.transpose() * Bm;  // sum_b a_b b_b^T
      return out;
    }
    case Op::Sum: {
      need(1);
      const Value& a = *x[0];
      std::vector<int64_t> d = a.shape.dims;
      if (n.a0 == -1) d.clear();
      else if (n.a0 >= 0 && n.a0 < a.shape.rank()) d.erase(d.begin() + n.a0);
      else fail("Sum over axis " + std::to_string(n.a0) + " of " + a.shape.str());
      if (d != n.shape.dims || a.shape.batched != n.shape.batched) fail("Sum " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t i = 0; i < a.numel; ++i) {
        int64_t dst = 0;
        if (n.a0 >= 0) {
          std::vector<int64_t> idx = unravel(i, a.shape.dims);
          idx.erase(idx.begin() + n.a0);
          dst = ravel(idx, n.shape.dims);
        }
        for (int64_t bi = 0; bi < out.nb; ++bi) out.v[static_cast<size_t>(bi * out.numel + dst)] += a.at(bi, i);
      }
      return out;
    }
    case Op::Amax: {
      need(1);
      const Value& a = *x[0];
      std::vector<int64_t> d = a.shape.dims;
      if (n.a0 == -1) d.clear();
      else if (n.a0 >= 0 && n.a0 < a.shape.rank()) d.erase(d.begin() + n.a0);
      else fail("Amax over axis " + std::to_string(n.a0) + " of " + a.shape.str());
      if (d != n.shape.dims || a.shape.batched != n.shape.batched) fail("Amax " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      std::fill(out.v.begin(), out.v.end(), -std::numeric_limits<double>::infinity());
      for (int64_t i = 0; i < a.numel; ++i) {
        int64_t dst = 0;
        if (n.a0 >= 0) {
          std::vector<int64_t> idx = unravel(i, a.shape.dims);
          idx.erase(idx.begin() + n.a0);
          dst = ravel(idx, n.shape.dims);
        }
        for (int64_t bi = 0; bi < out.nb; ++bi) {
          double& o = out.v[static_cast<size_t>(bi * out.numel + dst)];
          o = std::max(o, a.at(bi, i));
        }
      }
      return out;
    }
    case Op::SumBatch: {
      need(1);
      const Value& a = *x[0];
      if (!a.shape.batched || n.shape.batched || a.shape.dims != n.shape.dims)
        fail("SumBatch " + a.shape.str() + " -> " + n.shape.str());
      Value out = blank(n.shape, batch);
      for (int64_t bi = 0; bi < a.nb; ++bi)
        for (int64_t i = 0; i < a.numel; ++i) out.v[static_cast<size_t>(i)] += a.at(bi, i);
      return out;
    }
  }
  fail(std::string("no evaluation for op ") + opName(n.op));
}

}  // namespace

std::vector<std::vector<double>> evaluate(const Graph& g, const std::vector<NodeId>& roots,
                                          const Layout& layout, const Leaves& leaves,
                                          int64_t batch) {
  if (batch < 1) fail("batch size " + std::to_string(batch));
  for (NodeId r : roots)
    if (r < 0 || static_cast<size_t>(r) >= g.size()) fail("root %" + std::to_string(r) + " is not a node");
  std::vector<NodeId> order = topoOrder(g, roots);
  // Uses left per node, so that a value is freed after its last use (roots are kept).
  std::vector<int> usesLeft(g.size(), 0);
  for (NodeId id : order)
    for (NodeId i : g[id].in) ++usesLeft[static_cast<size_t>(i)];
  for (NodeId r : roots) ++usesLeft[static_cast<size_t>(r)];
  std::vector<Value> vals(g.size());
  std::vector<const Value*> operands;
  for (NodeId id : order) {
    const Node& n = g[id];
    if (opArity(n.op) >= 0 && static_cast<int>(n.in.size()) != opArity(n.op))
      fail(std::string(opName(n.op)) + " node %" + std::to_string(id) + " has " + std::to_string(n.in.size()) + " operands");
    operands.clear();
    for (NodeId i : n.in) {
      operands.push_back(&vals[static_cast<size_t>(i)]);
      // Only the batch reductions drop the batch axis.
      if (g[i].shape.batched && !n.shape.batched && n.op != Op::SumBatch && n.op != Op::BatchOuterSum)
        fail(std::string(opName(n.op)) + " node %" + std::to_string(id) + " drops the batch axis of %" + std::to_string(i));
    }
    vals[static_cast<size_t>(id)] = compute(n, operands, layout, leaves, batch);
    const Value& v = vals[static_cast<size_t>(id)];
    if (v.shape != n.shape || static_cast<int64_t>(v.v.size()) != v.nb * n.shape.numel())
      fail("node %" + std::to_string(id) + " evaluated to the wrong size");
    for (NodeId i : n.in)
      if (--usesLeft[static_cast<size_t>(i)] == 0) vals[static_cast<size_t>(i)] = Value();
  }
  std::vector<std::vector<double>> out;
  for (NodeId r : roots) out.push_back(vals[static_cast<size_t>(r)].v);
  return out;
}

namespace {

// Writes root values into a role's buffer: batched slots at B * offset, unbatched (params) at
// offset, either overwriting or accumulating.
void store(const Graph& g, const std::vector<NodeId>& roots, const std::vector<std::vector<double>>& vals,
           const std::vector<Slot>& slots, bool batched, double* buf, int64_t batch, bool accumulate,
           const char* what) {
  if (roots.size() != slots.size()) fail(std::string(what) + ": " + std::to_string(roots.size()) + " roots for " + std::to_string(slots.size()) + " slots");
  for (size_t i = 0; i < roots.size(); ++i) {
    const Shape& s = g[roots[i]].shape;
    const Slot& slot = slots[i];
    if (s.batched != batched || s.dims != slot.shape.dims)
      fail(std::string(what) + " " + slot.name + " has shape " + s.str() + ", its slot " + slot.shape.str());
    double* dst = buf + (batched ? batch * slot.offset : slot.offset);
    const std::vector<double>& v = vals[i];
    for (size_t j = 0; j < v.size(); ++j) dst[j] = accumulate ? dst[j] + v[j] : v[j];
  }
}

}  // namespace

// Self-contained steps: the invariant part computed for this one step.
KernelTraits Evaluator::traits() const {
  KernelTraits t;
  t.omega = !ir_.omegaParam.empty();
  t.hoistedSize = ir_.hoistedSize;
  t.stagedWidth = ir_.stagedSize;
  return t;
}

void Evaluator::run(Stage stage, const StepArgs<double>& a) { cellc::runStage(*this, stage, a); }

void Evaluator::forward(const StepArgs<double>& a) {
  std::vector<double> hoisted(static_cast<size_t>(ir_.hoistedSize));
  prologue(a.params, hoisted.data());
  StepArgs<double> h = a;
  h.hoisted = hoisted.data();
  forwardHoisted(h);
}

void Evaluator::backward(const StepArgs<double>& a) {
  std::vector<double> hoisted(static_cast<size_t>(ir_.hoistedSize)), dHoisted(hoisted.size(), 0.0);
  prologue(a.params, hoisted.data());
  StepArgs<double> h = a;
  h.hoisted = hoisted.data();
  h.dHoisted = dHoisted.data();
  backwardHoisted(h);
  epilogue(h);
}

void Evaluator::prologue(const double* params, double* hoisted) {
  if (ir_.hoisted.empty()) return;
  Leaves leaves;
  leaves.params = params;
  std::vector<std::vector<double>> vals = evaluate(ir_.g, ir_.hoisted, ir_.layout, leaves, 1);
  store(ir_.g, ir_.hoisted, vals, ir_.hoistedSlots, false, hoisted, 1, false, "hoisted value");
}

void Evaluator::forwardHoisted(const StepArgs<double>& a) {
  Leaves leaves{a.params, a.state, a.input, a.noise, nullptr, nullptr};
  leaves.hoisted = a.hoisted;
  leaves.hoistedSlots = &ir_.hoistedSlots;
  std::vector<NodeId> roots = ir_.forwardRoots();
  std::vector<std::vector<double>> vals = evaluate(ir_.g, roots, ir_.layout, leaves, a.batch);
  size_t ns = ir_.stateNext.size();
  std::vector<std::vector<double>> sv(vals.begin(), vals.begin() + static_cast<long>(ns));
  std::vector<std::vector<double>> ov(vals.begin() + static_cast<long>(ns), vals.end());
  store(ir_.g, ir_.stateNext, sv, ir_.layout.states, true, a.stateNext, a.batch, false,
        "next state");
  store(ir_.g, ir_.outputs, ov, ir_.layout.outputs, true, a.output, a.batch, false, "output");
}

// Self-contained: this one step's deferred products through a one-step segment.
void Evaluator::backwardHoisted(const StepArgs<double>& a) {
  std::vector<double> segment(static_cast<size_t>(segmentSize(a.batch)));
  StepArgs<double> s = a;
  s.segment = segment.data();
  s.k = 0;
  s.steps = 1;
  backwardSegment(s);
  segmentEpilogue(s);
}

void Evaluator::backwardSegment(const StepArgs<double>& a) {
  Leaves leaves{a.params, a.state, a.input, a.noise, a.dStateNext, a.dOutput};
  leaves.hoisted = a.hoisted;
  leaves.hoistedSlots = &ir_.hoistedSlots;
  const int64_t batch = a.batch;
  std::vector<NodeId> roots = ir_.backwardRoots();
  std::vector<std::vector<double>> vals = evaluate(ir_.g, roots, ir_.layout, leaves, batch);
  auto part = [&](size_t from, size_t count) {
    return std::vector<std::vector<double>>(vals.begin() + static_cast<long>(from),
                                            vals.begin() + static_cast<long>(from + count));
  };
  size_t ns = ir_.dState.size(), ni = ir_.dInput.size(), np = ir_.dParam.size();
  store(ir_.g, ir_.dState, part(0, ns), ir_.layout.states, true, a.dState, batch, false,
        "state adjoint");
  store(ir_.g, ir_.dInput, part(ns, ni), ir_.layout.inputs, true, a.dInput, batch, false,
        "input adjoint");
  store(ir_.g, ir_.dParam, part(ns + ni, np), ir_.layout.params, false, a.dParams, batch, true,
        "param gradient");
  store(ir_.g, ir_.dHoisted, part(ns + ni + np, ir_.dHoisted.size()), ir_.hoistedSlots, false,
        a.dHoisted, batch, true, "hoisted adjoint");
  // Segment value i, batch element b: row k * B + b of the segment, columns from its offset.
  const size_t nh = ir_.dHoisted.size();
  for (size_t i = 0; i < ir_.segmentValues.size(); ++i) {
    const std::vector<double>& v = vals[ns + ni + np + nh + i];
    const int64_t cols = ir_.g[ir_.segmentValues[i]].shape.numel();
    if (static_cast<int64_t>(v.size()) != cols * batch)
      throw ir::InternalError("evaluator: segment value %" + std::to_string(ir_.segmentValues[i]) + " is not batched");
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(v.begin() + b * cols, cols,
                  a.segment + (a.k * batch + b) * ir_.segmentSize + ir_.segmentOffsets[i]);
  }
}

// dW[i, j] += sum over the segment's rows r of A[r, i] B[r, j], in plain loops.
void Evaluator::segmentEpilogue(const StepArgs<double>& a) {
  const int64_t rows = a.steps * a.batch, width = ir_.segmentSize;
  for (const StepIR::Deferred& d : ir_.deferred) {
    const ir::Slot& slot = d.toHoisted ? ir_.hoistedSlots.at(static_cast<size_t>(d.slot))
                                       : ir_.layout.params.at(static_cast<size_t>(d.slot));
    double* out = (d.toHoisted ? a.dHoisted : a.dParams) + slot.offset;
    const int64_t m = ir_.g[ir_.segmentValues[d.a]].shape.numel();
    const int64_t p = ir_.g[ir_.segmentValues[d.b]].shape.numel();
    if (m * p != slot.size) throw ir::InternalError("evaluator: a deferred product of the wrong size");
    const double* A = a.segment + ir_.segmentOffsets[d.a];
    const double* B = a.segment + ir_.segmentOffsets[d.b];
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < p; ++j) {
        double sum = 0;
        for (int64_t r = 0; r < rows; ++r) sum += A[r * width + i] * B[r * width + j];
        out[i * p + j] += sum;
      }
  }
}

void Evaluator::epilogue(const StepArgs<double>& a) {
  if (ir_.hoisted.empty()) return;
  Leaves leaves;
  leaves.params = a.params;
  leaves.hoisted = a.hoisted;
  leaves.adjHoisted = a.dHoisted;
  leaves.hoistedSlots = &ir_.hoistedSlots;
  std::vector<std::vector<double>> vals = evaluate(ir_.g, ir_.epilogueParam, ir_.layout, leaves, 1);
  store(ir_.g, ir_.epilogueParam, vals, ir_.layout.params, false, a.dParams, 1, true,
        "epilogue gradient");
}

void Evaluator::omega(const StepArgs<double>& a) {
  Leaves leaves{a.params, a.state, a.input, a.noise, a.v, nullptr, a.cotangent};
  std::vector<std::vector<double>> vals =
      evaluate(ir_.g, ir_.omegaParam, ir_.layout, leaves, a.batch);
  store(ir_.g, ir_.omegaParam, vals, ir_.layout.params, false, a.dParams, a.batch, true,
        "Omega gradient");
}

namespace {

// Batch element b's value i to b * width + slots[i].offset (the staged buffers' rows).
void storeRows(const Graph& g, const std::vector<NodeId>& roots, const std::vector<std::vector<double>>& vals,
               size_t from, const std::vector<Slot>& slots, int64_t width, double* buf, int64_t batch) {
  for (size_t i = 0; i < slots.size(); ++i) {
    const std::vector<double>& v = vals[from + i];
    const int64_t n = slots[i].size;
    if (g[roots[i]].shape.numel() != n || static_cast<int64_t>(v.size()) != n * batch)
      throw ir::InternalError("evaluator: staged value " + slots[i].name + " of the wrong size");
    for (int64_t b = 0; b < batch; ++b) std::copy_n(v.begin() + b * n, n, buf + b * width + slots[i].offset);
  }
}

// The leaves of a staged step: its buffers, the hoisted and staged values (this step's rows), and
// with `adjoints` the backward's seeds.
Leaves stagedLeaves(const StepIR& ir, const StepArgs<double>& a, bool adjoints) {
  Leaves leaves{a.params, a.state, a.input, a.noise, adjoints ? a.dStateNext : nullptr,
                adjoints ? a.dOutput : nullptr};
  leaves.hoisted = a.hoisted;
  leaves.hoistedSlots = &ir.hoistedSlots;
  leaves.staged = a.staged;
  leaves.stagedSlots = &ir.stagedSlots;
  leaves.stagedWidth = ir.stagedSize;
  return leaves;
}

}  // namespace

void Evaluator::inputPrologue(const StepArgs<double>& a) {
  if (ir_.staged.empty()) throw std::logic_error("this step has no input stage");
  const Leaves leaves = stagedLeaves(ir_, a, false);  // the staged roots read no staged leaf
  std::vector<std::vector<double>> vals = evaluate(ir_.g, ir_.staged, ir_.layout, leaves, a.batch);
  storeRows(ir_.g, ir_.staged, vals, 0, ir_.stagedSlots, ir_.stagedSize, a.staged, a.batch);
}

void Evaluator::forwardStaged(const StepArgs<double>& a) {
  if (ir_.staged.empty()) throw std::logic_error("this step has no input stage");
  const Leaves leaves = stagedLeaves(ir_, a, false);
  std::vector<NodeId> roots = ir_.forwardRoots();
  std::vector<std::vector<double>> vals = evaluate(ir_.g, roots, ir_.layout, leaves, a.batch);
  const size_t ns = ir_.stateNext.size();
  store(ir_.g, ir_.stateNext, {vals.begin(), vals.begin() + static_cast<long>(ns)}, ir_.layout.states, true,
        a.stateNext, a.batch, false, "next state");
  store(ir_.g, ir_.outputs, {vals.begin() + static_cast<long>(ns), vals.end()}, ir_.layout.outputs, true,
        a.output, a.batch, false, "output");
}

void Evaluator::backwardStaged(const StepArgs<double>& a) {
  if (ir_.staged.empty()) throw std::logic_error("this step has no input stage");
  const Leaves leaves = stagedLeaves(ir_, a, true);
  std::vector<NodeId> roots = ir_.backwardRoots();  // dState, dParam, dHoisted, dStaged
  std::vector<std::vector<double>> vals = evaluate(ir_.g, roots, ir_.layout, leaves, a.batch);
  auto part = [&](size_t from, size_t count) {
    return std::vector<std::vector<double>>(vals.begin() + static_cast<long>(from),
                                            vals.begin() + static_cast<long>(from + count));
  };
  const size_t ns = ir_.dState.size(), np = ir_.dParam.size(), nh = ir_.dHoisted.size();
  store(ir_.g, ir_.dState, part(0, ns), ir_.layout.states, true, a.dState, a.batch, false, "state adjoint");
  store(ir_.g, ir_.dParam, part(ns, np), ir_.layout.params, false, a.dParams, a.batch, true, "param gradient");
  store(ir_.g, ir_.dHoisted, part(ns + np, nh), ir_.hoistedSlots, false, a.dHoisted, a.batch, true,
        "hoisted adjoint");
  storeRows(ir_.g, ir_.dStaged, vals, ns + np + nh, ir_.stagedSlots, ir_.stagedSize, a.dStaged, a.batch);
}

void Evaluator::inputEpilogue(const StepArgs<double>& a) {
  if (ir_.staged.empty()) throw std::logic_error("this step has no input stage");
  Leaves leaves = stagedLeaves(ir_, a, false);
  leaves.adjStaged = a.dStaged;
  std::vector<NodeId> roots = ir_.inputEpilogueParam;
  roots.insert(roots.end(), ir_.inputEpilogueHoisted.begin(), ir_.inputEpilogueHoisted.end());
  std::vector<std::vector<double>> vals = evaluate(ir_.g, roots, ir_.layout, leaves, a.batch);
  const size_t np = ir_.inputEpilogueParam.size();
  store(ir_.g, ir_.inputEpilogueParam, {vals.begin(), vals.begin() + static_cast<long>(np)}, ir_.layout.params,
        false, a.dParams, a.batch, true, "input epilogue gradient");
  store(ir_.g, ir_.inputEpilogueHoisted, {vals.begin() + static_cast<long>(np), vals.end()}, ir_.hoistedSlots,
        false, a.dHoisted, a.batch, true, "input epilogue hoisted adjoint");
}

}  // namespace cellc::eval
