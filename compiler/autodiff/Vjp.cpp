// One vector-Jacobian rule per op, in one table. Each rule gets the node y = op(x...), its adjoint
// g (same shape as y) and emits contributions to its operands' adjoints through `acc`, which sums
// them over broadcast axes (the batch axis included) so each has its operand's shape. Rules reuse
// forward values (y) instead of recomputing them: tanh' = 1 - y^2, sigmoid' = y (1 - y), exp' = y.
// Subgradients at kinks: relu'(0) = 0, abs'(0) = 0; min/max send the adjoint to the first operand
// on ties, amax shares it between tied maxima; clip passes it for lo <= x <= hi (bounds included,
// as PyTorch's clamp).
#include "autodiff/Vjp.h"

#include <numbers>

#include <array>
#include <functional>

namespace cellc::autodiff {

using namespace cellc::ir;

namespace {

struct Ctx {
  Graph& g;
  NodeId y;
  NodeId grad;
  Node node() const { return g[y]; }  // a copy: rules add nodes, which moves storage
  NodeId in(size_t i) const { return g[y].in[i]; }
  std::function<void(size_t, NodeId)> acc;  // contribution to operand i
};

using Rule = void (*)(Ctx&);

// The table. nullptr: the op has no rule (a bug, caught by a test); kZero: constant in its
// operands (no contribution).
void kZero(Ctx&) {}

void matmulRule(Ctx& c) {
  Graph& g = c.g;
  NodeId a = c.in(0), b = c.in(1), d = c.grad;
  int ra = g[a].shape.rank(), rb = g[b].shape.rank();
  if (ra == 2 && rb == 1) {  // y[m] = A[m,k] x[k]: dA = g x^T, dx = A^T g
    c.acc(0, g.binary(Op::Outer, d, b));
    c.acc(1, g.binary(Op::MatMul, g.transpose(a), d));
  } else if (ra == 1 && rb == 2) {  // y[p] = a[k] B[k,p]: da = B g, dB = a g^T
    c.acc(0, g.binary(Op::MatMul, b, d));
    c.acc(1, g.binary(Op::Outer, a, d));
  } else if (ra == 2 && rb == 2) {  // Y = A B: dA = G B^T, dB = A^T G
    c.acc(0, g.binary(Op::MatMul, d, g.transpose(b)));
    c.acc(1, g.binary(Op::MatMul, g.transpose(a), d));
  } else {  // y = a . b: da = g b, db = g a
    c.acc(0, g.mul(d, b));
    c.acc(1, g.mul(d, a));
  }
}

const std::array<Rule, kNumOps>& rules() {
  static const std::array<Rule, kNumOps> table = [] {
    std::array<Rule, kNumOps> t{};
    auto set = [&](Op op, Rule r) { t[static_cast<int>(op)] = r; };
    // Leaves and constants: nothing flows further.
    for (Op op : {Op::Const, Op::Param, Op::State, Op::Input, Op::Noise, Op::AdjState,
                  Op::AdjOutput, Op::Cotangent, Op::Hoisted, Op::AdjHoisted, Op::Staged, Op::AdjStaged, Op::Eye, Op::Dale, Op::Lt, Op::Le})
      set(op, kZero);  // Lt, Le: piecewise constant, derivative 0 almost everywhere
    // y = -x: dx = -g
    set(Op::Neg, [](Ctx& c) { c.acc(0, c.g.neg(c.grad)); });
    // y = exp(x): dx = g y
    set(Op::Exp, [](Ctx& c) { c.acc(0, c.g.mul(c.grad, c.y)); });
    // y = log(x): dx = g / x
    set(Op::Log, [](Ctx& c) { c.acc(0, c.g.div(c.grad, c.in(0))); });
    // y = tanh(x): dx = g (1 - y^2)
    set(Op::Tanh, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.mul(c.grad, g.sub(g.constant(1), g.mul(c.y, c.y))));
    });
    // y = sigmoid(x): dx = g y (1 - y)
    set(Op::Sigmoid, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.mul(c.grad, g.mul(c.y, g.sub(g.constant(1), c.y))));
    });
    // y = relu(x): dx = g [x > 0]
    set(Op::Relu, [](Ctx& c) {
      c.acc(0, c.g.mul(c.grad, c.g.binary(Op::Lt, c.g.constant(0), c.in(0))));
    });
    // y = softplus(x) = log(1 + e^x): dx = g sigmoid(x)
    set(Op::Softplus, [](Ctx& c) { c.acc(0, c.g.mul(c.grad, c.g.unary(Op::Sigmoid, c.in(0)))); });
    // y = |x|: dx = g sign(x), sign(0) = 0
    set(Op::Abs, [](Ctx& c) {
      Graph& g = c.g;
      NodeId zero = g.constant(0), x = c.in(0);
      c.acc(0, g.mul(c.grad, g.sub(g.binary(Op::Lt, zero, x), g.binary(Op::Lt, x, zero))));
    });
    // y = sqrt(x): dx = g / (2 y)
    set(Op::Sqrt, [](Ctx& c) { c.acc(0, c.g.div(c.grad, c.g.mul(c.g.constant(2), c.y))); });
    // y = a + b: da = g, db = g
    set(Op::Add, [](Ctx& c) { c.acc(0, c.grad); c.acc(1, c.grad); });
    // y = a - b: da = g, db = -g
    set(Op::Sub, [](Ctx& c) { c.acc(0, c.grad); c.acc(1, c.g.neg(c.grad)); });
    // y = a b: da = g b, db = g a
    set(Op::Mul, [](Ctx& c) { c.acc(0, c.g.mul(c.grad, c.in(1))); c.acc(1, c.g.mul(c.grad, c.in(0))); });
    // y = a / b: da = g / b, db = -g y / b
    set(Op::Div, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.div(c.grad, c.in(1)));
      c.acc(1, g.neg(g.div(g.mul(c.grad, c.y), c.in(1))));
    });
    // y = a^b: da = g b a^(b-1), db = g y log(a), with log(a) read as log(1) = 0 at a = 0 (where
    // y = 0 for b > 0: the true derivative is 0, not 0 * -inf)
    set(Op::Pow, [](Ctx& c) {
      Graph& g = c.g;
      NodeId a = c.in(0), b = c.in(1), zero = g.constant(0);
      c.acc(0, g.mul(c.grad, g.mul(b, g.binary(Op::Pow, a, g.sub(b, g.constant(1))))));
      NodeId isZero = g.sub(g.binary(Op::Le, a, zero), g.binary(Op::Lt, a, zero));
      c.acc(1, g.mul(c.grad, g.mul(c.y, g.unary(Op::Log, g.add(a, isZero)))));
    });
    // y = min(a, b): da = g [a <= b], db = g [b < a]
    set(Op::Min, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.mul(c.grad, g.binary(Op::Le, c.in(0), c.in(1))));
      c.acc(1, g.mul(c.grad, g.binary(Op::Lt, c.in(1), c.in(0))));
    });
    // y = max(a, b): da = g [a >= b], db = g [b > a]
    set(Op::Max, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.mul(c.grad, g.binary(Op::Le, c.in(1), c.in(0))));
      c.acc(1, g.mul(c.grad, g.binary(Op::Lt, c.in(0), c.in(1))));
    });
    // y = min(max(x, lo), hi): dx = g [lo <= x <= hi], dlo = g [x < lo] [lo <= hi],
    // dhi = g [hi < max(x, lo)] (right also when lo > hi, where y = hi)
    set(Op::Clip, [](Ctx& c) {
      Graph& g = c.g;
      NodeId x = c.in(0), lo = c.in(1), hi = c.in(2);
      c.acc(0, g.mul(c.grad, g.mul(g.binary(Op::Le, lo, x), g.binary(Op::Le, x, hi))));
      c.acc(1, g.mul(c.grad, g.mul(g.binary(Op::Lt, x, lo), g.binary(Op::Le, lo, hi))));
      c.acc(2, g.mul(c.grad, g.binary(Op::Lt, hi, g.binary(Op::Max, x, lo))));
    });
    // y = where(c, a, b): da = where(c, g, 0), db = where(c, 0, g); c gets none (piecewise constant)
    set(Op::Where, [](Ctx& c) {
      Graph& g = c.g;
      NodeId cond = c.in(0), zero = g.constant(0);
      c.acc(1, g.where(cond, c.grad, zero));
      c.acc(2, g.where(cond, zero, c.grad));
    });
    // y = heaviside(x) (1 where x > 0): its derivative is 0 almost everywhere, so it is replaced by
    // the surrogate dx = g / (1 + k|x|)^2 (SuperSpike's fast sigmoid, Zenke & Ganguli 2018); the
    // slope k (in(1), a constant) gets none. This is not the derivative of y: docs/language.md.
    set(Op::Heaviside, [](Ctx& c) {
      Graph& g = c.g;
      NodeId d = g.add(g.constant(1), g.mul(c.in(1), g.unary(Op::Abs, c.in(0))));
      c.acc(0, g.div(c.grad, g.mul(d, d)));
    });
    // The other surrogates (each integrates to 1 over x except the triangle, whose peak is 1):
    // sigmoid: dx = g k s (1 - s), s = sigmoid(k x) (snnTorch's surrogate.sigmoid(slope = k))
    set(Op::HeavisideSigmoid, [](Ctx& c) {
      Graph& g = c.g;
      NodeId s = g.unary(Op::Sigmoid, g.mul(c.in(1), c.in(0)));
      c.acc(0, g.mul(c.grad, g.mul(c.in(1), g.mul(s, g.sub(g.constant(1), s)))));
    });
    // atan: dx = g (k / 2) / (1 + (pi k x / 2)^2) (snnTorch's surrogate.atan(alpha = k))
    set(Op::HeavisideAtan, [](Ctx& c) {
      Graph& g = c.g;
      NodeId z = g.mul(g.constant(std::numbers::pi / 2), g.mul(c.in(1), c.in(0)));
      NodeId d = g.add(g.constant(1), g.mul(z, z));
      c.acc(0, g.div(g.mul(c.grad, g.mul(g.constant(0.5), c.in(1))), d));
    });
    // triangle: dx = g max(0, 1 - k|x|) (Bellec et al. 2018's piecewise-linear pseudo-derivative)
    set(Op::HeavisideTriangle, [](Ctx& c) {
      Graph& g = c.g;
      NodeId tri = g.sub(g.constant(1), g.mul(c.in(1), g.unary(Op::Abs, c.in(0))));
      c.acc(0, g.mul(c.grad, g.unary(Op::Relu, tri)));
    });
    // y[i,j] = a[i] b[j]: da[i] = sum_j g[i,j] b[j], db[j] = sum_i g[i,j] a[i]
    set(Op::Outer, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.sum(g.mul(c.grad, c.in(1)), 1));
      c.acc(1, g.sum(g.mul(c.grad, g.unsqueeze(c.in(0), 1)), 0));
    });
    // y = x^T: dx = g^T
    set(Op::Transpose, [](Ctx& c) { c.acc(0, c.g.transpose(c.grad)); });
    // y = x[lo:hi] on an axis: dx = g placed at [lo, hi) in zeros
    set(Op::Slice, [](Ctx& c) {
      const Node n = c.node();
      c.acc(0, c.g.pad(c.grad, n.a0, n.a1, c.g[c.in(0)].shape.dims[n.a0]));
    });
    // y = squeeze(x, axis): dx = unsqueeze(g, axis)
    set(Op::Squeeze, [](Ctx& c) { c.acc(0, c.g.unsqueeze(c.grad, c.node().a0)); });
    // y = unsqueeze(x, axis): dx = squeeze(g, axis)
    set(Op::Unsqueeze, [](Ctx& c) { c.acc(0, c.g.squeeze(c.grad, c.node().a0)); });
    // y = pad(x): dx = g[lo : lo + len]
    set(Op::Pad, [](Ctx& c) {
      const Node n = c.node();
      int64_t len = c.g[c.in(0)].shape.dims[n.a0];
      c.acc(0, c.g.slice(c.grad, n.a0, n.a1, n.a1 + len));
    });
    // y = concat(x_0, x_1, ...): dx_i = g[off_i : off_i + len_i] on the last axis
    set(Op::Concat, [](Ctx& c) {
      const Node n = c.node();
      int64_t axis = n.shape.rank() - 1, off = 0;
      for (size_t i = 0; i < n.in.size(); ++i) {
        int64_t len = c.g[n.in[i]].shape.dims.back();
        c.acc(i, c.g.slice(c.grad, axis, off, off + len));
        off += len;
      }
    });
    // y = broadcast(x): dx = g summed over the broadcast axes
    set(Op::Broadcast, [](Ctx& c) { c.acc(0, c.grad); });
    set(Op::MatMul, matmulRule);
    // y = sum_b a_b b_b^T: da = g b, db = g^T a (per batch element)
    set(Op::BatchOuterSum, [](Ctx& c) {
      Graph& g = c.g;
      c.acc(0, g.binary(Op::MatMul, c.grad, c.in(1)));
      c.acc(1, g.binary(Op::MatMul, g.transpose(c.grad), c.in(0)));
    });
    // y = sum(x, axis): dx = g broadcast back along the axis
    set(Op::Sum, [](Ctx& c) {
      const Node n = c.node();
      const Shape xs = c.g[c.in(0)].shape;
      NodeId d = n.a0 < 0 ? c.grad : c.g.unsqueeze(c.grad, n.a0);
      if (n.a0 < 0)
        for (int i = 0; i < xs.rank(); ++i) d = c.g.unsqueeze(d, 0);
      c.acc(0, c.g.broadcast(d, xs));
    });
    // y = amax(x, axis): dx = g [x == y] / #{x == y}, broadcast back along the axis: the adjoint
    // goes to the argmax, shared equally between tied maxima (as torch.amax)
    set(Op::Amax, [](Ctx& c) {
      Graph& g = c.g;
      const Node n = c.node();
      const NodeId x = c.in(0);
      const Shape xs = g[x].shape;
      auto back = [&](NodeId v) {  // a value of y's shape, broadcast to x's
        if (n.a0 >= 0) return g.broadcast(g.unsqueeze(v, n.a0), xs);
        for (int i = 0; i < xs.rank(); ++i) v = g.unsqueeze(v, 0);
        return g.broadcast(v, xs);
      };
      NodeId atMax = g.binary(Op::Le, back(c.y), x);
      NodeId count = n.a0 >= 0 ? g.sum(atMax, n.a0) : g.sum(atMax, -1);
      c.acc(0, g.mul(atMax, back(g.div(c.grad, count))));
    });
    // y = sum over the batch of x: dx = g for every batch element
    set(Op::SumBatch, [](Ctx& c) { c.acc(0, c.g.broadcast(c.grad, c.g[c.in(0)].shape)); });
    return t;
  }();
  return table;
}

