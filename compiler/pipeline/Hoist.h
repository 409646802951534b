// Hoisting: the part of a step that depends only on params and constants (dale_rnn's
// `relu(W_rec_raw * no_self) * ei`, a gate's `tanh(P) * mask`) is the same at every step of a
// sequence. This pass finds it from the graph alone and splits the step into three stages:
//   prologue  (once per sequence): hoisted = the invariant values the step reads (the frontier);
//   per step: forward and backward read them as Hoisted leaves, and the backward adds their
//             adjoints (summed over the batch) into a d-hoisted buffer instead of the params';
//   epilogue  (once, after the backward walk): dParams += VJP of the invariant part seeded by the
//             accumulated d-hoisted.
// Only what pays is hoisted: no leaves, no constants, no views (transpose, slice, reshape,
// broadcast: their operand is hoisted instead), no scalars. A step with nothing worth hoisting
// comes back unchanged.
#pragma once

#include "pipeline/Lower.h"

namespace cellc {

// The hoisted form of a lowered step (StepIR::hoisted and friends set), or `ir` itself when
// nothing is worth hoisting. The Omega gradient, effective matrices and named values keep reading
// params directly.
StepIR hoist(const StepIR& ir);

}  // namespace cellc
