#include "analysis/Trace.h"

#include "tasks/Tasks.h"

namespace cellc::runtime {

Trace traceTrials(const Model& m, const std::vector<double>& params, TrialBatch trials) {
  Trace tr;
  tr.trials = std::move(trials);
  Bptt<float> bptt(*m.kernel, tr.trials.batch, tr.trials.steps, tr.trials.steps);
  bptt.forward(std::vector<float>(params.begin(), params.end()), tr.trials, {}, {}, tr.outputs,
               nullptr, &tr.states);
  return tr;
}

namespace {

// Joins single trials into one batch (inputs and targets are [B, size] per step).
TrialBatch join(const std::vector<TrialBatch>& parts) {
  TrialBatch b;
  b.batch = static_cast<int64_t>(parts.size());
  b.steps = parts.front().steps;
  b.inputs.assign(b.steps, {});
  b.targets.assign(b.steps, {});
  for (int64_t t = 0; t < b.steps; ++t)
    for (const TrialBatch& p : parts) {
      b.inputs[t].insert(b.inputs[t].end(), p.inputs[t].begin(), p.inputs[t].end());
      b.targets[t].insert(b.targets[t].end(), p.targets[t].begin(), p.targets[t].end());
    }
  return b;
}

}  // namespace

TrialBatch exampleTrials(const Task& task, int64_t count, double onset, uint64_t seed) {
  if (auto* multi = dynamic_cast<const MultiSequenceTask*>(&task)) {
    std::vector<TrialBatch> parts;
    for (int64_t k = 0; k < multi->spec().tasks; ++k) parts.push_back(multi->trial(k, onset));
    return join(parts);
  }
  if (auto* seq = dynamic_cast<const SequenceTask*>(&task)) return seq->trial(onset);
  std::mt19937_64 rng(seed);
  return task.sample(count, rng);
}

}  // namespace cellc::runtime
