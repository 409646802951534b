// Weight gradients as one GEMM per BPTT segment. A per-step weight gradient dW += dY_t^T X_t (a
// BatchOuterSum of two batched values) is a rank-B update per step: at B = 1 a memory-bound outer
// product, at larger B a GEMM with K = B. Summed over a segment it is one GEMM with K = steps x B.
// This pass finds, from the graph alone, the BatchOuterSum terms of the backward's param-gradient
// and hoisted-adjoint roots, takes them out of those roots, and records them as deferred
// products. Their operands become segment values: the per-step backward copies them into row
// block k of a segment buffer ([steps * B, segmentSize], one column range per distinct operand),
// and the segment epilogue, after the backward walk of a segment, adds a^T b over all its rows.
// A step with no such product comes back unchanged.
#pragma once

#include "pipeline/Lower.h"

namespace cellc {

// The deferred form of a lowered (and possibly hoisted) step: StepIR::deferred and the segment
// values set, the dParam and dHoisted roots without the deferred terms.
StepIR deferWeightGradients(const StepIR& ir);

}  // namespace cellc
