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
  // The vanishing-gradient regularizer's param gradient (autodiff::omegaGradient): dParams +=
  // d/dtheta sum_s cotangent_s . (v^T dstate_s'/dstate), v given per state, v and state constant.
  virtual void omega(const T* params, const T* state, const T* input, const T* noise, const T* v,
                     const T* cotangent, T* dParams, int64_t batch) {
    throw std::logic_error("this step kernel was built without the Omega function");
  }
};

}  // namespace cellc