// Which nodes depend on something differentiable (params, states, inputs): only those get
// adjoints, so the backward graph holds no dead branches into constants and noise.
std::vector<bool> needsGrad(const Graph& g, const std::vector<NodeId>& order) {
  std::vector<bool> need(g.size(), false);
  for (NodeId id : order) {
    const Node& n = g[id];
    if (n.op == Op::Param || n.op == Op::State || n.op == Op::Input || n.op == Op::Hoisted ||
        n.op == Op::Staged)
      need[id] = true;
    for (NodeId i : n.in) need[id] = need[id] || need[i];
  }
  return need;
}

}  // namespace

bool hasRule(Op op) { return rules()[static_cast<int>(op)] != nullptr; }

std::vector<NodeId> Backward::roots() const {
  std::vector<NodeId> r = dState;
  r.insert(r.end(), dInput.begin(), dInput.end());
  r.insert(r.end(), dParam.begin(), dParam.end());
  return r;
}

std::vector<NodeId> reverse(Graph& g, const std::vector<NodeId>& roots,
                            const std::vector<NodeId>& seeds, const std::vector<NodeId>& wrt) {
  std::vector<NodeId> order = topoOrder(g, roots);
  std::vector<bool> need = needsGrad(g, order);
  std::vector<NodeId> adj(g.size(), -1);

  // Sums a contribution into x's adjoint, reduced to x's shape. A batch sum of per-element outer
  // products becomes one BatchOuterSum (a GEMM over the batch) instead of B rank-1 updates.
  auto accumulate = [&](NodeId x, NodeId contrib) {
    if (x >= static_cast<NodeId>(need.size()) || !need[x]) return;
    const Shape xs = g[x].shape;
    const Node cn = g[contrib];
    if (cn.op == Op::Outer && !xs.batched && g[cn.in[0]].shape.batched && g[cn.in[1]].shape.batched)
      contrib = g.batchOuterSum(cn.in[0], cn.in[1]);
    contrib = g.reduceTo(contrib, xs);
    adj[x] = adj[x] < 0 ? contrib : g.add(adj[x], contrib);
  };

  for (size_t i = 0; i < roots.size(); ++i) accumulate(roots[i], seeds[i]);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    NodeId y = *it;
    if (adj[y] < 0 || opKind(g[y].op) == OpKind::Leaf) continue;
    Rule rule = rules()[static_cast<int>(g[y].op)];
    if (!rule) throw InternalError(std::string("no derivative rule for ") + opName(g[y].op));
    g.setLoc(g[y].loc);  // backward nodes inherit the forward node's source line
    Ctx c{g, y, adj[y], [&, y](size_t i, NodeId d) { accumulate(g[y].in[i], d); }};
    rule(c);
  }
  std::vector<NodeId> out;
  for (NodeId w : wrt) {
    NodeId a = w < static_cast<NodeId>(adj.size()) ? adj[w] : -1;
    out.push_back(a >= 0 ? a : g.broadcast(g.constant(0), g[w].shape));
  }
  return out;
}

