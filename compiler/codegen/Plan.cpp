#include "codegen/Plan.h"

#include "codegen/InPlaceAdjoint.h"
#include "codegen/LoopGroups.h"
#include "codegen/PackedLayout.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

namespace cellc::codegen {

using ir::Graph;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::OpKind;

bool isInlineMatMul(const Graph& g, NodeId id) {
  const Node& n = g[id];
  return n.op == Op::MatMul && g[n.in[0]].shape.dims.back() <= kInlineContraction;
}

bool isBatchedMatVec(const Graph& g, NodeId id) {
  const Node& n = g[id];
  if (n.op != Op::MatMul || isInlineMatMul(g, id)) return false;
  const auto& a = g[n.in[0]].shape;
  const auto& b = g[n.in[1]].shape;
  return (a.batched && a.rank() == 2 && b.rank() == 1) || (b.batched && b.rank() == 2 && a.rank() == 1);
}

const char* bufName(Buf b) {
  static const char* names[] = {"params", "state", "input", "noise", "adj_state", "adj_output",
                                "state_next", "output", "tape", "d_state", "d_input", "d_params",
                                "cotangent", "hoisted", "d_hoisted", "segment", "staged", "d_staged",
                                "scratch"};
  return names[static_cast<int>(b)];
}

namespace {

bool isTranscendental(Op op) {
  switch (op) {
    case Op::Exp: case Op::Log: case Op::Tanh: case Op::Sigmoid: case Op::Softplus: case Op::Sqrt:
    case Op::Pow:
      return true;
    default: return false;
  }
}

bool isConstantLike(Op op) { return op == Op::Const || op == Op::Eye || op == Op::Dale; }

// A constant 0 (broadcast or not): an adjoint nothing flows into.
bool isZero(const Graph& g, NodeId id) {
  const Node& n = g[id];
  if (n.op == Op::Broadcast) return isZero(g, n.in[0]);
  return n.op == Op::Const && n.value == 0;
}

// Matrix products and reductions that need a kernel of their own.
bool isContract(const Graph& g, NodeId id) {
  return ir::opKind(g[id].op) == OpKind::Contract && !isInlineMatMul(g, id);
}

// Allocates buffer space: unbatched values first (fixed), batched ones after (per batch).
struct Allocator {
  Buf buf;
  Extent extent;
  Place alloc(const Node& n) {
    Place p{buf, 0, 0};
    if (n.shape.batched) {
      p.perBatch = extent.perBatch;
      extent.perBatch += n.shape.numel();
    } else {
      p.fixed = extent.fixed;
      extent.fixed += n.shape.numel();
    }
    return p;
  }
};

struct Root {
  NodeId node;
  Place dest;
  bool accumulate;
};

class FunctionPlanner {
 public:
  FunctionPlanner(const Graph& g, FunctionPlan& out) : g_(g), out_(out) {}

  // available: nodes with a place before the function runs (leaves, tape for backward).
  // force: nodes to materialize even if fused would do. home(n): where a materialized node lives.
  void run(const std::vector<Root>& roots, const std::set<NodeId>& force,
           const std::function<Place(NodeId)>& home) {
    std::vector<NodeId> rootIds;
    for (const Root& r : roots) rootIds.push_back(r.node);
    std::vector<NodeId> order = order_(rootIds);
    std::unordered_map<NodeId, int> users;
    for (NodeId id : order)
      for (NodeId i : g_[id].in) ++users[i];
    for (const Root& r : roots) ++users[r.node];

    // Decide materialization, operands first.
    std::set<NodeId> mat;
    for (NodeId id : order) {
      if (out_.placed.count(id)) continue;
      const Node& n = g_[id];
      if (isConstantLike(n.op)) continue;
      bool m = isContract(g_, id) || force.count(id) > 0;
      if (users[id] >= 2 && !isView(id) && !isCheap(id, mat) && !isCheapTrace(id, mat)) m = true;
      if (m) mat.insert(id);
      if ((n.op == Op::MatMul && !isInlineMatMul(g_, id) && !isBatchedMatVec(g_, id)) ||
          n.op == Op::BatchOuterSum)
        for (NodeId operand : n.in) {
          NodeId base = g_[operand].op == Op::Transpose ? g_[operand].in[0] : operand;
          if (!out_.placed.count(base) && !isConstantLike(g_[base].op)) mat.insert(base);
          else if (isConstantLike(g_[base].op)) mat.insert(base);
        }
    }
    // Roots used only as a root compute straight into their destination.
    std::set<NodeId> direct;
    for (const Root& r : roots)
      if (users[r.node] == 1 && !out_.placed.count(r.node)) direct.insert(r.node);

    for (NodeId id : order) {
      if (!mat.count(id) || out_.placed.count(id)) continue;
      const Root* r = nullptr;
      for (const Root& rr : roots)
        if (rr.node == id && direct.count(id)) r = &rr;
      Place p = r ? r->dest : home(id);
      out_.kernels.push_back({kindOf(id), id, p, r ? r->accumulate : false});
      out_.placed[id] = p;
    }
    for (const Root& r : roots) {
      if (out_.placed.count(r.node) && samePlace(out_.placed[r.node], r.dest) &&
          (direct.count(r.node) || !r.accumulate))
        continue;  // computed in place above (or homed there)
      if (direct.count(r.node) && !out_.placed.count(r.node)) {
        out_.kernels.push_back({Kernel::Kind::Pointwise, r.node, r.dest, r.accumulate});
        continue;
      }
      out_.kernels.push_back({Kernel::Kind::Copy, r.node, r.dest, r.accumulate});
    }
  }

