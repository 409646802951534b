// The interface every executable form of a step implements: the reference evaluator
// (eval/Evaluate.h) and the JIT-compiled kernels. The runtime (unrolling, training) only talks to
// this interface, so a test can swap one implementation for another.
//
// Buffers are flat and follow the Layout (ir/Step.h): params unbatched at slot.offset; states,
// inputs, noise and outputs batched, slot i holding [B, dims...] at B * slot.offset.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "ir/Step.h"

namespace cellc {

template <class T>
class StepKernel {
 public:
  virtual ~StepKernel() = default;
  virtual const ir::Layout& layout() const = 0;
  // Whether the hoisted stages (prologue, forwardHoisted, backwardHoisted, epilogue, and the
  // segment stages) may run at once on different threads of the work pool (blas/WorkPool.h), on
  // disjoint buffers: BPTT then runs a batch's shards (runtime/train/Bptt.h) side by side.
  virtual bool concurrentCalls() const { return false; }
  // The multiply-adds of the step's largest matrix product (forward or backward), per trial of
  // the batch; 0 when not known.
  virtual int64_t productWorkPerTrial() const { return 0; }
  // The elements of the largest weight gradient the backward forms as a product summed over the
  // batch (a GEMM with K = B per step); 0 when not known.
  virtual int64_t weightGradientElements() const { return 0; }
  // Whether backward and its hoisted and segment forms accept dInput = nullptr, and then skip the
  // work only the input adjoint needs (training never reads it).
  virtual bool inputAdjointOptional() const { return false; }
  // Whether backward and its hoisted and segment forms accept dState == dStateNext: the state
  // adjoint overwritten in place, each element read before it is written. BPTT then keeps one
  // state-adjoint buffer instead of two (a plastic cell's trace adjoint stays in cache).
  virtual bool adjointInPlace() const { return false; }
  // Elements the forward saves for the backward (per step, for this batch size).
  virtual int64_t tapeSize(int64_t batch) const = 0;
  // One step: (params, state, input, noise) -> (stateNext, output), saving tapeSize(batch)
  // elements in `tape` for backward.
  virtual void forward(const T* params, const T* state, const T* input, const T* noise,
                       T* stateNext, T* output, T* tape, int64_t batch) = 0;
  // The vector-Jacobian product of one step, given the adjoints of stateNext and of the outputs.
  // dParams ACCUMULATES (+=) this step's param gradient (summed over the batch); dState and dInput
  // are overwritten.
  virtual void backward(const T* params, const T* state, const T* input, const T* noise,
                        const T* tape, const T* dStateNext, const T* dOutput, T* dState,
                        T* dInput, T* dParams, int64_t batch) = 0;
  // Hoisting (pipeline/Hoist.h): a kernel may compute the sequence-invariant part of a step once
  // per sequence. forward and backward above are self-contained (they compute that part
  // themselves, and backward's dParams is complete); a runtime that walks a sequence calls instead
  //   prologue(params, hoisted)                      once, hoisted: hoistedSize() elements;
  //   forwardHoisted / backwardHoisted               per step, with the same hoisted values;
  //                                                  backwardHoisted ACCUMULATES into dHoisted
  //                                                  (zeroed by the caller before the walk);
  //   epilogue(params, hoisted, dHoisted, dParams)   once after the backward walk: dParams +=.
  // The defaults fit a kernel that hoists nothing (a wrapper that overrides forward/backward only).
  virtual int64_t hoistedSize() const { return 0; }
  virtual void prologue(const T* params, T* hoisted) {}
  virtual void forwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                              const T* noise, T* stateNext, T* output, T* tape, int64_t batch) {
    forward(params, state, input, noise, stateNext, output, tape, batch);
  }
  virtual void backwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                               const T* noise, const T* tape, const T* dStateNext,
                               const T* dOutput, T* dState, T* dInput, T* dParams, T* dHoisted,
                               int64_t batch) {
    backward(params, state, input, noise, tape, dStateNext, dOutput, dState, dInput, dParams,
             batch);
  }
  virtual void epilogue(const T* params, const T* hoisted, const T* dHoisted, T* dParams) {}

  // Weight gradients over a segment (pipeline/SegmentGemm.h): a kernel may defer the per-step
  // products dW += dY_t^T X_t to one product per segment of the backward walk. backwardHoisted
  // above stays self-contained (its dParams and dHoisted are complete); a runtime that walks
  // segments calls instead, for a segment of `steps` steps,
  //   backwardSegment(..., segment, k, batch)   per step, k in [0, steps): as backwardHoisted,
  //                                             but writing the deferred products' operands into
  //                                             row block k of `segment` (segmentSize(batch)
  //                                             elements per step) instead of adding them;
  //   segmentEpilogue(..., segment, steps, ...) once after the segment's steps: dParams and
  //                                             dHoisted += the deferred products over its rows;
  // before the epilogue above. The defaults fit a kernel that defers nothing (segmentSize 0). A
  // runtime calls these only where they pay (runtime/train/Bptt.h: small batches), so a kernel
  // may make them on first use (jit/Jit.h).
  virtual int64_t segmentSize(int64_t batch) const { return 0; }
  virtual void backwardSegment(const T* params, const T* hoisted, const T* state, const T* input,
                               const T* noise, const T* tape, const T* dStateNext,
                               const T* dOutput, T* dState, T* dInput, T* dParams, T* dHoisted,
                               T* segment, int64_t k, int64_t batch) {
    backwardHoisted(params, hoisted, state, input, noise, tape, dStateNext, dOutput, dState,
                    dInput, dParams, dHoisted, batch);
  }
  virtual void segmentEpilogue(const T* params, const T* hoisted, const T* segment,
                               int64_t steps, T* dParams, T* dHoisted, int64_t batch) {}

  // The vanishing-gradient regularizer's param gradient (autodiff::omegaGradient): dParams +=
  // d/dtheta sum_s cotangent_s . (v^T dstate_s'/dstate), v given per state, v and state constant.
  virtual void omega(const T* params, const T* state, const T* input, const T* noise, const T* v,
                     const T* cotangent, T* dParams, int64_t batch) {
    throw std::logic_error("this step kernel was built without the Omega function");
  }
};

}  // namespace cellc
