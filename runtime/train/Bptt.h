// Backpropagation through time with bounded memory, for any compiled cell.
//
// Memory: storing every step's state and tape costs T * (state + tape); for a plastic cell's
// [B, n, n] trace that is prohibitive (PBRC n = 256, B = 64, T = 500: 8.4 GB per copy). Instead the
// forward keeps only the states at segment boundaries (every K steps); the backward recomputes
// one segment's states and tapes at a time from its boundary and walks it in reverse. Memory is
// (T / K) * state + K * (state + tape + output); K defaults to the value that minimizes it,
// about sqrt(T * state / (state + tape)), and the cost is one extra forward pass.
//
// Dropout on recurrent units is generic: a mask multiplies the chosen state slots before each step
// (inverted dropout: kept units scaled by 1 / (1 - p)); the backward multiplies their adjoints by
// the same mask.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/StepKernel.h"

namespace cellc::runtime {

// A batch of trials: one input buffer per step (the layout's input buffer, [B, ...] per slot),
// targets and masks for one output slot.
struct TrialBatch {
  int64_t batch = 0;
  int64_t steps = 0;
  std::vector<std::vector<double>> inputs;   // [T][inputSize * B]
  std::vector<std::vector<double>> targets;  // [T][outputDim * B] (MseLast: only the last used)
  std::vector<std::vector<double>> masks;    // [T][outputDim * B], or empty: all ones
};

enum class LossKind {
  Mse,      // sum over t, b, i of mask (y - target)^2 / sum of mask (pycog's masked MSE)
  MseLast,  // mean over b, i of (y_T - target_T)^2 at the last step only (copy-first)
};

struct LossSpec {
  LossKind kind = LossKind::Mse;
  int outputSlot = 0;
};

struct DropoutSpec {
  double p = 0;                  // probability of dropping a unit; 0: off
  bool perStep = false;          // a new mask every step (default: one mask per trial)
  std::vector<int> stateSlots;   // which states get the mask; empty: every rank-1 state
};

// pycog's vanishing-gradient regularizer (Pascanu, Mikolov & Bengio 2013): with v = dE/dx_{t+1}
// and w = v^T dx_{t+1}/dx_t for one state x, Omega = (1 / (T B)) sum_t sum_b (|w|^2 / |v|^2 - 1)^2,
// added to the loss with weight lambda; its gradient holds v and x constant, as pycog's does. It
// keeps gradients from vanishing over long delays. The kernel must carry the Omega function
// (compileCell(ir, true)).
struct OmegaSpec {
  double lambda = 0;  // 0: off
  int stateSlot = 0;
};

template <class T>
struct BpttResult {
  double loss = 0;   // including lambda * Omega
  double omega = 0;  // Omega itself
  std::vector<double> dParams;   // including initial states that come from params
  std::vector<std::vector<T>> outputs;  // [T][outputSize * B], when asked for
  int64_t segment = 0;           // the segment length used
  int64_t peakBytes = 0;         // bytes held for states, tapes and outputs at the peak
};

template <class T>
class Bptt {
 public:
  // segment 0: choose it to minimize memory.
  Bptt(StepKernel<T>& kernel, int64_t batch, int64_t steps, int64_t segment = 0);

  // The state at t = 0 for these params: each state's number, or its param broadcast over the
  // batch.
  std::vector<T> initialState(const std::vector<T>& params) const;

  // Forward only (validation, analysis): outputs of every step and the final state; `states`,
  // when given, receives the state after every step ([T][stateSize * B]).
  void forward(const std::vector<T>& params, const TrialBatch& batch,
               const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
               std::vector<std::vector<T>>& outputs, std::vector<T>* finalState = nullptr,
               std::vector<std::vector<T>>* states = nullptr);

  // Loss and its gradient w.r.t. the params. noise: [T][noiseSize * B] or empty (zeros); masks:
  // dropout masks over the state buffer, none, one (per trial) or T (per step).
  BpttResult<T> lossAndGradient(const std::vector<T>& params, const TrialBatch& batch,
                                const LossSpec& loss, const std::vector<std::vector<T>>& noise,
                                const std::vector<std::vector<T>>& masks, bool keepOutputs = false);

  void setOmega(const OmegaSpec& o) { omega_ = o; }
  int64_t segment() const { return segment_; }
  int64_t batch() const { return batch_; }
  int64_t steps() const { return steps_; }
  StepKernel<T>& kernel() { return kernel_; }

 private:
  void step(const std::vector<T>& params, const std::vector<T>& state, const TrialBatch& b,
            const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
            int64_t t, std::vector<T>& next, std::vector<T>& output, T* tape, std::vector<T>& in);
  const T* maskAt(const std::vector<std::vector<T>>& masks, int64_t t) const;

  // Adds lambda * Omega's term of step t to res and dParams; v is the adjoint of state t + 1.
  void omegaStep(const std::vector<T>& params, const std::vector<T>& in, const T* noise,
                 const T* tape, const std::vector<T>& v, std::vector<T>& dParams,
                 BpttResult<T>& res);

  StepKernel<T>& kernel_;
  int64_t batch_, steps_, segment_;
  OmegaSpec omega_;
  std::vector<T> zerosNoise_, inputBuf_;
};

// Dropout masks over a state buffer: 1 for units kept and slots not masked, 0 for dropped units
// scaled so that kept ones are 1 / (1 - p). One mask, or one per step.
template <class T>
std::vector<std::vector<T>> dropoutMasks(const ir::Layout& layout, const DropoutSpec& spec,
                                         int64_t batch, int64_t steps,
                                         const std::function<double()>& uniform01);

// The loss of outputs against a batch's targets, and optionally its adjoint for one step.
double lossValue(const LossSpec& spec, const ir::Layout& layout, const TrialBatch& b,
                 const std::vector<std::vector<double>>& outputs);

}  // namespace cellc::runtime
