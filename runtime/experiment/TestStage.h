// The test stage: after training, the loss of the trained params on N fresh trials of a task
// (E5's test MSE on 10,000 sequences), beside the chance loss of predicting zeros on the same
// trials; for a classification loss also the accuracy of the choices, beside chance accuracy. With several phases, every phase's task is tested after every phase: the forgetting
// matrix of a continual-learning run (E3).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "train/Trainer.h"

namespace cellc::runtime {

struct TestResult {
  int64_t trials = 0;
  double loss = 0;        // the task's loss, averaged over the trials
  double chanceLoss = 0;  // the same loss for outputs that are all zero (cross-entropy: log K)
  // A classification loss (train/Loss.h): the share of choices that were right, and the share
  // the best constant guess gets on the same trials (the largest class's share).
  bool classification = false;
  double accuracy = 0, chanceAccuracy = 0;
  double idealAccuracy = 0;  // the task's ideal observer (Task::idealAccuracy), NaN when unknown
};

// The seed of phase `task`'s test trials in an experiment seeded `experimentSeed`, and the stream
// it starts: the test stage draws from it, and an analysis that wants the same trials does too.
uint64_t testSeed(uint64_t experimentSeed, size_t task);
std::mt19937_64 testStream(uint64_t seed);

// Tests `params` on `trials` fresh trials of `task` drawn from a stream seeded by `seed` (the same
// trials for any params), in chunks of at most `chunk` trials. noise: draw the cell's noise.
TestResult testOnFreshTrials(StepKernel<float>& kernel, const Task& task,
                             const std::vector<double>& params, int64_t trials, uint64_t seed,
                             bool noise, int64_t chunk = 500);

}  // namespace cellc::runtime
