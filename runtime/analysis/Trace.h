// Running the trained model over trials and keeping every step: the shared first step of the
// analyses that look at activity (E/I rates, readout activity, state traces).
#pragma once

#include <cstdint>
#include <vector>

#include "experiment/Model.h"
#include "train/Bptt.h"
#include "train/Trainer.h"

namespace cellc::runtime {

struct Trace {
  TrialBatch trials;
  std::vector<std::vector<float>> outputs;  // [T][outputSize * B]
  std::vector<std::vector<float>> states;   // [T][stateSize * B], the state after each step
};

// The model's forward over `trials` (no noise, no dropout), every step kept.
Trace traceTrials(const Model& m, const std::vector<double>& params, TrialBatch trials);

// Fixed example trials of a task without input noise: one per sequence of a multi-sequence task
// (onset `onset`), one of a sequence task, else `count` trials drawn with `seed`.
TrialBatch exampleTrials(const Task& task, int64_t count, double onset, uint64_t seed);

// Values of one slot of a batched buffer ([B, size] at B * slot.offset): element i of trial b.
inline float slotValue(const std::vector<float>& buf, const ir::Slot& s, int64_t batch, int64_t b,
                       int64_t i) {
  return buf[batch * s.offset + b * s.size + i];
}

}  // namespace cellc::runtime
