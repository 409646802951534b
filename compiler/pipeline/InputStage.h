// The input stage: the products of a step that read only inputs, params and hoisted values (a
// GRU's W_zx @ x, an LSTM's stacked W_x @ x) do not depend on the recurrence, so they can run for
// every step of a sequence at once, as one GEMM over its steps x B rows, before the walk. This
// pass finds them from the graph alone and splits the step into:
//   input prologue (once per sequence, batch = steps x B): staged = those values (the frontier
//                  nearest the step whose subgraph holds a product contracting over more than
//                  `inlineContraction` elements: smaller ones are inline sums, nothing to gain);
//   per step:      forward and backward read this step's rows as Staged leaves; the backward
//                  writes their adjoints to this step's rows of the d-staged buffer;
//   input epilogue (once after the backward walk, batch = steps x B): dParams += (and dHoisted +=)
//                  the VJP of the staged values seeded with those adjoints: each weight gradient
//                  one product over all steps x B rows instead of one per step.
// The staged step computes no input adjoint (training never reads it). A step with nothing worth
// staging comes back unchanged (stagedSize 0).
#pragma once

#include <cstdint>

#include "pipeline/Lower.h"

namespace cellc {

// The staged form of a lowered (and possibly hoisted) step, or `ir` itself.
StepIR stageInputs(const StepIR& ir, int64_t inlineContraction);

}  // namespace cellc