 private:
  static bool samePlace(const Place& a, const Place& b) {
    return a.buf == b.buf && a.fixed == b.fixed && a.perBatch == b.perBatch && a.batchStride == b.batchStride;
  }

  Kernel::Kind kindOf(NodeId id) const {
    if (isInlineMatMul(g_, id)) return Kernel::Kind::Pointwise;
    if (isBatchedMatVec(g_, id)) return Kernel::Kind::Reduce;
    switch (g_[id].op) {
      case Op::MatMul: case Op::BatchOuterSum: return Kernel::Kind::Gemm;
      case Op::Sum: case Op::SumBatch: case Op::Amax: return Kernel::Kind::Reduce;
      default: return Kernel::Kind::Pointwise;
    }
  }

  // One add or multiply of stored values, at most one of them as large as the result (A * hebb,
  // outer(a, b)): recomputed at each use, it reads what reading it back would, without the store
  // and the extra pass. A plastic cell's backward stored two [B, n, n] values this way per step.
  bool isCheap(NodeId id, const std::set<NodeId>& mat) const {
    const Node& n = g_[id];
    switch (n.op) {
      case Op::Add: case Op::Sub: case Op::Mul: case Op::Neg: case Op::Outer: break;
      default: return false;
    }
    int full = 0;
    for (NodeId i : n.in) {
      const Node& x = g_[i];
      if (isConstantLike(x.op) || isView(i)) continue;
      if (!out_.placed.count(i) && !mat.count(i)) return false;
      if (x.shape.batched == n.shape.batched && x.shape.numel() == n.shape.numel()) ++full;
    }
    return full <= 1;
  }

  // A [B, p, q] value (a plastic cell's trace-sized term) that a few adds, multiplies, outer
  // products and views make from stored values, reading at most one stored value of its size:
  // recomputed at each use, in the loop that needs it, it reads what reading it back would (or
  // only vectors), without a pass that stores it. The clipped plastic GRU's backward stored the
  // clip's argument hebb + eta outer(h, c) (read by two comparisons in one kernel) and the
  // transposed outer product of two vectors this way, two [B, n, n] stores and passes a step.
  bool isCheapTrace(NodeId id, const std::set<NodeId>& mat) const {
    const Node& n = g_[id];
    if (!n.shape.batched || n.shape.rank() != 2) return false;
    std::set<NodeId> full;
    return recomputable(id, mat, n.shape.numel(), 4, full) && full.size() <= 1;
  }
  bool recomputable(NodeId id, const std::set<NodeId>& mat, int64_t size, int depth, std::set<NodeId>& full) const {
    const Node& n = g_[id];
    if (isConstantLike(n.op)) return true;
    if (out_.placed.count(id) || mat.count(id)) {
      if (n.shape.batched && n.shape.numel() == size) full.insert(id);
      return true;
    }
    if (depth == 0) return false;
    switch (n.op) {
      case Op::Add: case Op::Sub: case Op::Mul: case Op::Neg: case Op::Outer:
      case Op::Transpose: case Op::Broadcast: case Op::Slice: case Op::Squeeze: case Op::Unsqueeze: break;
      default: return false;
    }
    for (NodeId i : n.in)
      if (!recomputable(i, mat, size, depth - 1, full)) return false;
    return true;
  }

  // A view re-indexes one buffer (or a constant): cheap to recompute at every use.
  bool isView(NodeId id) const {
    const Node& n = g_[id];
    switch (n.op) {
      case Op::Broadcast: case Op::Transpose: case Op::Slice: case Op::Squeeze: case Op::Unsqueeze:
        return out_.placed.count(n.in[0]) || isConstantLike(g_[n.in[0]].op) || isView(n.in[0]);
      default: return false;
    }
  }

