#include "tasks/Rehearsal.h"

#include <algorithm>
#include <stdexcept>

namespace cellc::runtime {

RehearsalTask::RehearsalTask(const Task& own, const Task& earlier) : own_(own), earlier_(earlier) {
  auto differ = [](const char* what, int64_t a, int64_t b) {
    throw std::invalid_argument(std::string("the two tasks differ in ") + what + " (" + std::to_string(a) +
                                " and " + std::to_string(b) + "): their trials cannot share a batch");
  };
  if (own.steps() != earlier.steps()) differ("steps per trial", own.steps(), earlier.steps());
  if (own.inputDim() != earlier.inputDim()) differ("inputs per step", own.inputDim(), earlier.inputDim());
  if (own.outputDim() != earlier.outputDim()) differ("targets per step", own.outputDim(), earlier.outputDim());
  const LossSpec a = own.loss(), b = earlier.loss();
  if (a.kind != b.kind || a.outputSlot != b.outputSlot)
    throw std::invalid_argument(std::string("the two tasks are trained with different losses (") +
                                lossKindName(a.kind) + " and " + lossKindName(b.kind) + ")");
}

namespace {

// Per step, a's buffer then b's: [B_a * d] + [B_b * d] is [(B_a + B_b) * d] trial-major. A step
// where one side has no buffer (no target there) gets `fill` for that side's trials, at the other
// side's size per trial.
void appendSteps(std::vector<std::vector<double>>& a, int64_t ba, const std::vector<std::vector<double>>& b,
                 int64_t bb, double fill) {
  if (a.empty() && b.empty()) return;
  const size_t steps = std::max(a.size(), b.size());
  a.resize(steps);
  const std::vector<double> none;
  for (size_t t = 0; t < steps; ++t) {
    const std::vector<double>& bt = t < b.size() ? b[t] : none;
    std::vector<double>& at = a[t];
    if (at.empty() && bt.empty()) continue;
    if (at.empty()) at.assign(bt.size() / bb * ba, fill);
    if (bt.empty()) {
      at.resize(at.size() + at.size() / ba * bb, fill);
    } else {
      at.insert(at.end(), bt.begin(), bt.end());
    }
  }
}

}  // namespace

TrialBatch RehearsalTask::sample(int64_t batch, std::mt19937_64& rng) const {
  const int64_t mine = (batch + 1) / 2, theirs = batch - mine;
  TrialBatch out = own_.sample(mine, rng);
  if (theirs == 0) return out;
  const TrialBatch other = earlier_.sample(theirs, rng);
  // No masks means all ones; when one side has masks, the other's are written out (one per target).
  auto masksOf = [](const TrialBatch& tb) {
    if (!tb.masks.empty()) return tb.masks;
    std::vector<std::vector<double>> m;
    for (const auto& tg : tb.targets) m.emplace_back(tg.size(), 1.0);
    return m;
  };
  // A step where only one side has targets: the other side's trials get zero targets, masked out.
  bool masked = !out.masks.empty() || !other.masks.empty();
  for (size_t t = 0; t < out.targets.size() && t < other.targets.size(); ++t)
    masked = masked || out.targets[t].empty() != other.targets[t].empty();
  std::vector<std::vector<double>> masks = masked ? masksOf(out) : std::vector<std::vector<double>>{};
  if (masked) appendSteps(masks, mine, masksOf(other), theirs, 0.0);
  appendSteps(out.inputs, mine, other.inputs, theirs, 0.0);
  appendSteps(out.targets, mine, other.targets, theirs, 0.0);
  out.masks = std::move(masks);
  out.batch = batch;
  return out;
}

}  // namespace cellc::runtime
