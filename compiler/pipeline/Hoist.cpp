#include "pipeline/Hoist.h"

#include <algorithm>
#include <unordered_map>

#include "ir/Simplify.h"
#include "pipeline/Substitute.h"

namespace cellc {

using namespace cellc::ir;

namespace {

// Leaves that change from step to step (and adjoints): what makes a value not invariant.
bool isStepLeaf(Op op) {
  switch (op) {
    case Op::State: case Op::Input: case Op::Noise: case Op::AdjState: case Op::AdjOutput:
    case Op::Cotangent: case Op::Hoisted: case Op::AdjHoisted: case Op::Staged: case Op::AdjStaged:
      return true;
    default: return false;
  }
}


// The frontier: invariant values worth hoisting that the step reads, nearest the step. Walks
// users before operands (reverse topological order) from the forward roots and stops at the
// first invariant value worth its own buffer.
std::vector<NodeId> findFrontier(const Graph& g, const std::vector<NodeId>& roots) {
  std::vector<NodeId> order = topoOrder(g, roots);
  std::vector<char> inv(g.size(), 0), hasParam(g.size(), 0);
  for (NodeId id : order) {
    const Node& n = g[id];
    bool v = !n.shape.batched && !isStepLeaf(n.op);
    bool p = n.op == Op::Param;
    for (NodeId i : n.in) v = v && inv[i], p = p || hasParam[i];
    inv[id] = v;
    hasParam[id] = p;
  }
  auto worth = [&](NodeId id) {
    const Node& n = g[id];
    return inv[id] && hasParam[id] && opKind(n.op) != OpKind::Leaf && !isView(n.op) &&
           n.shape.numel() > 1;
  };
  return nearestFrontier(g, roots, order, worth);
}

}  // namespace

StepIR hoist(const StepIR& in) {
  std::vector<NodeId> fwdRoots = in.forwardRoots();
  std::vector<NodeId> frontier = findFrontier(in.g, fwdRoots);
  if (frontier.empty()) return in;

  StepIR out;
  Graph g = in.g;
  const Layout& L = in.layout;

  // The per-step forward: the frontier replaced by Hoisted leaves.
  std::unordered_map<NodeId, NodeId> sub;
  std::vector<NodeId> hoistedLeaves;
  for (size_t i = 0; i < frontier.size(); ++i) {
    NodeId leaf = g.leaf(Op::Hoisted, static_cast<int64_t>(i), g[frontier[i]].shape);
    sub[frontier[i]] = leaf;
    hoistedLeaves.push_back(leaf);
  }
  std::vector<NodeId> stepRoots = substitute(g, fwdRoots, sub);

  // The per-step backward: adjoints of the state, inputs, params read directly and hoisted values.
  std::vector<NodeId> seeds = slotLeaves(g, Op::AdjState, L.states);
  for (NodeId s : slotLeaves(g, Op::AdjOutput, L.outputs)) seeds.push_back(s);
  std::vector<NodeId> wrt = slotLeaves(g, Op::State, L.states);
  for (NodeId x : slotLeaves(g, Op::Input, L.inputs)) wrt.push_back(x);
  for (NodeId p : slotLeaves(g, Op::Param, L.params)) wrt.push_back(p);
  wrt.insert(wrt.end(), hoistedLeaves.begin(), hoistedLeaves.end());
  std::vector<NodeId> adj = autodiff::reverse(g, stepRoots, seeds, wrt);

  // The epilogue: the invariant part's VJP, seeded by the accumulated adjoints.
  std::vector<NodeId> adjHoisted;
  for (size_t i = 0; i < frontier.size(); ++i)
    adjHoisted.push_back(g.leaf(Op::AdjHoisted, static_cast<int64_t>(i), g[frontier[i]].shape));
  std::vector<NodeId> epilogue =
      autodiff::reverse(g, frontier, adjHoisted, slotLeaves(g, Op::Param, L.params));

  // Simplify everything together, as lower() does, and take the roots back in order.
  std::vector<NodeId> roots = stepRoots;
  roots.insert(roots.end(), adj.begin(), adj.end());
  keepRoots(in, roots);
  roots.insert(roots.end(), frontier.begin(), frontier.end());
  roots.insert(roots.end(), epilogue.begin(), epilogue.end());

  out.g = simplify(g, roots);
  out.layout = L;
  out.cellName = in.cellName;
  RootCursor take(roots);
  out.stateNext = take.take(in.stateNext.size());
  out.outputs = take.take(in.outputs.size());
  out.dState = take.take(L.states.size());
  out.dInput = take.take(L.inputs.size());
  out.dParam = take.take(L.params.size());
  out.dHoisted = take.take(frontier.size());
  takeKept(in, take, out);
  out.hoisted = take.take(frontier.size());
  out.epilogueParam = take.take(L.params.size());
  // Unbatched, like params.
  out.hoistedSlots = stageSlots(out.g, out.hoisted, frontier, in, Role::Param, out.hoistedSize);
  return out;
}

}  // namespace cellc