  // Topological order of what this function computes, stopping at placed nodes.
  std::vector<NodeId> order_(const std::vector<NodeId>& roots) {
    std::vector<NodeId> order;
    std::set<NodeId> seen;
    std::vector<std::pair<NodeId, size_t>> stack;
    for (NodeId r : roots) {
      if (seen.count(r)) continue;
      seen.insert(r);
      stack.push_back({r, 0});
      while (!stack.empty()) {
        auto& [id, next] = stack.back();
        const Node& n = g_[id];
        bool stop = out_.placed.count(id) > 0;
        if (!stop && next < n.in.size()) {
          NodeId c = n.in[next++];
          if (seen.insert(c).second) stack.push_back({c, 0});
          continue;
        }
        order.push_back(id);
        stack.pop_back();
      }
    }
    return order;
  }

  const Graph& g_;
  FunctionPlan& out_;
};

// Which leaves a function reads: adjoints in the backward (and Omega) functions only, the
// hoisted values' adjoints in the epilogue only, the staged values' in the input epilogue only.
enum class Stage { Forward, Backward, Epilogue, InputEpilogue };

void placeLeaves(const StepIR& ir, FunctionPlan& fp, Stage stage) {
  const Graph& g = ir.g;
  for (NodeId id = 0; id < static_cast<NodeId>(g.size()); ++id) {
    const Node& n = g[id];
    const std::vector<ir::Slot>* slots = nullptr;
    Buf buf;
    switch (n.op) {
      case Op::Param: slots = &ir.layout.params; buf = Buf::Params; break;
      case Op::State: slots = &ir.layout.states; buf = Buf::State; break;
      case Op::Input: slots = &ir.layout.inputs; buf = Buf::Input; break;
      case Op::Noise: slots = &ir.layout.noises; buf = Buf::Noise; break;
      case Op::AdjState: slots = &ir.layout.states; buf = Buf::AdjState; break;
      case Op::AdjOutput: slots = &ir.layout.outputs; buf = Buf::AdjOutput; break;
      case Op::Cotangent: slots = &ir.layout.states; buf = Buf::Cotangent; break;
      case Op::Hoisted: slots = &ir.hoistedSlots; buf = Buf::Hoisted; break;
      case Op::AdjHoisted: slots = &ir.hoistedSlots; buf = Buf::DHoisted; break;
      case Op::Staged: slots = &ir.stagedSlots; buf = Buf::Staged; break;
      case Op::AdjStaged: slots = &ir.stagedSlots; buf = Buf::DStaged; break;
      default: continue;
    }
    if (stage == Stage::Forward && (buf == Buf::AdjState || buf == Buf::AdjOutput || buf == Buf::Cotangent)) continue;
    if (stage != Stage::Epilogue && buf == Buf::DHoisted) continue;
    if (stage != Stage::InputEpilogue && buf == Buf::DStaged) continue;
    const ir::Slot& s = (*slots)[n.a0];
    if (buf == Buf::Staged || buf == Buf::DStaged) {  // rows of the [steps * B, stagedSize] buffers
      fp.placed[id] = Place{buf, s.offset, 0, ir.stagedSize};
      continue;
    }
    bool unbatched = buf == Buf::Params || buf == Buf::Hoisted || buf == Buf::DHoisted;
    fp.placed[id] = unbatched ? Place{buf, s.offset, 0} : Place{buf, 0, s.offset};
  }
}

// Whether a function's kernels read buffer `buf` (through their inline operands, down to what is
// placed).
bool readsBuf(const Graph& g, const FunctionPlan& fp, Buf buf) {
  std::set<NodeId> seen;
  std::function<bool(NodeId)> reads = [&](NodeId id) {
    if (!seen.insert(id).second) return false;
    if (auto it = fp.placed.find(id); it != fp.placed.end()) return it->second.buf == buf;
    for (NodeId i : g[id].in)
      if (reads(i)) return true;
    return false;
  };
  for (const Kernel& k : fp.kernels)
    for (NodeId i : g[k.node].in)
      if (reads(i)) return true;
  return false;
}

// Nodes reachable from the forward roots.
std::set<NodeId> reachable(const Graph& g, const std::vector<NodeId>& roots) {
  std::vector<NodeId> o = ir::topoOrder(g, roots);
  return {o.begin(), o.end()};
}

}  // namespace

std::optional<BatchedProduct> batchedProduct(const Graph& g, const FunctionPlan& fp, NodeId node) {
  const Node& n = g[node];
  if (n.op != Op::MatMul) return std::nullopt;
  // An operand's node with a place, and whether it is read transposed.
  auto placed = [&](NodeId id) -> std::optional<std::pair<NodeId, bool>> {
    const Node& m = g[id];
    if (m.op == Op::Transpose && fp.placed.count(m.in[0])) return std::pair{m.in[0], true};
    if (fp.placed.count(id)) return std::pair{id, false};
    return std::nullopt;
  };
  const auto a = placed(n.in[0]), b = placed(n.in[1]);
  if (!a || !b) return std::nullopt;
  // Logical (per batch element) operands: A [m, k] (a vector is [1, k]), B [k, p] (a vector is
  // [k, 1]), stored row-major; a transposed read flips the flag.
  const Shape &la = g[n.in[0]].shape, &lb = g[n.in[1]].shape;
  const Shape &sa = g[a->first].shape, &sb = g[b->first].shape;
  const int64_t k = la.dims.back();
  if (!sa.batched && sb.batched && lb.rank() == 1 && !b->second)  // y_b = A x_b: Y = X A^T
    return BatchedProduct{b->first, a->first, !a->second, la.rank() == 2 ? la.dims[0] : 1, k,
                          sa.rank() == 2 ? sa.dims[1] : k};
  if (sa.batched && !sb.batched && la.rank() == 1 && !a->second)  // y_b = x_b B: Y = X B
    return BatchedProduct{a->first, b->first, b->second, lb.rank() == 2 ? lb.dims[1] : 1, k,
                          sb.rank() == 2 ? sb.dims[1] : 1};
  return std::nullopt;
}

namespace {

// Flags the backward kernels that no root but the input adjoint needs (a GRU's dz W_zx, ...), and
// whether a null d_input may skip them: every kernel writing d_input is flagged, and no value the
// other kernels use lives there.
void markInputAdjointOnly(const Graph& g, const std::vector<Root>& roots, Plan& plan) {
  std::vector<NodeId> others;
  for (const Root& r : roots)
    if (r.dest.buf != Buf::DInput) others.push_back(r.node);
  const std::set<NodeId> needed = reachable(g, others);
  bool any = false, valid = true;
  for (Kernel& k : plan.backward.kernels) {
    k.inputAdjointOnly = !needed.count(k.node);
    any = any || k.inputAdjointOnly;
    if (k.out.buf == Buf::DInput && !k.inputAdjointOnly) valid = false;
  }
  for (const auto& [id, p] : plan.backward.placed)
    if (p.buf == Buf::DInput && needed.count(id)) valid = false;
  plan.inputAdjointOptional = any && valid;
  if (!plan.inputAdjointOptional)
    for (Kernel& k : plan.backward.kernels) k.inputAdjointOnly = false;
}

// The W of a per-step product that may be packed (PackedOperand, without its offset): a
// BatchedProduct whose W is a param or a hoisted value.
std::optional<PackedOperand> packableOperand(const Graph& g, const FunctionPlan& fp, const Kernel& k) {
  if (k.kind != Kernel::Kind::Gemm) return std::nullopt;
  const std::optional<BatchedProduct> bp = batchedProduct(g, fp, k.node);
  if (!bp) return std::nullopt;
  const Place& w = fp.placed.at(bp->w);
  if ((w.buf != Buf::Params && w.buf != Buf::Hoisted) || w.perBatch || w.batchStride ||
      g[bp->w].shape.rank() != 2 || bp->n * bp->k < kPackedMinElements)
    return std::nullopt;
  PackedOperand p;
  p.src = w;
  p.rowMajor = bp->wTrans;
  p.n = bp->n;
  p.k = bp->k;
  p.ld = bp->ldw;
  return p;
}

// Marks the per-step products whose W the prologue packs, and lays out their regions.
void planPacking(const StepIR& ir, Plan& plan, const std::vector<PackedOperand>* packedFrom) {
  if (packedFrom) {
    plan.packed = *packedFrom;
    for (const PackedOperand& p : plan.packed) plan.packedSize += packedRegionSize(p.n, p.k);
  }
  for (FunctionPlan* fp : {&plan.forward, &plan.backward})
    for (Kernel& k : fp->kernels) {
      std::optional<PackedOperand> p = packableOperand(ir.g, *fp, k);
      if (!p) continue;
      auto it = std::find(plan.packed.begin(), plan.packed.end(), *p);
      if (it == plan.packed.end()) {
        if (packedFrom) continue;  // not packed by the prologue this plan shares
        p->offset = ir.hoistedSize + plan.packedSize;
        plan.packedSize += packedRegionSize(p->n, p->k);
        it = plan.packed.insert(plan.packed.end(), *p);
      }
      k.packedAt = it->offset;
    }
}

}  // namespace

Plan makePlan(const StepIR& ir, bool withOmega, const std::vector<PackedOperand>* packedFrom) {
  const Graph& g = ir.g;
  Plan plan;
  std::set<NodeId> fwdSet = reachable(g, ir.forwardRoots());

  // Forward nodes the backward computation reads directly (the boundary).
  std::set<NodeId> boundary;
  {
    std::vector<NodeId> bwOrder = ir::topoOrder(g, ir.backwardRoots());
    for (NodeId id : bwOrder) {
      if (fwdSet.count(id)) continue;
      for (NodeId i : g[id].in)
        if (fwdSet.count(i)) boundary.insert(i);
    }
    for (NodeId r : ir.backwardRoots())
      if (fwdSet.count(r)) boundary.insert(r);
  }
  std::set<NodeId> force;
  for (NodeId b : boundary) {
    Op op = g[b].op;
    if (isTranscendental(op) || isContract(g, b)) force.insert(b);
  }

  // Forward roots.
  std::vector<Root> fwdRoots;
  for (size_t i = 0; i < ir.stateNext.size(); ++i)
    fwdRoots.push_back({ir.stateNext[i], {Buf::StateNext, 0, ir.layout.states[i].offset}, false});
  for (size_t i = 0; i < ir.outputs.size(); ++i)
    fwdRoots.push_back({ir.outputs[i], {Buf::Output, 0, ir.layout.outputs[i].offset}, false});

  // A dry run of the forward plan tells what the forward materializes; the tape is then the
  // materialized values the backward reaches through recomputable (fused) nodes.
  std::set<NodeId> tape;
  {
    FunctionPlan dry;
    placeLeaves(ir, dry, Stage::Forward);
    Allocator scratch{Buf::Scratch};
    FunctionPlanner(g, dry).run(fwdRoots, force, [&](NodeId id) { return scratch.alloc(g[id]); });
    std::set<NodeId> seen;
    std::function<void(NodeId)> visit = [&](NodeId id) {
      if (!seen.insert(id).second) return;
      const Node& n = g[id];
      if (ir::opKind(n.op) == OpKind::Leaf || isConstantLike(n.op)) return;
      if (dry.placed.count(id)) {
        tape.insert(id);
        return;
      }
      for (NodeId i : n.in) visit(i);
    };
    for (NodeId b : boundary) visit(b);
  }

  // The forward plan, with taped nodes homed in the tape. A taped forward root is computed into
  // the tape and copied to its destination.
  Allocator tapeAlloc{Buf::Tape}, fwdScratch{Buf::Scratch}, bwdScratch{Buf::Scratch};
  std::unordered_map<NodeId, Place> tapePlace;
  for (NodeId id : tape) tapePlace[id] = tapeAlloc.alloc(g[id]);
  // Batched tape entries sit after the unbatched ones.
  for (auto& [id, p] : tapePlace)
    if (g[id].shape.batched) p.fixed = tapeAlloc.extent.fixed;
  plan.tape = tapeAlloc.extent;
  plan.tapeNodes.assign(tape.begin(), tape.end());

  placeLeaves(ir, plan.forward, Stage::Forward);
  std::set<NodeId> fwdForce = force;
  fwdForce.insert(tape.begin(), tape.end());
  FunctionPlanner(g, plan.forward).run(fwdRoots, fwdForce, [&](NodeId id) {
    auto it = tapePlace.find(id);
    return it != tapePlace.end() ? it->second : fwdScratch.alloc(g[id]);
  });
  // Fix up: any taped node computed directly into a root destination gets a copy into the tape.
  for (NodeId id : tape) {
    Place p = plan.forward.placed.at(id);
    if (p.buf != Buf::Tape) plan.forward.kernels.push_back({Kernel::Kind::Copy, id, tapePlace[id], false});
  }

  // Backward: leaves, the tape, and the adjoint leaves are available.
  placeLeaves(ir, plan.backward, Stage::Backward);
  for (auto& [id, p] : tapePlace) plan.backward.placed[id] = p;
  std::vector<Root> bwRoots;
  for (size_t i = 0; i < ir.dState.size(); ++i)
    bwRoots.push_back({ir.dState[i], {Buf::DState, 0, ir.layout.states[i].offset}, false});
  for (size_t i = 0; i < ir.dInput.size(); ++i)
    bwRoots.push_back({ir.dInput[i], {Buf::DInput, 0, ir.layout.inputs[i].offset}, false});
  // A hoisted step leaves no step gradient to the params it reads only through hoisted values
  // (their gradient comes from the epilogue): no per-step pass adding zeros to them.
  // Likewise for the gradients the segment stage forms alone.
  const bool elsewhere = !ir.hoisted.empty() || !ir.deferred.empty() || !ir.staged.empty();
  for (size_t i = 0; i < ir.dParam.size(); ++i)
    if (!elsewhere || !isZero(g, ir.dParam[i]))
      bwRoots.push_back({ir.dParam[i], {Buf::DParams, ir.layout.params[i].offset, 0}, true});
  for (size_t i = 0; i < ir.dHoisted.size(); ++i)
    if ((ir.deferred.empty() && ir.staged.empty()) || !isZero(g, ir.dHoisted[i]))
      bwRoots.push_back({ir.dHoisted[i], {Buf::DHoisted, ir.hoistedSlots[i].offset, 0}, true});
  // The deferred products' operands, into this step's row block of the segment buffer.
  // A segment value the backward computes lives there (its other users read it in place): no
  // copy, no scratch.
  auto segmentPlace = [&](size_t i) { return Place{Buf::Segment, ir.segmentOffsets[i], 0, ir.segmentSize}; };
  std::unordered_map<NodeId, Place> segmentHome;
  for (size_t i = 0; i < ir.segmentValues.size(); ++i) {
    bwRoots.push_back({ir.segmentValues[i], segmentPlace(i), false});
    segmentHome[ir.segmentValues[i]] = segmentPlace(i);
  }
  // The staged values' adjoints, into this step's rows of the d-staged buffer (homed there too).
  for (size_t i = 0; i < ir.dStaged.size(); ++i) {
    const Place p{Buf::DStaged, ir.stagedSlots[i].offset, 0, ir.stagedSize};
    bwRoots.push_back({ir.dStaged[i], p, false});
    if (!segmentHome.count(ir.dStaged[i])) segmentHome[ir.dStaged[i]] = p;
  }
  FunctionPlanner(g, plan.backward).run(bwRoots, {}, [&](NodeId id) {
    auto it = segmentHome.find(id);
    return it != segmentHome.end() ? it->second : bwdScratch.alloc(g[id]);
  });
  markInputAdjointOnly(g, bwRoots, plan);

  // The segment stage: the operands are in place; one GEMM (K = steps x B) per product.
  Allocator segScratch{Buf::Scratch};
  if (!ir.deferred.empty()) {
    plan.hasSegment = true;
    for (size_t i = 0; i < ir.segmentValues.size(); ++i) plan.segment.placed[ir.segmentValues[i]] = segmentPlace(i);
    std::vector<Root> segRoots;
    for (const StepIR::Deferred& d : ir.deferred) {
      const ir::Slot& s = d.toHoisted ? ir.hoistedSlots[static_cast<size_t>(d.slot)]
                                      : ir.layout.params[static_cast<size_t>(d.slot)];
      segRoots.push_back({d.product, {d.toHoisted ? Buf::DHoisted : Buf::DParams, s.offset, 0}, true});
    }
    FunctionPlanner(g, plan.segment).run(segRoots, {}, [&](NodeId id) { return segScratch.alloc(g[id]); });
  }

  Allocator omegaScratch{Buf::Scratch};
  if (withOmega) {
    plan.hasOmega = true;
    placeLeaves(ir, plan.omega, Stage::Backward);
    std::vector<Root> omegaRoots;
    for (size_t i = 0; i < ir.omegaParam.size(); ++i)
      omegaRoots.push_back({ir.omegaParam[i], {Buf::DParams, ir.layout.params[i].offset, 0}, true});
    FunctionPlanner(g, plan.omega).run(omegaRoots, {}, [&](NodeId id) { return omegaScratch.alloc(g[id]); });
  }
  // Prologue: params to the hoisted buffer. Epilogue: params, the hoisted values (forward values
  // its derivative rules reuse) and their accumulated adjoints to dParams (+=).
  Allocator proScratch{Buf::Scratch}, epiScratch{Buf::Scratch};
  if (!ir.hoisted.empty()) {
    plan.hasHoisted = true;
    placeLeaves(ir, plan.prologue, Stage::Forward);
    std::vector<Root> proRoots;
    for (size_t i = 0; i < ir.hoisted.size(); ++i)
      proRoots.push_back({ir.hoisted[i], {Buf::Hoisted, ir.hoistedSlots[i].offset, 0}, false});
    FunctionPlanner(g, plan.prologue).run(proRoots, {}, [&](NodeId id) { return proScratch.alloc(g[id]); });
    placeLeaves(ir, plan.epilogue, Stage::Epilogue);
    for (size_t i = 0; i < ir.hoisted.size(); ++i)
      plan.epilogue.placed[ir.hoisted[i]] = {Buf::Hoisted, ir.hoistedSlots[i].offset, 0};
    std::vector<Root> epiRoots;
    for (size_t i = 0; i < ir.epilogueParam.size(); ++i)
      if (!isZero(g, ir.epilogueParam[i]))  // params the invariant part does not read
        epiRoots.push_back({ir.epilogueParam[i], {Buf::DParams, ir.layout.params[i].offset, 0}, true});
    FunctionPlanner(g, plan.epilogue).run(epiRoots, {}, [&](NodeId id) { return epiScratch.alloc(g[id]); });
  }
  // The input stage: inputs (steps x B rows) to the staged buffer; the staged values' adjoints to
  // dParams and dHoisted (+=), the staged values themselves at hand for derivative rules.
  Allocator inScratch{Buf::Scratch};
  if (!ir.staged.empty()) {
    plan.hasStaged = true;
    placeLeaves(ir, plan.inputPrologue, Stage::Forward);
    std::vector<Root> inRoots;
    for (size_t i = 0; i < ir.staged.size(); ++i)
      inRoots.push_back({ir.staged[i], {Buf::Staged, ir.stagedSlots[i].offset, 0, ir.stagedSize}, false});
    FunctionPlanner(g, plan.inputPrologue).run(inRoots, {}, [&](NodeId id) { return inScratch.alloc(g[id]); });
    placeLeaves(ir, plan.inputEpilogue, Stage::InputEpilogue);
    for (size_t i = 0; i < ir.staged.size(); ++i)
      plan.inputEpilogue.placed[ir.staged[i]] = {Buf::Staged, ir.stagedSlots[i].offset, 0, ir.stagedSize};
    std::vector<Root> outRoots;
    for (size_t i = 0; i < ir.inputEpilogueParam.size(); ++i)
      if (!isZero(g, ir.inputEpilogueParam[i]))
        outRoots.push_back({ir.inputEpilogueParam[i], {Buf::DParams, ir.layout.params[i].offset, 0}, true});
    for (size_t i = 0; i < ir.inputEpilogueHoisted.size(); ++i)
      if (!isZero(g, ir.inputEpilogueHoisted[i]))
        outRoots.push_back({ir.inputEpilogueHoisted[i], {Buf::DHoisted, ir.hoistedSlots[i].offset, 0}, true});
    FunctionPlanner(g, plan.inputEpilogue).run(outRoots, {}, [&](NodeId id) { return inScratch.alloc(g[id]); });
    plan.inputScratch = inScratch.extent;
    plan.stagedReadBack = readsBuf(g, plan.backward, Buf::Staged) || readsBuf(g, plan.inputEpilogue, Buf::Staged);
    for (FunctionPlan* fp : {&plan.inputPrologue, &plan.inputEpilogue}) {
      for (Kernel& k : fp->kernels)
        if (k.out.buf == Buf::Scratch && g[k.node].shape.batched) k.out.fixed = plan.inputScratch.fixed;
      for (auto& [id, p] : fp->placed)
        if (p.buf == Buf::Scratch && g[id].shape.batched) p.fixed = plan.inputScratch.fixed;
    }
  }
  plan.scratch.fixed = std::max({fwdScratch.extent.fixed, bwdScratch.extent.fixed, omegaScratch.extent.fixed,
                                 proScratch.extent.fixed, epiScratch.extent.fixed, segScratch.extent.fixed});
  plan.scratch.perBatch =
      std::max({fwdScratch.extent.perBatch, bwdScratch.extent.perBatch, omegaScratch.extent.perBatch});
  // Batched scratch entries sit after the unbatched ones.
  for (FunctionPlan* fp :
       {&plan.forward, &plan.backward, &plan.omega, &plan.prologue, &plan.epilogue, &plan.segment}) {
    for (Kernel& k : fp->kernels)
      if (k.out.buf == Buf::Scratch && g[k.node].shape.batched) k.out.fixed = plan.scratch.fixed;
    for (auto& [id, p] : fp->placed)
      if (p.buf == Buf::Scratch && g[id].shape.batched) p.fixed = plan.scratch.fixed;
  }
  for (FunctionPlan* fp : {&plan.forward, &plan.backward, &plan.omega}) groupLoops(g, *fp);
  plan.adjointInPlace = placeAdjointInPlace(g, ir.layout, plan.backward);
  planPacking(ir, plan, packedFrom);
  return plan;
}

bool sameTape(const Plan& a, const Plan& b) {
  if (a.tape.fixed != b.tape.fixed || a.tape.perBatch != b.tape.perBatch || a.tapeNodes != b.tapeNodes)
    return false;
  for (NodeId id : a.tapeNodes) {
    auto pa = a.backward.placed.find(id), pb = b.backward.placed.find(id);
    if (pa == a.backward.placed.end() || pb == b.backward.placed.end()) return false;
    const Place &x = pa->second, &y = pb->second;
    if (x.buf != y.buf || x.fixed != y.fixed || x.perBatch != y.perBatch || x.batchStride != y.batchStride)
      return false;
  }
  return true;
}

std::string printPlan(const StepIR& ir, const Plan& plan) {
  std::ostringstream os;
  auto place = [](const Place& p) {
    std::ostringstream s;
    s << bufName(p.buf) << "+" << p.fixed;
    if (p.perBatch) s << "+B*" << p.perBatch;
    if (p.batchStride) s << " (rows " << p.batchStride << " apart)";
    return s.str();
  };
  static const char* kinds[] = {"pointwise", "reduce", "gemm", "copy"};
  std::vector<std::pair<const char*, const FunctionPlan*>> stages;
  if (plan.hasHoisted) {
    os << "# hoisted (sequence-invariant): " << ir.hoistedSize << " elements:";
    for (size_t i = 0; i < ir.hoisted.size(); ++i)
      os << " %" << ir.hoisted[i] << (ir.hoistedSlots[i].name.empty() ? "" : " ")
         << ir.hoistedSlots[i].name << " " << ir.hoistedSlots[i].shape.str();
    os << "\n";
    stages = {{"prologue (invariant, once per sequence)", &plan.prologue},
              {"forward (per step)", &plan.forward},
              {"backward (per step)", &plan.backward},
              {"epilogue (once at the end of the backward walk)", &plan.epilogue}};
  } else {
    stages = {{"forward", &plan.forward}, {"backward", &plan.backward}};
  }
  if (!plan.packed.empty()) {
    os << "# packed by the prologue (GEMM panels, once per sequence):";
    for (const PackedOperand& p : plan.packed)
      os << " " << place(p.src) << " [" << p.n << ", " << p.k << "]" << (p.rowMajor ? "" : "^T") << " -> Hoisted+"
         << p.offset;
    os << "\n";
  }
  if (plan.hasSegment) {
    os << "# segment buffer: " << ir.segmentSize << " elements per row, B rows per step:";
    for (size_t i = 0; i < ir.segmentValues.size(); ++i)
      os << " %" << ir.segmentValues[i] << "@" << ir.segmentOffsets[i];
    os << "\n";
    stages.insert(stages.end() - (plan.hasHoisted ? 1 : 0),
                  {"segment (once per segment of the backward walk, K = steps x B)", &plan.segment});
  }
  if (plan.hasStaged) {
    os << "# staged (input stage, train.input_stage): " << ir.stagedSize << " elements per row, B rows per step:";
    for (size_t i = 0; i < ir.staged.size(); ++i)
      os << " %" << ir.staged[i] << (ir.stagedSlots[i].name.empty() ? "" : " ") << ir.stagedSlots[i].name << " "
         << ir.stagedSlots[i].shape.str() << "@" << ir.stagedSlots[i].offset;
    os << "\n";
    stages.insert(stages.begin() + (plan.hasHoisted ? 1 : 0),
                  {"input prologue (once per sequence, batch = steps x B)", &plan.inputPrologue});
    stages.insert(stages.end() - (plan.hasHoisted ? 1 : 0),
                  {"input epilogue (once at the end of the backward walk, batch = steps x B)", &plan.inputEpilogue});
  }
  for (auto [name, fp] : stages) {
    os << "# " << name << ": " << fp->kernels.size() << " kernels\n";
    // A loop group (codegen/LoopGroups.h) is shown as its shared loop, its kernels indented.
    for (size_t i = 0; i < fp->kernels.size(); ++i) {
      const Kernel& k = fp->kernels[i];
      const bool grouped = k.fusedWithPrev || (i + 1 < fp->kernels.size() && fp->kernels[i + 1].fusedWithPrev);
      if (grouped && !k.fusedWithPrev) {
        auto space = loopSpace(ir.g, k);
        os << "  loop [B, " << (*space)[0] << ", " << (*space)[1] << "]:\n";
      }
      // [i]: the kernel's index; a loop group or kernel the emitter outlines to split it over the
      // batch is the function <name>.k<i> of its first kernel (named in CELLC_PERF_MAP profiles).
      os << (grouped ? "    " : "  ") << "[" << i << "] " << kinds[static_cast<int>(k.kind)] << " %" << k.node << " ("
         << ir::opName(ir.g[k.node].op) << " " << ir.g[k.node].shape.str() << ") -> "
         << place(k.out) << (k.accumulate ? " (+=)" : "")
         << (k.packedAt >= 0 ? " (W packed at Hoisted+" + std::to_string(k.packedAt) + ")" : "")
         << (k.inputAdjointOnly ? " (skipped without d_input)" : "") << "\n";
    }
  }
  if (plan.adjointInPlace) os << "# backward: d_state written over d_state_next (one buffer)\n";
  os << "# tape: " << plan.tape.fixed << " + B*" << plan.tape.perBatch << " elements:";
  for (NodeId id : plan.tapeNodes) os << " %" << id;
  os << "\n# scratch: " << plan.scratch.fixed << " + B*" << plan.scratch.perBatch << " elements\n";
  if (plan.hasStaged && !plan.stagedReadBack) os << "# the backward and the input epilogue do not read the staged values\n";
  if (plan.hasStaged)
    os << "# input stage scratch: " << plan.inputScratch.fixed << " + (steps x B)*" << plan.inputScratch.perBatch
       << " elements\n";
  return os.str();
}

}  // namespace cellc::codegen
