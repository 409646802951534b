// The step as the compiler's back half consumes it: the simplified forward and backward graphs
// with their roots, the layout, and what hoisting and the segment plan added. pipeline/Lower.h
// makes it; autodiff's printer, codegen, the evaluator and the JIT read it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ir/Step.h"

namespace cellc {

struct StepIR {
  ir::Graph g;
  ir::Layout layout;
  std::string cellName;
  // Forward roots.
  std::vector<ir::NodeId> stateNext, outputs;
  // Backward roots: adjoints of the state at the start of the step and of the inputs, and this
  // step's param gradient contributions (summed over the batch), then dHoisted and the segment
  // values (below).
  std::vector<ir::NodeId> dState, dInput, dParam;
  // The vanishing-gradient regularizer's param gradient (autodiff::omegaGradient), per param.
  std::vector<ir::NodeId> omegaParam;
  // Per param: the effective matrix that spectral_radius(.., of = W) measures, or -1.
  std::vector<ir::NodeId> effective;
  // Names of forward values (intermediates, h', outputs), for printing derivatives.
  std::vector<std::pair<std::string, ir::NodeId>> named;

  // The sequence-invariant part (pipeline/Hoist.h); all empty when nothing is hoisted.
  // hoisted[i]: a value of params and constants that the prologue computes once per sequence into
  // the hoisted buffer at hoistedSlots[i].offset (unbatched, like a param); the step graphs read it
  // as the Hoisted leaf i.
  std::vector<ir::NodeId> hoisted;
  std::vector<ir::Slot> hoistedSlots;
  int64_t hoistedSize = 0;
  // Backward roots: per hoisted value, this step's adjoint (summed over the batch); the runtime
  // accumulates it over the steps in the d-hoisted buffer.
  std::vector<ir::NodeId> dHoisted;
  // The epilogue, once per sequence: per param, the VJP of the hoisted values seeded with their
  // accumulated adjoints (AdjHoisted leaves); it adds to the param gradient.
  std::vector<ir::NodeId> epilogueParam;

  // Deferred weight-gradient products (pipeline/SegmentGemm.h); all empty when none is deferred.
  // segmentValues[i]: a batched [B, cols] value the per-step backward copies into row block k of
  // the segment buffer, a [steps * B, segmentSize] matrix, at column segmentOffsets[i]; after the
  // walk of a segment each deferred product adds a^T b over all its rows (K = steps * B) to a
  // param's gradient or a hoisted value's adjoint. The dParam and dHoisted roots above leave those
  // products out.
  struct Deferred {
    ir::NodeId product;  // the BatchOuterSum it replaces: [cols(a), cols(b)]
    int a, b;            // indices into segmentValues
    bool toHoisted;      // into dHoisted (else dParams)
    int slot;            // the param's or hoisted value's index
  };
  std::vector<ir::NodeId> segmentValues;
  std::vector<int64_t> segmentOffsets;
  int64_t segmentSize = 0;
  std::vector<Deferred> deferred;

  // The input stage (pipeline/InputStage.h); all empty when nothing is staged. staged[i]: a batched
  // value of inputs, params and hoisted values alone (a GRU's W_zx @ x) that the input prologue
  // computes for every step of a sequence at once, one function call over its steps x B rows, into
  // the staged buffer, a [steps * B, stagedSize] matrix, at column stagedSlots[i].offset; the step
  // graphs read this step's rows as the Staged leaf i.
  std::vector<ir::NodeId> staged;
  std::vector<ir::Slot> stagedSlots;
  int64_t stagedSize = 0;
  // Backward roots: per staged value, this step's adjoint (per batch element), written to the
  // step's rows of the d-staged buffer (laid out as the staged one).
  std::vector<ir::NodeId> dStaged;
  // The input epilogue, once after the backward walk over all steps x B rows: the VJP of the
  // staged values seeded with their adjoints (AdjStaged leaves), per param (added to the param
  // gradient) and per hoisted value (added to its adjoint). The staged step has no input adjoint.
  std::vector<ir::NodeId> inputEpilogueParam, inputEpilogueHoisted;

  std::vector<ir::NodeId> forwardRoots() const;
  std::vector<ir::NodeId> backwardRoots() const;
};

}  // namespace cellc
