#include "pipeline/Substitute.h"

#include <string>

namespace cellc {

using namespace cellc::ir;

NodeId rebuildWith(Graph& g, const Node& n, const std::vector<NodeId>& x) {
  switch (n.op) {
    case Op::Clip: return g.clip(x[0], x[1], x[2]);
    case Op::Where: return g.where(x[0], x[1], x[2]);
    case Op::Transpose: return g.transpose(x[0]);
    case Op::Slice: return g.slice(x[0], n.a0, n.a1, n.a2);
    case Op::Squeeze: return g.squeeze(x[0], n.a0);
    case Op::Unsqueeze: return g.unsqueeze(x[0], n.a0);
    case Op::Pad: return g.pad(x[0], n.a0, n.a1, n.a2);
    case Op::Concat: return g.concat(x);
    case Op::Broadcast: return g.broadcast(x[0], n.shape);
    case Op::Sum: return g.sum(x[0], n.a0);
    case Op::SumBatch: return g.sumBatch(x[0]);
    case Op::Amax: return g.amax(x[0], n.a0);
    case Op::BatchOuterSum: return g.batchOuterSum(x[0], x[1]);
    default:
      if (opArity(n.op) == 1) return g.unary(n.op, x[0]);
      if (opArity(n.op) == 2) return g.binary(n.op, x[0], x[1]);
      throw InternalError(std::string("rebuilding a graph: cannot rebuild ") + opName(n.op));
  }
}

std::vector<NodeId> slotLeaves(Graph& g, Op role, const std::vector<Slot>& slots) {
  std::vector<NodeId> out;
  for (size_t i = 0; i < slots.size(); ++i) out.push_back(g.leaf(role, static_cast<int64_t>(i), slots[i].shape));
  return out;
}

std::vector<NodeId> substitute(Graph& g, const std::vector<NodeId>& roots,
                               std::unordered_map<NodeId, NodeId>& sub) {
  for (NodeId id : topoOrder(g, roots)) {
    if (sub.count(id)) continue;
    const Node n = g[id];  // a copy: rebuilding appends nodes
    std::vector<NodeId> x;
    bool changed = false;
    for (NodeId i : n.in) {
      auto it = sub.find(i);
      x.push_back(it != sub.end() ? it->second : i);
      changed = changed || it != sub.end();
    }
    if (!changed) continue;
    g.setLoc(n.loc);
    sub[id] = rebuildWith(g, n, x);
  }
  std::vector<NodeId> out;
  for (NodeId r : roots) {
    auto it = sub.find(r);
    out.push_back(it != sub.end() ? it->second : r);
  }
  return out;
}

}  // namespace cellc
