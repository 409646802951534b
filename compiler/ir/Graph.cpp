#include "ir/Graph.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <sstream>

#include "syntax/Print.h"

namespace cellc::ir {

namespace {

struct OpInfo {
  const char* name;
  int arity;
  OpKind kind;
};

const OpInfo kOps[] = {
#define X(name, arity, kind) {#name, arity, OpKind::kind},
    CELLC_IR_OPS(X)
#undef X
};

[[noreturn]] void bug(const std::string& what) { throw InternalError("cellc internal error: " + what); }

bool isElementwise(Op op) {
  switch (op) {
    case Op::Neg: case Op::Exp: case Op::Log: case Op::Tanh: case Op::Sigmoid: case Op::Relu:
    case Op::Softplus: case Op::Abs: case Op::Sqrt: case Op::Add: case Op::Sub: case Op::Mul:
    case Op::Div: case Op::Pow: case Op::Min: case Op::Max: case Op::Lt: case Op::Le:
    case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
      return true;
    default: return false;
  }
}

}  // namespace

const char* opName(Op op) { return kOps[static_cast<int>(op)].name; }
int opArity(Op op) { return kOps[static_cast<int>(op)].arity; }
OpKind opKind(Op op) { return kOps[static_cast<int>(op)].kind; }

size_t Graph::KeyHash::operator()(const Key& k) const {
  size_t h = static_cast<size_t>(k.op) * 0x9E3779B97F4A7C15ull;
  auto mix = [&](uint64_t v) { h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2); };
  for (NodeId i : k.in) mix(static_cast<uint64_t>(i));
  mix(k.valueBits);
  mix(static_cast<uint64_t>(k.a0));
  mix(static_cast<uint64_t>(k.a1));
  mix(static_cast<uint64_t>(k.a2));
  mix(k.shape.batched);
  for (int64_t d : k.shape.dims) mix(static_cast<uint64_t>(d));
  return h;
}

NodeId Graph::make(Node n) {
  // +0.0 and -0.0 hash apart on purpose: they are different constants under division.
  Key key{n.op, n.in, std::bit_cast<uint64_t>(n.value), n.a0, n.a1, n.a2, n.shape};
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  n.loc = loc_;
  NodeId id = static_cast<NodeId>(nodes_.size());
  nodes_.push_back(std::move(n));
  index_.emplace(std::move(key), id);
  return id;
}

Shape broadcastShapes(const Shape& a, const Shape& b) {
  Shape out;
  out.batched = a.batched || b.batched;
  out.dims.resize(std::max(a.dims.size(), b.dims.size()));
  for (size_t i = 0; i < out.dims.size(); ++i) {
    int64_t da = i < a.dims.size() ? a.dims[a.dims.size() - 1 - i] : 1;
    int64_t db = i < b.dims.size() ? b.dims[b.dims.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) bug("shapes " + a.str() + " and " + b.str() + " do not broadcast");
    out.dims[out.dims.size() - 1 - i] = std::max(da, db);
  }
  return out;
}

NodeId Graph::constant(double v) { return make(Node{Op::Const, Shape{}, {}, v}); }

NodeId Graph::leaf(Op role, int64_t slot, Shape shape) {
  if (opKind(role) != OpKind::Leaf || role == Op::Const) bug("leaf() with a non-leaf op");
  Node n{role, shape, {}};
  n.a0 = slot;
  return make(std::move(n));
}

NodeId Graph::eye(int64_t n) { return make(Node{Op::Eye, Shape{false, {n, n}}, {}}); }

NodeId Graph::dale(int64_t n, int64_t numExcitatory) {
  Node node{Op::Dale, Shape{false, {n}}, {}};
  node.a0 = numExcitatory;
  return make(std::move(node));
}

NodeId Graph::unary(Op op, NodeId x) {
  if (!isElementwise(op) || opArity(op) != 1) bug(std::string("unary() with ") + opName(op));
  return make(Node{op, nodes_[x].shape, {x}});
}

