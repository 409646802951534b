#include "pipeline/SegmentGemm.h"

#include <unordered_map>

namespace cellc {

using namespace cellc::ir;

namespace {

// The additive terms of a sum of same-shaped values (no broadcasting add is split).
void terms(const Graph& g, NodeId id, std::vector<NodeId>& out) {
  const Node& n = g[id];
  if (n.op == Op::Add && g[n.in[0]].shape == n.shape && g[n.in[1]].shape == n.shape) {
    terms(g, n.in[0], out);
    terms(g, n.in[1], out);
    return;
  }
  out.push_back(id);
}

// A term a^T b over the batch, as (a, b), or nothing. transpose(a^T b) = b^T a.
bool outerSum(const Graph& g, NodeId id, NodeId& a, NodeId& b) {
  const Node& n = g[id];
  if (n.op == Op::BatchOuterSum) {
    a = n.in[0], b = n.in[1];
    return true;
  }
  if (n.op == Op::Transpose && g[n.in[0]].op == Op::BatchOuterSum) {
    a = g[n.in[0]].in[1], b = g[n.in[0]].in[0];
    return true;
  }
  return false;
}

}  // namespace

StepIR deferWeightGradients(const StepIR& in) {
  StepIR out = in;
  Graph& g = out.g;
  std::unordered_map<NodeId, int> value;  // segment value index by node
  auto region = [&](NodeId id) {
    auto it = value.find(id);
    if (it != value.end()) return it->second;
    const int i = static_cast<int>(out.segmentValues.size());
    out.segmentValues.push_back(id);
    out.segmentOffsets.push_back(out.segmentSize);
    out.segmentSize += g[id].shape.numel();
    value[id] = i;
    return i;
  };
  auto rewrite = [&](std::vector<NodeId>& roots, bool toHoisted) {
    for (size_t r = 0; r < roots.size(); ++r) {
      std::vector<NodeId> ts;
      terms(g, roots[r], ts);
      NodeId kept = -1;
      bool changed = false;
      for (NodeId t : ts) {
        NodeId a, b;
        if (outerSum(g, t, a, b)) {
          const Shape shape = g[t].shape;
          // The product as a BatchOuterSum of the operands in the order the GEMM reads them.
          NodeId product = g[t].op == Op::BatchOuterSum ? t : g.batchOuterSum(a, b);
          if (g[product].shape == shape) {
            out.deferred.push_back({product, region(a), region(b), toHoisted, static_cast<int>(r)});
            changed = true;
            continue;
          }
        }
        kept = kept < 0 ? t : g.add(kept, t);
      }
      if (!changed) continue;
      roots[r] = kept >= 0 ? kept : g.broadcast(g.constant(0), g[roots[r]].shape);
    }
  };
  rewrite(out.dParam, false);
  rewrite(out.dHoisted, true);
  return out;
}

}  // namespace cellc
