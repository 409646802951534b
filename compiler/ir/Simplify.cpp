#include "ir/Simplify.h"

#include <cmath>

namespace cellc::ir {
namespace {

class Simplifier {
 public:
  explicit Simplifier(const Graph& in) : in_(in), map_(in.size(), -1) {}

  Graph run(std::vector<NodeId>& roots) {
    for (NodeId id : topoOrder(in_, roots)) map_[id] = rebuild(in_[id]);
    for (NodeId& r : roots) r = map_[r];
    return std::move(g_);
  }

 private:
  bool isConst(NodeId id, double v) const {
    const Node& n = g_[id];
    if (n.op == Op::Broadcast) return isConst(n.in[0], v);
    return n.op == Op::Const && n.value == v;
  }
  bool isZero(NodeId id) const { return isConst(id, 0.0); }
  bool isOne(NodeId id) const { return isConst(id, 1.0); }
  NodeId zeros(const Shape& s) { return g_.broadcast(g_.constant(0), s); }

  NodeId rebuild(const Node& n) {
    g_.setLoc(n.loc);
    std::vector<NodeId> x;
    for (NodeId i : n.in) x.push_back(map_[i]);
    const Shape& s = n.shape;
    switch (n.op) {
      case Op::Const: return g_.constant(n.value);
      case Op::Param: case Op::State: case Op::Input: case Op::Noise: case Op::AdjState:
      case Op::AdjOutput: case Op::Cotangent: case Op::Hoisted: case Op::AdjHoisted: case Op::Staged:
      case Op::AdjStaged:
        return g_.leaf(n.op, n.a0, s);
      case Op::Eye: return g_.eye(s.dims[0]);
      case Op::Dale: return g_.dale(s.dims[0], n.a0);
      default: break;
    }
    if (NodeId f = foldConstant(n, x); f >= 0) return f;
    switch (n.op) {
      case Op::Add:
        if (isZero(x[0])) return g_.broadcast(x[1], s);
        if (isZero(x[1])) return g_.broadcast(x[0], s);
        // a + (-b) = a - b: autodiff makes these from Sub's rule.
        if (g_[x[1]].op == Op::Neg) return g_.sub(x[0], g_[x[1]].in[0]);
        if (g_[x[0]].op == Op::Neg) return g_.sub(x[1], g_[x[0]].in[0]);
        return g_.add(x[0], x[1]);
      case Op::Sub:
        if (isZero(x[1])) return g_.broadcast(x[0], s);
        if (isZero(x[0])) return g_.broadcast(g_.neg(x[1]), s);
        if (x[0] == x[1]) return zeros(s);
        if (g_[x[1]].op == Op::Neg) return g_.add(x[0], g_[x[1]].in[0]);
        return g_.sub(x[0], x[1]);
      case Op::Mul:
        if (isZero(x[0]) || isZero(x[1])) return zeros(s);
        if (isOne(x[0])) return g_.broadcast(x[1], s);
        if (isOne(x[1])) return g_.broadcast(x[0], s);
        if (isConst(x[0], -1)) return g_.broadcast(g_.neg(x[1]), s);
        if (isConst(x[1], -1)) return g_.broadcast(g_.neg(x[0]), s);
        return g_.mul(x[0], x[1]);
      case Op::Div:
        if (isZero(x[0])) return zeros(s);
        if (isOne(x[1])) return g_.broadcast(x[0], s);
        return g_.div(x[0], x[1]);
      case Op::Neg:
        if (isZero(x[0])) return zeros(s);
        if (g_[x[0]].op == Op::Neg) return g_[x[0]].in[0];
        return g_.neg(x[0]);
      case Op::Pow:
        if (isOne(x[1])) return g_.broadcast(x[0], s);
        if (isZero(x[1])) return g_.broadcast(g_.constant(1), s);
        if (isConst(x[1], 2)) return g_.broadcast(g_.mul(x[0], x[0]), s);
        return g_.binary(Op::Pow, x[0], x[1]);
      case Op::MatMul: case Op::Outer:
        if (isZero(x[0]) || isZero(x[1])) return zeros(s);
        return g_.binary(n.op, x[0], x[1]);
      case Op::BatchOuterSum:
        if (isZero(x[0]) || isZero(x[1])) return zeros(s);
        return g_.batchOuterSum(x[0], x[1]);
      case Op::Clip: return g_.clip(x[0], x[1], x[2]);
      case Op::Where:  // a constant condition picks a side; equal sides need no condition
        if (x[1] == x[2]) return g_.broadcast(x[1], s);
        if (isZero(x[1]) && isZero(x[2])) return zeros(s);
        if (g_[x[0]].op == Op::Const || (g_[x[0]].op == Op::Broadcast && g_[g_[x[0]].in[0]].op == Op::Const)) {
          const Node& c = g_[x[0]].op == Op::Const ? g_[x[0]] : g_[g_[x[0]].in[0]];
          return g_.broadcast(c.value != 0 ? x[1] : x[2], s);
        }
        return g_.where(x[0], x[1], x[2]);
      case Op::Transpose:
        if (isZero(x[0])) return zeros(s);
        if (g_[x[0]].op == Op::Transpose) return g_[x[0]].in[0];
        return g_.transpose(x[0]);
      case Op::Slice:
        if (isZero(x[0])) return zeros(s);
        return g_.slice(x[0], n.a0, n.a1, n.a2);
      case Op::Pad:
        if (isZero(x[0])) return zeros(s);
        return g_.pad(x[0], n.a0, n.a1, n.a2);
      case Op::Squeeze:
        if (isZero(x[0])) return zeros(s);
        if (g_[x[0]].op == Op::Unsqueeze && g_[x[0]].a0 == n.a0) return g_[x[0]].in[0];
        return g_.squeeze(x[0], n.a0);
      case Op::Unsqueeze:
        if (isZero(x[0])) return zeros(s);
        if (g_[x[0]].op == Op::Squeeze && g_[x[0]].a0 == n.a0) return g_[x[0]].in[0];
        return g_.unsqueeze(x[0], n.a0);
      case Op::Concat: {
        bool allZero = true;
        for (NodeId i : x) allZero = allZero && isZero(i);
        return allZero ? zeros(s) : g_.concat(x);
      }
      case Op::Broadcast:
        if (g_[x[0]].op == Op::Broadcast) return g_.broadcast(g_[x[0]].in[0], s);
        return g_.broadcast(x[0], s);
      case Op::Sum:
        if (isZero(x[0])) return zeros(s);
        return g_.sum(x[0], n.a0);
      case Op::SumBatch:
        if (isZero(x[0])) return zeros(s);
        return g_.sumBatch(x[0]);
      case Op::Amax:
        if (isZero(x[0])) return zeros(s);
        return g_.amax(x[0], n.a0);
      default:
        if (opArity(n.op) == 1) return g_.unary(n.op, x[0]);
        return g_.binary(n.op, x[0], x[1]);
    }
  }

