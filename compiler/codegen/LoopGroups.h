// Loop groups: kernels that run over the same [B, p, q] iteration space share one loop nest, so a
// plastic cell's [B, n, n] trace and its adjoint are streamed once per group instead of once per
// kernel. PBRC's backward made seven passes over [B, n, n] values per step (the two sums of the
// outer product's adjoint, two sums for eta's gradient, the transposed trace product, A's gradient
// and the trace's adjoint); grouped, it makes two.
//
// A group is a run of consecutive kernels in a FunctionPlan, each after the first marked
// Kernel::fusedWithPrev. The emitter zeroes the group's reduction outputs, then computes every
// member's element at (b, r, c) in one pass; each member's own loop order and summation order are
// those it has alone, so grouping changes no bit of any result. A kernel joins an earlier group
// (moving up past the kernels between) only when it reads nothing they or the group write and
// writes nothing they read.
#pragma once

#include <array>
#include <optional>

#include "codegen/Plan.h"

namespace cellc::codegen {

// The [p, q] loop a kernel runs over each batch element, when a loop group can share it: a
// pointwise or copy kernel of a batched [p, q] value, a sum over a batched [p, q] value, and a
// batched matrix-vector product (over the matrix's storage: [p, q] of the transpose's source when
// the matrix is read transposed). Nothing otherwise.
std::optional<std::array<int64_t, 2>> loopSpace(const ir::Graph& g, const Kernel& k);

// Reorders fp's kernels into loop groups and marks them (Kernel::fusedWithPrev).
void groupLoops(const ir::Graph& g, FunctionPlan& fp);

}  // namespace cellc::codegen
