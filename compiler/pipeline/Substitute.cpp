#include "pipeline/Substitute.h"

#include <algorithm>
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

bool isView(Op op) {
  switch (op) {
    case Op::Transpose: case Op::Slice: case Op::Squeeze: case Op::Unsqueeze: case Op::Broadcast:
    case Op::Pad:
      return true;
    default: return false;
  }
}

std::vector<NodeId> nearestFrontier(const Graph& g, const std::vector<NodeId>& roots, const std::vector<NodeId>& order,
                                    const std::function<bool(NodeId)>& worth) {
  std::vector<char> needed(g.size(), 0);
  for (NodeId r : roots) needed[r] = 1;
  std::vector<NodeId> frontier;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const NodeId id = *it;
    if (!needed[id]) continue;
    if (worth(id)) {
      frontier.push_back(id);
      continue;
    }
    for (NodeId i : g[id].in) needed[i] = 1;
  }
  std::sort(frontier.begin(), frontier.end());
  return frontier;
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

void keepRoots(const StepIR& in, std::vector<NodeId>& roots) {
  for (NodeId e : in.effective)
    if (e >= 0) roots.push_back(e);
  for (auto& [name, id] : in.named) roots.push_back(id);
  roots.insert(roots.end(), in.omegaParam.begin(), in.omegaParam.end());
}

void takeKept(const StepIR& in, RootCursor& cursor, StepIR& out) {
  for (NodeId e : in.effective) out.effective.push_back(e >= 0 ? cursor.next() : -1);
  for (auto& [name, id] : in.named) out.named.push_back({name, cursor.next()});
  out.omegaParam = cursor.take(in.omegaParam.size());
}

std::vector<NodeId> RootCursor::take(size_t n) {
  if (k_ + n > roots_.size()) throw InternalError("taking more roots than were simplified");
  std::vector<NodeId> v(roots_.begin() + static_cast<long>(k_), roots_.begin() + static_cast<long>(k_ + n));
  k_ += n;
  return v;
}

std::vector<Slot> stageSlots(const Graph& g, const std::vector<NodeId>& values, const std::vector<NodeId>& original,
                             const StepIR& in, Role role, int64_t& size) {
  std::vector<Slot> slots;
  size = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    Slot s;  // named after the value it holds, if it has a name
    for (auto& [name, id] : in.named)
      if (id == original[i]) s.name = name;
    s.role = role;
    s.shape = g[values[i]].shape;
    s.offset = size;
    s.size = s.shape.numel();
    s.loc = g[values[i]].loc;
    size += s.size;
    slots.push_back(s);
  }
  return slots;
}

}  // namespace cellc
