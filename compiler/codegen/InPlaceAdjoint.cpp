#include "codegen/InPlaceAdjoint.h"

#include <map>
#include <set>

namespace cellc::codegen {

using ir::Graph;
using ir::NodeId;
using ir::Op;

namespace {

// Operations whose element at an index reads their operands at that index only.
bool elementwise(Op op) {
  switch (op) {
    case Op::Neg: case Op::Exp: case Op::Log: case Op::Tanh: case Op::Sigmoid: case Op::Relu:
    case Op::Softplus: case Op::Abs: case Op::Sqrt: case Op::Add: case Op::Sub: case Op::Mul:
    case Op::Div: case Op::Pow: case Op::Min: case Op::Max: case Op::Lt: case Op::Le: case Op::Clip:
    case Op::Where: case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan:
    case Op::HeavisideTriangle:
      return true;
    default: return false;
  }
}

bool sameShape(const Shape& a, const Shape& b) { return a.batched == b.batched && a.dims == b.dims; }

// How a kernel's inline computation reads one state's adjoint leaf. A placed node (other than the
// leaf) is loaded, so the walk stops there, as the emitter's does.
class LeafReads {
 public:
  LeafReads(const Graph& g, const FunctionPlan& fp, NodeId leaf) : g_(g), fp_(fp), leaf_(leaf) {}

  // Whether computing `id` inline reads the leaf at all.
  bool reaches(NodeId id) {
    if (id == leaf_) return true;
    if (fp_.placed.count(id)) return false;
    if (auto it = reach_.find(id); it != reach_.end()) return it->second;
    bool r = false;
    for (NodeId i : g_[id].in) r = r || reaches(i);
    return reach_[id] = r;
  }

  // Whether every read of the leaf that computing `id` at an element makes is at that same
  // element (`self`: the kernel's own node, computed even though it has a place).
  bool aligned(NodeId id, bool self = false) {
    if (id == leaf_) return sameShape(g_[id].shape, g_[leaf_].shape);
    if (!self && fp_.placed.count(id)) return true;
    bool reads = false;
    for (NodeId i : g_[id].in) reads = reads || reaches(i);
    if (!reads) return true;
    if (!elementwise(g_[id].op) || !sameShape(g_[id].shape, g_[leaf_].shape)) return false;
    for (NodeId i : g_[id].in)
      if (!aligned(i)) return false;
    return true;
  }

  // Whether kernel k reads the leaf, and if so whether only at the elements of the leaf's storage
  // its loop is at.
  bool readsKernel(const Kernel& k) {
    if (k.kind == Kernel::Kind::Copy) return reaches(k.node);
    for (NodeId i : g_[k.node].in)
      if (reaches(i)) return true;
    return false;
  }
  bool alignedKernel(const Kernel& k) {
    const ir::Node& n = g_[k.node];
    switch (k.kind) {
      case Kernel::Kind::Copy: return aligned(k.node);
      case Kernel::Kind::Pointwise: return aligned(k.node, true);
      case Kernel::Kind::Gemm: return false;
      case Kernel::Kind::Reduce: {
        if (isBatchedMatVec(g_, k.node)) {
          // The loop runs over the matrix operand's storage (a transpose's source); the vector
          // operand is read at a row or a column.
          const bool matFirst = g_[n.in[0]].shape.rank() == 2;
          const NodeId m = matFirst ? n.in[0] : n.in[1], v = matFirst ? n.in[1] : n.in[0];
          if (reaches(v)) return false;
          const NodeId src = g_[m].op == Op::Transpose && !fp_.placed.count(m) ? g_[m].in[0] : m;
          return aligned(src);
        }
        if (n.op == Op::Sum || n.op == Op::SumBatch) return aligned(n.in[0]);
        return false;
      }
    }
    return false;
  }

 private:
  const Graph& g_;
  const FunctionPlan& fp_;
  NodeId leaf_;
  std::map<NodeId, bool> reach_;
};

}  // namespace

bool placeAdjointInPlace(const Graph& g, const ir::Layout& layout, FunctionPlan& bw) {
  // Each kernel's loop group: the index of the group's first kernel.
  std::vector<size_t> group(bw.kernels.size());
  for (size_t i = 0; i < bw.kernels.size(); ++i) group[i] = bw.kernels[i].fusedWithPrev ? group[i - 1] : i;
  std::vector<NodeId> leaves;
  for (auto& [id, p] : bw.placed)
    if (p.buf == Buf::AdjState) leaves.push_back(id);
  for (NodeId leaf : leaves) {
    const ir::Slot& slot = layout.states[static_cast<size_t>(g[leaf].a0)];
    // The one kernel that writes this state's adjoint.
    std::vector<size_t> writers;
    for (size_t i = 0; i < bw.kernels.size(); ++i) {
      const Place& o = bw.kernels[i].out;
      if (o.buf == Buf::DState && o.perBatch == slot.offset) writers.push_back(i);
    }
    if (writers.size() != 1) return false;
    const size_t w = writers[0];
    LeafReads reads(g, bw, leaf);
    for (size_t i = 0; i < bw.kernels.size(); ++i) {
      if (!reads.readsKernel(bw.kernels[i]) || group[i] < group[w]) continue;
      if (group[i] != group[w] || i > w || !reads.alignedKernel(bw.kernels[i])) return false;
    }
  }
  for (NodeId leaf : leaves) bw.placed[leaf].buf = Buf::DState;
  return true;
}

}  // namespace cellc::codegen