NodeId Graph::binary(Op op, NodeId a, NodeId b) {
  const Shape &sa = nodes_[a].shape, &sb = nodes_[b].shape;
  if (op == Op::MatMul) {
    if (sa.rank() == 0 || sb.rank() == 0 || sa.dims.back() != sb.dims[0])
      bug("matmul " + sa.str() + " @ " + sb.str());
    Shape out{sa.batched || sb.batched, {}};
    if (sa.rank() == 2) out.dims.push_back(sa.dims[0]);
    if (sb.rank() == 2) out.dims.push_back(sb.dims[1]);
    return make(Node{op, out, {a, b}});
  }
  if (op == Op::Outer) {
    if (sa.rank() != 1 || sb.rank() != 1) bug("outer " + sa.str() + " x " + sb.str());
    return make(Node{op, Shape{sa.batched || sb.batched, {sa.dims[0], sb.dims[0]}}, {a, b}});
  }
  if (!isElementwise(op) || opArity(op) != 2) bug(std::string("binary() with ") + opName(op));
  return make(Node{op, broadcastShapes(sa, sb), {a, b}});
}

NodeId Graph::clip(NodeId x, NodeId lo, NodeId hi) {
  Shape s = broadcastShapes(broadcastShapes(nodes_[x].shape, nodes_[lo].shape), nodes_[hi].shape);
  return make(Node{Op::Clip, s, {x, lo, hi}});
}

NodeId Graph::where(NodeId c, NodeId a, NodeId b) {
  Shape s = broadcastShapes(broadcastShapes(nodes_[c].shape, nodes_[a].shape), nodes_[b].shape);
  return make(Node{Op::Where, s, {c, a, b}});
}

NodeId Graph::transpose(NodeId x) {
  const Shape& s = nodes_[x].shape;
  if (s.rank() != 2) bug("transpose of " + s.str());
  return make(Node{Op::Transpose, Shape{s.batched, {s.dims[1], s.dims[0]}}, {x}});
}

NodeId Graph::slice(NodeId x, int64_t axis, int64_t lo, int64_t hi) {
  Shape s = nodes_[x].shape;
  if (axis < 0 || axis >= s.rank() || lo < 0 || hi > s.dims[axis] || lo >= hi)
    bug("slice " + std::to_string(lo) + ":" + std::to_string(hi) + " of " + s.str());
  if (lo == 0 && hi == s.dims[axis]) return x;
  s.dims[axis] = hi - lo;
  Node n{Op::Slice, s, {x}};
  n.a0 = axis, n.a1 = lo, n.a2 = hi;
  return make(std::move(n));
}

NodeId Graph::squeeze(NodeId x, int64_t axis) {
  Shape s = nodes_[x].shape;
  if (axis < 0 || axis >= s.rank() || s.dims[axis] != 1) bug("squeeze of " + s.str());
  s.dims.erase(s.dims.begin() + axis);
  Node n{Op::Squeeze, s, {x}};
  n.a0 = axis;
  return make(std::move(n));
}

NodeId Graph::unsqueeze(NodeId x, int64_t axis) {
  Shape s = nodes_[x].shape;
  if (axis < 0 || axis > s.rank()) bug("unsqueeze of " + s.str());
  s.dims.insert(s.dims.begin() + axis, 1);
  Node n{Op::Unsqueeze, s, {x}};
  n.a0 = axis;
  return make(std::move(n));
}

NodeId Graph::pad(NodeId x, int64_t axis, int64_t lo, int64_t size) {
  Shape s = nodes_[x].shape;
  if (axis < 0 || axis >= s.rank() || lo < 0 || lo + s.dims[axis] > size) bug("pad of " + s.str());
  if (lo == 0 && s.dims[axis] == size) return x;
  s.dims[axis] = size;
  Node n{Op::Pad, s, {x}};
  n.a0 = axis, n.a1 = lo, n.a2 = size;
  return make(std::move(n));
}

NodeId Graph::concat(const std::vector<NodeId>& xs) {
  if (xs.empty()) bug("concat of nothing");
  if (xs.size() == 1) return xs[0];
  Shape s = nodes_[xs[0]].shape;
  for (size_t i = 1; i < xs.size(); ++i) {
    const Shape& o = nodes_[xs[i]].shape;
    if (o.rank() != s.rank() || s.rank() == 0 ||
        !std::equal(o.dims.begin(), o.dims.end() - 1, s.dims.begin()))
      bug("concat " + s.str() + " with " + o.str());
    s.dims.back() += o.dims.back();
    s.batched = s.batched || o.batched;
  }
  return make(Node{Op::Concat, s, xs});
}

NodeId Graph::broadcast(NodeId x, Shape to) {
  const Shape s = nodes_[x].shape;
  if (s == to) return x;
  if (broadcastShapes(s, to) != to) bug("broadcast " + s.str() + " to " + to.str());
  return make(Node{Op::Broadcast, to, {x}});
}

