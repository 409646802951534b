// The state adjoint in place: a backward step that may write d_state over d_state_next.
//
// BPTT's backward walk reads each step's state adjoint once, in the step that writes the one
// before it. With two buffers it ping-pongs; a plastic cell's [B, n, n] trace adjoint then keeps
// two trace-sized buffers (1.2 MB a copy-first shard) where one would do, and the second does not
// fit in a core's L2 beside the trace being read. When every element of d_state_next is read
// before the backward writes the same element of d_state, and never after, one buffer serves
// both: the backward then reads the adjoint leaves from the d_state buffer (the same pointer, so
// LLVM sees each read and write at one address and keeps their order).
//
// Safe when, for each state, every kernel that reads its adjoint leaf runs before the kernel that
// writes its d_state, or in that kernel's loop group (codegen/LoopGroups.h) no later than it and
// at the element it writes: the leaf reached through elementwise operations only (no transpose,
// slice, broadcast or product), in a loop over the leaf's own [B, p, q] storage.
#pragma once

#include "codegen/Plan.h"
#include "ir/Step.h"

namespace cellc::codegen {

// Whether the backward plan `bw` may run with d_state == d_state_next; if so, re-places its
// adjoint-state leaves in the d_state buffer (the caller then passes d_state holding
// d_state_next's values). Call after the loop groups are formed.
bool placeAdjointInPlace(const ir::Graph& g, const ir::Layout& layout, FunctionPlan& bw);

}  // namespace cellc::codegen
