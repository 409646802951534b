#include "tasks/PerceptualDecision.h"

#include <algorithm>
#include <cmath>

namespace cellc::runtime {

TrialBatch PerceptualDecisionTask::make(const std::vector<double>& coherence, const std::vector<int>& choice,
                                        std::mt19937_64* noise) const {
  const int64_t B = static_cast<int64_t>(coherence.size()), T = steps();
  const int64_t stimOn = s_.fixationSteps(), stimOff = stimOn + s_.stimulusSteps();
  TrialBatch b;
  b.batch = B, b.steps = T;
  b.inputs.assign(T, std::vector<double>(2 * B, 0.0));
  b.targets.assign(T, std::vector<double>(2 * B, 0.0));
  std::normal_distribution<double> normal(0, 1);
  const double scale = s_.in.noiseScale();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k)
      for (int i = 0; i < 2; ++i) {
        double x = 0;
        if (t >= stimOn && t < stimOff) x = (1 + (i == choice[k] ? 1 : -1) * coherence[k]) / 2;
        const double xi = noise ? normal(*noise) : 0;
        b.inputs[t][2 * k + i] = std::max(0.0, s_.in.baseline + x + scale * xi);
        if (t >= stimOff) b.targets[t][2 * k + i] = i == choice[k] ? 1 : 0;
      }
  return b;
}

TrialBatch PerceptualDecisionTask::sample(int64_t batch, std::mt19937_64& rng) const {
  std::uniform_int_distribution<size_t> which(0, s_.coherences.size() - 1);
  std::uniform_int_distribution<int> side(0, 1);
  std::vector<double> coherence(static_cast<size_t>(batch));
  std::vector<int> choice(static_cast<size_t>(batch));
  for (int64_t k = 0; k < batch; ++k) {
    coherence[k] = s_.coherences[which(rng)] / 100;
    choice[k] = side(rng);
  }
  return make(coherence, choice, &rng);
}

double PerceptualDecisionTask::idealAccuracy(double c) const {
  const double K = static_cast<double>(s_.stimulusSteps()), s = s_.in.noiseScale();
  if (s <= 0) return c > 0 ? 1.0 : 0.5;
  return 0.5 * std::erfc(-c * std::sqrt(K / 2) / s / std::sqrt(2.0));  // Phi(c sqrt(K / 2) / s)
}

double PerceptualDecisionTask::idealAccuracy() const {
  double sum = 0;
  for (double c : s_.coherences) sum += idealAccuracy(c / 100);
  return sum / static_cast<double>(s_.coherences.size());
}

}  // namespace cellc::runtime
