// Joint training of two tasks by rehearsal (train.rehearse): every batch is this phase's trials
// followed by an earlier phase's, half and half (the first ceil(B / 2) trials from the phase's
// own task). E3's upper reference: a network that keeps seeing task 1 while it learns task 2
// bounds what any consolidation (EWC) could keep.
#pragma once

#include <string>

#include "train/Trainer.h"

namespace cellc::runtime {

class RehearsalTask : public Task {
 public:
  // Both tasks must outlive this one. Throws std::invalid_argument when they differ in steps,
  // input or target size per trial, or loss (what the message says).
  RehearsalTask(const Task& own, const Task& earlier);

  int64_t steps() const override { return own_.steps(); }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override;
  LossSpec loss() const override { return own_.loss(); }
  int64_t inputDim() const override { return own_.inputDim(); }
  int64_t outputDim() const override { return own_.outputDim(); }

 private:
  const Task& own_;
  const Task& earlier_;
};

}  // namespace cellc::runtime
