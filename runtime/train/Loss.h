// The losses BPTT differentiates and the test stage reports, each defined here once: its value per
// step, its adjoint with respect to the output, its denominator, and (for the classification
// losses) the accuracy of the choices it scores.
//
//   mse                 sum_{t,b,i} m (y - target)^2 / sum m          (pycog's masked MSE)
//   mse_last            sum_{b,i} (y_T - target_T)^2 / (B units)      (copy-first)
//   cross_entropy       sum_{t,b,i} w (-log softmax(y)_i) / sum w,   w = m target
//   cross_entropy_last  the same at the last step only (m = 1)
//
// Cross-entropy reads the output as logits over its units and the target as one-hot (or any
// class weights) per step and trial: a step whose target is all zero (a fixation period) has no
// term. Its adjoint is (softmax(y) sum_i w_i - w) / sum w, from logits shifted by their max.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/Step.h"

namespace cellc::runtime {

// A batch of trials: one input buffer per step (the layout's input buffer, [B, ...] per slot),
// targets and masks for one output slot.
struct TrialBatch {
  int64_t batch = 0;
  int64_t steps = 0;
  std::vector<std::vector<double>> inputs;   // [T][inputSize * B]
  std::vector<std::vector<double>> targets;  // [T][outputDim * B] (*Last: only the last; others may be empty)
  std::vector<std::vector<double>> masks;    // [T][outputDim * B], or empty: all ones
};

enum class LossKind {
  Mse,                // masked MSE over every step
  MseLast,            // MSE at the last step only
  CrossEntropy,       // cross-entropy of softmax(output) over every step with a target
  CrossEntropyLast,   // cross-entropy at the last step only
};

const char* lossKindName(LossKind k);  // "mse", "mse_last", "cross_entropy", "cross_entropy_last"
std::optional<LossKind> parseLossKind(const std::string& name);
bool isClassification(LossKind k);  // cross-entropy: the output is logits, the target a class

struct LossSpec {
  LossKind kind = LossKind::Mse;
  int outputSlot = 0;
};

// The output the loss reads (std::invalid_argument when the cell has no such output).
const ir::Slot& lossOutput(const ir::Layout& L, const LossSpec& spec);

// Whether step t has a loss term.
bool lossAt(const LossSpec& spec, const TrialBatch& b, int64_t t);

// The loss's scale: the sum of the mask (mse), the number of terms (mse_last), the summed class
// weights (cross-entropy; 1 when there are none, so that a batch without targets scores 0).
double lossDenominator(const LossSpec& spec, const ir::Slot& out, const TrialBatch& b);

// Every step with a term has a target of the output's size (std::invalid_argument otherwise);
// cross-entropy's targets are non-negative.
void checkTargets(const ir::Slot& out, const LossSpec& spec, const TrialBatch& b);

// Step t's term of the loss, divided by denom; when adj is given, the whole output buffer's
// adjoint of that term (zero outside the loss's output).
template <class T>
double stepLoss(const LossSpec& spec, const ir::Layout& L, const TrialBatch& b, int64_t t,
                const T* output, double denom, T* adj);

// The loss of outputs ([T][outputSize * B]) against a batch's targets.
double lossValue(const LossSpec& spec, const ir::Layout& layout, const TrialBatch& b,
                 const std::vector<std::vector<double>>& outputs);

// Choices scored by a classification loss: at every step and trial with a target, the output's
// largest unit against the target's, weighted as the loss weights that term (sum_i m target_i).
// perClass: the weight of the terms whose target is each class (the best constant guess scores
// the largest: chance accuracy).
struct Accuracy {
  double correct = 0, total = 0;
  std::vector<double> perClass;
  void add(const Accuracy& o);
  double value() const { return total > 0 ? correct / total : 0; }
  double chance() const;
};

Accuracy accuracyOf(const LossSpec& spec, const ir::Layout& layout, const TrialBatch& b,
                    const std::vector<std::vector<double>>& outputs);

}  // namespace cellc::runtime
