// Backpropagation through time over T steps with any StepKernel: the forward keeps every step's
// state and tape, the backward walks the steps in reverse. Plain and unoptimized (no
// checkpointing): the tests use it now, the trainer will get a memory-bounded version later.
//
// Buffers follow the kernel's Layout (ir/Step.h): params [paramSize]; a state, an input, a noise
// or an output buffer of one step holds B times its role's size, slot i as [B, dims...] at
// B * slot.offset.
#pragma once

#include <cstdint>
#include <vector>

#include "pipeline/StepKernel.h"

namespace cellc::runtime {

template <class T>
struct Sequence {
  int64_t batch = 1;
  std::vector<T> params;                // [paramSize]
  std::vector<T> initialState;          // [stateSize * batch]
  std::vector<std::vector<T>> inputs;   // [T][inputSize * batch]; its length is the step count T
  std::vector<std::vector<T>> noise;    // [T][noiseSize * batch], or empty: defaults (0; 1 for dropout)

  int64_t steps() const { return static_cast<int64_t>(inputs.size()); }
};

template <class T>
struct Trajectory {
  std::vector<std::vector<T>> states;   // [T + 1]: states[0] the initial state, states[t + 1] after step t
  std::vector<std::vector<T>> tapes;    // [T][tapeSize(batch)]
  std::vector<std::vector<T>> outputs;  // [T][outputSize * batch]

  const std::vector<T>& finalState() const { return states.back(); }
};

template <class T>
struct SequenceGradients {
  std::vector<T> dParams;               // [paramSize], summed over the steps and the batch
  std::vector<std::vector<T>> dInputs;  // [T][inputSize * batch]
  std::vector<T> dInitialState;         // [stateSize * batch]
};

// Runs the T steps. Throws std::invalid_argument when a buffer has the wrong size.
template <class T>
Trajectory<T> forwardSequence(StepKernel<T>& kernel, const Sequence<T>& seq);

// The gradient of a loss whose adjoints are dOutputs[t] (d loss / d output_t, [T][outputSize *
// batch]) and dFinalState (d loss / d state_T), through the trajectory forwardSequence returned.
template <class T>
SequenceGradients<T> backwardSequence(StepKernel<T>& kernel, const Sequence<T>& seq,
                                      const Trajectory<T>& traj,
                                      const std::vector<std::vector<T>>& dOutputs,
                                      const std::vector<T>& dFinalState);

extern template Trajectory<float> forwardSequence(StepKernel<float>&, const Sequence<float>&);
extern template Trajectory<double> forwardSequence(StepKernel<double>&, const Sequence<double>&);
extern template SequenceGradients<float> backwardSequence(
    StepKernel<float>&, const Sequence<float>&, const Trajectory<float>&,
    const std::vector<std::vector<float>>&, const std::vector<float>&);
extern template SequenceGradients<double> backwardSequence(
    StepKernel<double>&, const Sequence<double>&, const Trajectory<double>&,
    const std::vector<std::vector<double>>&, const std::vector<double>&);

}  // namespace cellc::runtime
