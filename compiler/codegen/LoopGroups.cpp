#include "codegen/LoopGroups.h"

#include <set>

namespace cellc::codegen {

using ir::Graph;
using ir::Node;
using ir::NodeId;
using ir::Op;

std::optional<std::array<int64_t, 2>> loopSpace(const Graph& g, const Kernel& k) {
  const Node& n = g[k.node];
  auto batchedMatrix = [](const Shape& s) { return s.batched && s.rank() == 2; };
  switch (k.kind) {
    case Kernel::Kind::Pointwise:
    case Kernel::Kind::Copy:
      if (batchedMatrix(n.shape)) return std::array{n.shape.dims[0], n.shape.dims[1]};
      return std::nullopt;
    case Kernel::Kind::Reduce: {
      if (isBatchedMatVec(g, k.node)) {
        const NodeId m = g[n.in[0]].shape.rank() == 2 ? n.in[0] : n.in[1];
        const Shape& ms = g[m].shape;
        if (g[m].op == Op::Transpose) return std::array{ms.dims[1], ms.dims[0]};
        return std::array{ms.dims[0], ms.dims[1]};
      }
      const Shape& in = g[n.in[0]].shape;
      if ((n.op == Op::Sum || n.op == Op::SumBatch) && batchedMatrix(in))
        return std::array{in.dims[0], in.dims[1]};
      return std::nullopt;
    }
    case Kernel::Kind::Gemm: return std::nullopt;
  }
  return std::nullopt;
}

namespace {

bool samePlace(const Place& a, const Place& b) {
  return a.buf == b.buf && a.fixed == b.fixed && a.perBatch == b.perBatch && a.batchStride == b.batchStride;
}

// The places a kernel loads from, as the emitter reads them: a placed node is loaded, any other
// node is computed from its operands (constants from nothing).
std::vector<Place> readsOf(const Graph& g, const FunctionPlan& fp, const Kernel& k) {
  std::vector<Place> reads;
  std::set<NodeId> seen;
  auto visit = [&](auto&& self, NodeId id) -> void {
    if (!seen.insert(id).second) return;
    if (auto it = fp.placed.find(id); it != fp.placed.end()) {
      reads.push_back(it->second);
      return;
    }
    for (NodeId i : g[id].in) self(self, i);
  };
  if (k.kind == Kernel::Kind::Copy) visit(visit, k.node);
  else
    for (NodeId i : g[k.node].in) visit(visit, i);
  return reads;
}

struct Scheduled {
  Kernel kernel;
  std::vector<Place> reads;
};

// Whether `a` and `b` may run in either order: neither reads or writes what the other writes.
bool independent(const Scheduled& a, const Scheduled& b) {
  if (samePlace(a.kernel.out, b.kernel.out)) return false;
  for (const Place& p : a.reads)
    if (samePlace(p, b.kernel.out)) return false;
  for (const Place& p : b.reads)
    if (samePlace(p, a.kernel.out)) return false;
  return true;
}

}  // namespace

void groupLoops(const Graph& g, FunctionPlan& fp) {
  std::vector<Scheduled> out;
  std::vector<std::optional<std::array<int64_t, 2>>> spaces;  // per scheduled kernel
  for (Kernel k : fp.kernels) {
    k.fusedWithPrev = false;
    Scheduled s{k, readsOf(g, fp, k)};
    // A kernel the backward may skip (Kernel::inputAdjointOnly) is emitted alone, under its test.
    const auto space = k.inputAdjointOnly ? std::nullopt : loopSpace(g, k);
    size_t at = out.size();  // where k goes: the end, or the end of the group it joins
    if (space) {
      // Walk back group by group while k may move above every kernel passed.
      size_t end = out.size();
      while (end > 0) {
        size_t begin = end - 1;
        while (begin > 0 && out[begin].kernel.fusedWithPrev) --begin;
        bool free = true;
        for (size_t i = begin; i < end && free; ++i) free = independent(s, out[i]);
        if (!free) break;
        if (spaces[begin] == space) {
          at = end;
          s.kernel.fusedWithPrev = true;
          break;
        }
        end = begin;
      }
    }
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), s);
    spaces.insert(spaces.begin() + static_cast<std::ptrdiff_t>(at), space);
  }
  fp.kernels.clear();
  for (const Scheduled& s : out) fp.kernels.push_back(s.kernel);
}

}  // namespace cellc::codegen