  // Elementwise ops whose operands are all scalar constants become one constant.
  NodeId foldConstant(const Node& n, const std::vector<NodeId>& x) {
    if (n.shape.rank() != 0 || n.shape.batched || x.empty()) return -1;
    double v[3] = {0, 0, 0};
    for (size_t i = 0; i < x.size(); ++i) {
      if (g_[x[i]].op != Op::Const) return -1;
      v[i] = g_[x[i]].value;
    }
    double r;
    switch (n.op) {
      case Op::Neg: r = -v[0]; break;
      case Op::Exp: r = std::exp(v[0]); break;
      case Op::Log: r = std::log(v[0]); break;
      case Op::Tanh: r = std::tanh(v[0]); break;
      case Op::Sigmoid: r = 1 / (1 + std::exp(-v[0])); break;
      case Op::Relu: r = v[0] > 0 ? v[0] : 0; break;
      case Op::Softplus: r = std::max(v[0], 0.0) + std::log1p(std::exp(-std::fabs(v[0]))); break;
      case Op::Abs: r = std::fabs(v[0]); break;
      case Op::Sqrt: r = std::sqrt(v[0]); break;
      case Op::Add: r = v[0] + v[1]; break;
      case Op::Sub: r = v[0] - v[1]; break;
      case Op::Mul: r = v[0] * v[1]; break;
      case Op::Div: r = v[0] / v[1]; break;
      case Op::Pow: r = std::pow(v[0], v[1]); break;
      case Op::Min: r = std::min(v[0], v[1]); break;
      case Op::Max: r = std::max(v[0], v[1]); break;
      case Op::Lt: r = v[0] < v[1]; break;
      case Op::Le: r = v[0] <= v[1]; break;
      case Op::Clip: r = std::min(std::max(v[0], v[1]), v[2]); break;
      case Op::Where: r = v[0] != 0 ? v[1] : v[2]; break;
      case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
        r = v[0] > 0;
        break;
      default: return -1;
    }
    return g_.constant(r);
  }

  const Graph& in_;
  Graph g_;
  std::vector<NodeId> map_;
};

}  // namespace

Graph simplify(const Graph& in, std::vector<NodeId>& roots) { return Simplifier(in).run(roots); }

}  // namespace cellc::ir
