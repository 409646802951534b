#include "pipeline/InputStage.h"

#include <algorithm>
#include <unordered_map>

#include "ir/Simplify.h"
#include "pipeline/Substitute.h"

namespace cellc {

using namespace cellc::ir;

namespace {

// Leaves that change with the recurrence (or are adjoints): a value reading one is not staged.
bool isRecurrentLeaf(Op op) {
  switch (op) {
    case Op::State: case Op::Noise: case Op::AdjState: case Op::AdjOutput: case Op::Cotangent:
    case Op::AdjHoisted: case Op::Staged: case Op::AdjStaged:
      return true;
    default: return false;
  }
}


// The frontier: batched values of inputs, params, hoisted values and constants alone whose
// subgraph holds a product worth a GEMM, nearest the step (reverse topological order from the
// forward roots, stopping at the first such value).
std::vector<NodeId> findFrontier(const Graph& g, const std::vector<NodeId>& roots, int64_t inlineContraction) {
  std::vector<NodeId> order = topoOrder(g, roots);
  std::vector<char> inputOnly(g.size(), 0), product(g.size(), 0);
  for (NodeId id : order) {
    const Node& n = g[id];
    bool v = !isRecurrentLeaf(n.op);
    bool p = n.op == Op::MatMul && g[n.in[0]].shape.dims.back() > inlineContraction &&
             (g[n.in[0]].shape.batched || g[n.in[1]].shape.batched);
    for (NodeId i : n.in) v = v && inputOnly[i], p = p || product[i];
    inputOnly[id] = v;
    product[id] = p;
  }
  // A product of per-trial matrices (not a GEMM over the batch) is not a staged value itself:
  // codegen writes a staged value in rows of the staged buffer, which such a product cannot.
  auto perTrialProduct = [&](const Node& n) {
    return n.op == Op::MatMul && ((g[n.in[0]].shape.batched && g[n.in[0]].shape.rank() == 2) ||
                                  (g[n.in[1]].shape.batched && g[n.in[1]].shape.rank() == 2));
  };
  auto worth = [&](NodeId id) {
    const Node& n = g[id];
    return inputOnly[id] && product[id] && n.shape.batched && !isView(n.op) && !perTrialProduct(n);
  };
  return nearestFrontier(g, roots, order, worth);
}

}  // namespace

StepIR stageInputs(const StepIR& in, int64_t inlineContraction) {
  if (!in.deferred.empty()) throw InternalError("staging the inputs of a step with deferred products");
  const std::vector<NodeId> fwdRoots = in.forwardRoots();
  const std::vector<NodeId> frontier = findFrontier(in.g, fwdRoots, inlineContraction);
  if (frontier.empty()) return in;

  Graph g = in.g;
  const Layout& L = in.layout;

  // The per-step forward: the frontier replaced by Staged leaves.
  std::unordered_map<NodeId, NodeId> sub;
  std::vector<NodeId> stagedLeaves;
  for (size_t i = 0; i < frontier.size(); ++i) {
    NodeId leaf = g.leaf(Op::Staged, static_cast<int64_t>(i), g[frontier[i]].shape);
    sub[frontier[i]] = leaf;
    stagedLeaves.push_back(leaf);
  }
  const std::vector<NodeId> stepRoots = substitute(g, fwdRoots, sub);

  // The per-step backward: adjoints of the state, the params and hoisted values the step reads
  // directly, and the staged values (no input adjoint).
  std::vector<NodeId> seeds = slotLeaves(g, Op::AdjState, L.states);
  for (NodeId s : slotLeaves(g, Op::AdjOutput, L.outputs)) seeds.push_back(s);
  const std::vector<NodeId> params = slotLeaves(g, Op::Param, L.params);
  const std::vector<NodeId> hoisted = slotLeaves(g, Op::Hoisted, in.hoistedSlots);
  std::vector<NodeId> wrt = slotLeaves(g, Op::State, L.states);
  wrt.insert(wrt.end(), params.begin(), params.end());
  wrt.insert(wrt.end(), hoisted.begin(), hoisted.end());
  wrt.insert(wrt.end(), stagedLeaves.begin(), stagedLeaves.end());
  const std::vector<NodeId> adj = autodiff::reverse(g, stepRoots, seeds, wrt);

  // The input epilogue: the staged part's VJP over all rows, seeded by the staged adjoints.
  std::vector<NodeId> adjStaged;
  for (size_t i = 0; i < frontier.size(); ++i)
    adjStaged.push_back(g.leaf(Op::AdjStaged, static_cast<int64_t>(i), g[frontier[i]].shape));
  std::vector<NodeId> epiWrt = params;
  epiWrt.insert(epiWrt.end(), hoisted.begin(), hoisted.end());
  const std::vector<NodeId> epilogue = autodiff::reverse(g, frontier, adjStaged, epiWrt);

  // Simplify everything together, as hoist() does, and take the roots back in order.
  std::vector<NodeId> roots = stepRoots;
  roots.insert(roots.end(), adj.begin(), adj.end());
  keepRoots(in, roots);
  roots.insert(roots.end(), in.hoisted.begin(), in.hoisted.end());
  roots.insert(roots.end(), in.epilogueParam.begin(), in.epilogueParam.end());
  roots.insert(roots.end(), frontier.begin(), frontier.end());
  roots.insert(roots.end(), epilogue.begin(), epilogue.end());

  StepIR out;
  out.g = simplify(g, roots);
  out.layout = L;
  out.cellName = in.cellName;
  out.hoistedSlots = in.hoistedSlots;
  out.hoistedSize = in.hoistedSize;
  RootCursor take(roots);
  out.stateNext = take.take(in.stateNext.size());
  out.outputs = take.take(in.outputs.size());
  out.dState = take.take(L.states.size());
  out.dParam = take.take(L.params.size());
  out.dHoisted = take.take(in.hoistedSlots.size());
  out.dStaged = take.take(frontier.size());
  takeKept(in, take, out);
  out.hoisted = take.take(in.hoisted.size());
  out.epilogueParam = take.take(in.epilogueParam.size());
  out.staged = take.take(frontier.size());
  out.inputEpilogueParam = take.take(L.params.size());
  out.inputEpilogueHoisted = take.take(in.hoistedSlots.size());
  // Batched, like inputs: rows of the staged buffer.
  out.stagedSlots = stageSlots(out.g, out.staged, frontier, in, Role::Input, out.stagedSize);
  return out;
}

}  // namespace cellc
