// A perceptual decision: the random-dots discrimination of Song, Yang & Wang (2016, and its pycog
// code), trained as a classification (train/Loss.h's cross_entropy).
//
// Two inputs carry noisy evidence for two choices: during the stimulus epoch input `choice` is
// (1 + c) / 2 and the other (1 - c) / 2, c the coherence (a fraction: task.coherences are in
// percent), so their difference is c; at every step both get pycog's input, relu(baseline + X +
// sqrt(2 tau_in / dt) sigma_in xi). Epochs: fixation (no evidence, no target), stimulus
// (evidence, no target), decision (no evidence; the target is the choice, one-hot over the two
// outputs, read as logits). Each trial draws its coherence from the list and its choice evenly.
//
// The ideal observer sums the input difference over the stimulus epoch's K steps: its evidence
// has mean c K and standard deviation sqrt(2 K) s (s the per-step noise scale), so it chooses right
// with probability Phi(c sqrt(K / 2) / s) (clipping at 0 aside, which needs baseline + X < 3 s).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tasks/Tasks.h"

namespace cellc::runtime {

struct PerceptualDecisionSpec {
  PycogInput in{10, 0.2, 100, 0.1, 1200, 0, 0};  // dt, baseline, tau_in, sigma_in; duration unused
  double fixation = 100, stimulus = 800, decision = 300;  // epochs (ms)
  std::vector<double> coherences = {1, 2, 4, 8, 16};      // percent

  int64_t fixationSteps() const { return stepsOf(fixation); }
  int64_t stimulusSteps() const { return stepsOf(fixation + stimulus) - fixationSteps(); }
  int64_t steps() const { return stepsOf(fixation + stimulus + decision); }
  int64_t stepsOf(double ms) const { return static_cast<int64_t>(ms / in.dt + 0.5); }
};

class PerceptualDecisionTask : public Task {
 public:
  explicit PerceptualDecisionTask(PerceptualDecisionSpec s) : s_(std::move(s)) {}
  int64_t steps() const override { return s_.steps(); }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override;
  LossSpec loss() const override { return {LossKind::CrossEntropy, 0}; }
  int64_t inputDim() const override { return 2; }
  int64_t outputDim() const override { return 2; }
  const PerceptualDecisionSpec& spec() const { return s_; }

  // Trials with these coherences (fractions) and choices (0 or 1); noise: draw input noise.
  TrialBatch make(const std::vector<double>& coherence, const std::vector<int>& choice,
                  std::mt19937_64* noise) const;
  // The ideal observer's accuracy at coherence c (a fraction), and averaged over the list.
  double idealAccuracy(double c) const;
  double idealAccuracy() const override;

 private:
  PerceptualDecisionSpec s_;
};

}  // namespace cellc::runtime