NodeId Graph::sum(NodeId x, int64_t axis) {
  Shape s = nodes_[x].shape;
  if (axis == -1) {
    if (s.rank() == 0) return x;
    s.dims.clear();
  } else {
    if (axis < 0 || axis >= s.rank()) bug("sum over axis " + std::to_string(axis) + " of " + s.str());
    s.dims.erase(s.dims.begin() + axis);
  }
  Node n{Op::Sum, s, {x}};
  n.a0 = axis;
  return make(std::move(n));
}

NodeId Graph::amax(NodeId x, int64_t axis) {
  Shape s = nodes_[x].shape;
  if (axis == -1) {
    if (s.rank() == 0) return x;
    s.dims.clear();
  } else {
    if (axis < 0 || axis >= s.rank()) bug("amax over axis " + std::to_string(axis) + " of " + s.str());
    s.dims.erase(s.dims.begin() + axis);
  }
  Node n{Op::Amax, s, {x}};
  n.a0 = axis;
  return make(std::move(n));
}

NodeId Graph::sumBatch(NodeId x) {
  Shape s = nodes_[x].shape;
  if (!s.batched) bug("sumBatch of an unbatched " + s.str());
  s.batched = false;
  return make(Node{Op::SumBatch, s, {x}});
}

NodeId Graph::batchOuterSum(NodeId a, NodeId b) {
  const Shape &sa = nodes_[a].shape, &sb = nodes_[b].shape;
  if (!sa.batched || !sb.batched || sa.rank() != 1 || sb.rank() != 1)
    bug("batchOuterSum " + sa.str() + " x " + sb.str());
  return make(Node{Op::BatchOuterSum, Shape{false, {sa.dims[0], sb.dims[0]}}, {a, b}});
}

NodeId Graph::reduceTo(NodeId x, Shape to) {
  Shape s = nodes_[x].shape;
  if (s == to) return x;
  if (broadcastShapes(to, s) != s) bug("reduceTo " + s.str() + " -> " + to.str());
  // Leading axes that `to` does not have are summed away; axes of size 1 in `to` are summed and
  // kept (as size 1); then the batch axis.
  while (s.rank() > to.rank()) {
    x = sum(x, 0);
    s = nodes_[x].shape;
  }
  for (int ax = 0; ax < to.rank(); ++ax)
    if (to.dims[ax] == 1 && s.dims[ax] != 1) {
      x = unsqueeze(sum(x, ax), ax);
      s = nodes_[x].shape;
    }
  if (s.batched && !to.batched) x = sumBatch(x);
  return x;
}

std::vector<NodeId> topoOrder(const Graph& g, const std::vector<NodeId>& roots) {
  std::vector<NodeId> order;
  std::vector<uint8_t> state(g.size(), 0);  // 0 new, 1 on stack, 2 done
  std::vector<std::pair<NodeId, size_t>> stack;  // iterative: graphs can be deep
  for (NodeId r : roots) {
    if (state[r]) continue;
    stack.push_back({r, 0});
    state[r] = 1;
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      const Node& n = g[id];
      if (next < n.in.size()) {
        NodeId c = n.in[next++];
        if (!state[c]) {
          state[c] = 1;
          stack.push_back({c, 0});
        }
        continue;
      }
      state[id] = 2;
      order.push_back(id);
      stack.pop_back();
    }
  }
  return order;
}

std::string printGraph(const Graph& g, const std::vector<NodeId>& roots) {
  std::ostringstream os;
  for (NodeId id : topoOrder(g, roots)) {
    const Node& n = g[id];
    std::ostringstream line;
    line << "%" << id << " = " << opName(n.op);
    if (n.op == Op::Const) line << " " << printNumber(n.value);
    line << "(";
    for (size_t i = 0; i < n.in.size(); ++i) line << (i ? ", " : "") << "%" << n.in[i];
    line << ")";
    if (opKind(n.op) == OpKind::Leaf && n.op != Op::Const) line << " slot " << n.a0;
    if (n.op == Op::Slice || n.op == Op::Pad)
      line << " axis " << n.a0 << " [" << n.a1 << ", " << n.a2 << ")";
    if (n.op == Op::Sum || n.op == Op::Amax || n.op == Op::Squeeze || n.op == Op::Unsqueeze) line << " axis " << n.a0;
    std::string s = line.str();
    os << s << std::string(s.size() < 40 ? 40 - s.size() : 1, ' ') << n.shape.str();
    if (n.loc.line) os << "  # line " << n.loc.line;
    os << "\n";
  }
  return os.str();
}

}  // namespace cellc::ir
