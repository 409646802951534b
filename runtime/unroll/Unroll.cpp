#include "unroll/Unroll.h"

#include <stdexcept>
#include <string>

namespace cellc::runtime {

namespace {

template <class V>
void checkSize(const V& v, int64_t expected, const std::string& what) {
  if (static_cast<int64_t>(v.size()) != expected)
    throw std::invalid_argument(what + " has " + std::to_string(v.size()) + " elements, expected " +
                                std::to_string(expected));
}

template <class T>
void checkSequence(const StepKernel<T>& kernel, const Sequence<T>& seq) {
  const ir::Layout& L = kernel.layout();
  const int64_t B = seq.batch;
  if (B < 1) throw std::invalid_argument("batch size " + std::to_string(B));
  checkSize(seq.params, L.paramSize, "params");
  checkSize(seq.initialState, L.stateSize * B, "initial state");
  for (size_t t = 0; t < seq.inputs.size(); ++t)
    checkSize(seq.inputs[t], L.inputSize * B, "inputs of step " + std::to_string(t));
  if (!seq.noise.empty()) {
    checkSize(seq.noise, seq.steps(), "noise (steps)");
    for (size_t t = 0; t < seq.noise.size(); ++t)
      checkSize(seq.noise[t], L.noiseSize * B, "noise of step " + std::to_string(t));
  }
}

}  // namespace

template <class T>
Trajectory<T> forwardSequence(StepKernel<T>& kernel, const Sequence<T>& seq) {
  checkSequence(kernel, seq);
  const ir::Layout& L = kernel.layout();
  const int64_t B = seq.batch, steps = seq.steps();
  const std::vector<T> defaultNoise = L.defaultNoise<T>(B);  // 0, or 1 for dropout masks

  // The sequence-invariant part once (StepKernel's hoisting protocol), not at every step.
  std::vector<T> hoisted(static_cast<size_t>(kernel.traits().hoistedSize));
  kernel.run(Stage::Prologue, {.params = seq.params.data(), .hoisted = hoisted.data()});
  Trajectory<T> traj;
  traj.states.push_back(seq.initialState);
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<T> next(static_cast<size_t>(L.stateSize * B));
    std::vector<T> out(static_cast<size_t>(L.outputSize * B));
    std::vector<T> tape(static_cast<size_t>(kernel.tapeSize(B)));
    const std::vector<T>& noise = seq.noise.empty() ? defaultNoise : seq.noise[t];
    kernel.run(Stage::ForwardHoisted, {.params = seq.params.data(),
                                       .hoisted = hoisted.data(),
                                       .state = traj.states[t].data(),
                                       .input = seq.inputs[t].data(),
                                       .noise = noise.data(),
                                       .tape = tape.data(),
                                       .stateNext = next.data(),
                                       .output = out.data(),
                                       .batch = B});
    traj.states.push_back(std::move(next));
    traj.outputs.push_back(std::move(out));
    traj.tapes.push_back(std::move(tape));
  }
  return traj;
}

template <class T>
SequenceGradients<T> backwardSequence(StepKernel<T>& kernel, const Sequence<T>& seq,
                                      const Trajectory<T>& traj,
                                      const std::vector<std::vector<T>>& dOutputs,
                                      const std::vector<T>& dFinalState) {
  checkSequence(kernel, seq);
  const ir::Layout& L = kernel.layout();
  const int64_t B = seq.batch, steps = seq.steps();
  checkSize(traj.states, steps + 1, "trajectory states");
  checkSize(traj.tapes, steps, "trajectory tapes");
  checkSize(dOutputs, steps, "output adjoints (steps)");
  for (int64_t t = 0; t < steps; ++t)
    checkSize(dOutputs[t], L.outputSize * B, "output adjoints of step " + std::to_string(t));
  checkSize(dFinalState, L.stateSize * B, "final state adjoint");
  const std::vector<T> defaultNoise = L.defaultNoise<T>(B);  // 0, or 1 for dropout masks

  SequenceGradients<T> grads;
  grads.dParams.assign(static_cast<size_t>(L.paramSize), T(0));
  grads.dInputs.assign(static_cast<size_t>(steps), std::vector<T>(static_cast<size_t>(L.inputSize * B)));
  std::vector<T> dNext = dFinalState;  // adjoint of the state after step t
  std::vector<T> dState(static_cast<size_t>(L.stateSize * B));
  std::vector<T> hoisted(static_cast<size_t>(kernel.traits().hoistedSize)),
      dHoisted(hoisted.size(), T(0));
  kernel.run(Stage::Prologue, {.params = seq.params.data(), .hoisted = hoisted.data()});
  for (int64_t t = steps - 1; t >= 0; --t) {
    const std::vector<T>& noise = seq.noise.empty() ? defaultNoise : seq.noise[t];
    kernel.run(Stage::BackwardHoisted, {.params = seq.params.data(),
                                        .hoisted = hoisted.data(),
                                        .state = traj.states[t].data(),
                                        .input = seq.inputs[t].data(),
                                        .noise = noise.data(),
                                        .tape = const_cast<T*>(traj.tapes[t].data()),
                                        .dStateNext = dNext.data(),
                                        .dOutput = dOutputs[t].data(),
                                        .dState = dState.data(),
                                        .dInput = grads.dInputs[t].data(),
                                        .dParams = grads.dParams.data(),
                                        .dHoisted = dHoisted.data(),
                                        .batch = B});
    dNext.swap(dState);
  }
  // The invariant part's adjoint, summed over the steps, flows back to the params once.
  kernel.run(Stage::Epilogue, {.params = seq.params.data(),
                               .hoisted = hoisted.data(),
                               .dParams = grads.dParams.data(),
                               .dHoisted = dHoisted.data()});
  grads.dInitialState = std::move(dNext);
  return grads;
}

template Trajectory<float> forwardSequence(StepKernel<float>&, const Sequence<float>&);
template Trajectory<double> forwardSequence(StepKernel<double>&, const Sequence<double>&);
template SequenceGradients<float> backwardSequence(StepKernel<float>&, const Sequence<float>&,
                                                   const Trajectory<float>&,
                                                   const std::vector<std::vector<float>>&,
                                                   const std::vector<float>&);
template SequenceGradients<double> backwardSequence(StepKernel<double>&, const Sequence<double>&,
                                                    const Trajectory<double>&,
                                                    const std::vector<std::vector<double>>&,
                                                    const std::vector<double>&);

}  // namespace cellc::runtime