namespace {

std::vector<NodeId> leaves(Graph& g, Op role, const std::vector<Slot>& slots) {
  std::vector<NodeId> out;
  for (size_t i = 0; i < slots.size(); ++i) out.push_back(g.leaf(role, static_cast<int64_t>(i), slots[i].shape));
  return out;
}

}  // namespace

Backward differentiate(Step& step) {
  Graph& g = step.g;
  const Layout& L = step.layout;
  std::vector<NodeId> roots = step.forwardRoots(), seeds = leaves(g, Op::AdjState, L.states);
  for (NodeId s : leaves(g, Op::AdjOutput, L.outputs)) seeds.push_back(s);
  std::vector<NodeId> wrt = leaves(g, Op::State, L.states);
  const size_t ns = wrt.size(), ni = L.inputs.size();
  for (NodeId x : leaves(g, Op::Input, L.inputs)) wrt.push_back(x);
  for (NodeId p : leaves(g, Op::Param, L.params)) wrt.push_back(p);
  std::vector<NodeId> adj = reverse(g, roots, seeds, wrt);
  Backward bw;
  bw.dState.assign(adj.begin(), adj.begin() + ns);
  bw.dInput.assign(adj.begin() + ns, adj.begin() + ns + ni);
  bw.dParam.assign(adj.begin() + ns + ni, adj.end());
  return bw;
}

std::vector<NodeId> omegaGradient(Step& step) {
  Graph& g = step.g;
  const Layout& L = step.layout;
  // w = v^T dx'/dx: the adjoint of the state through the transition alone (no output term).
  std::vector<NodeId> w = reverse(g, step.stateNext, leaves(g, Op::AdjState, L.states),
                                  leaves(g, Op::State, L.states));
  // d/dtheta of sum_s c_s . w_s, with v and x held constant (Pascanu et al. 2013, as pycog).
  return reverse(g, w, leaves(g, Op::Cotangent, L.states), leaves(g, Op::Param, L.params));
}

}  // namespace cellc::autodiff
