#include "experiment/TestStage.h"

#include "train/Bptt.h"
#include "train/NoiseDraw.h"

namespace cellc::runtime {

uint64_t testSeed(uint64_t experimentSeed, size_t task) { return experimentSeed * 1000003 + task; }

std::mt19937_64 testStream(uint64_t seed) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), 0x7e57U};
  return std::mt19937_64(seq);
}

TestResult testOnFreshTrials(StepKernel<float>& kernel, const Task& task,
                             const std::vector<double>& params, int64_t trials, uint64_t seed,
                             bool noise, int64_t chunk) {
  const ir::Layout& L = kernel.layout();
  std::mt19937_64 rng = testStream(seed);
  std::vector<float> p(params.begin(), params.end());
  TestResult r;
  double sumLoss = 0, sumChance = 0;
  Accuracy choices;
  for (int64_t done = 0; done < trials;) {
    if (Trainer::interruptFlag()) throw Interrupted("interrupted during the test stage");
    const int64_t B = std::min(chunk, trials - done);
    TrialBatch b = task.sample(B, rng);
    // Normal noise as in training; dropout masks keep every unit (testing is evaluation).
    std::vector<std::vector<float>> noiseBuf = drawNoise<float>(L, B, b.steps, noise ? &rng : nullptr, {}, nullptr);
    Bptt<float> bptt(kernel, B, b.steps, 0);
    std::vector<std::vector<float>> outs;
    bptt.forward(p, b, noiseBuf, {}, outs);
    std::vector<std::vector<double>> out64, zeros;
    for (auto& o : outs) {
      out64.emplace_back(o.begin(), o.end());
      zeros.emplace_back(o.size(), 0.0);
    }
    // Each chunk's loss is a mean over its trials: weight it by their number.
    sumLoss += lossValue(task.loss(), L, b, out64) * static_cast<double>(B);
    sumChance += lossValue(task.loss(), L, b, zeros) * static_cast<double>(B);
    choices.add(accuracyOf(task.loss(), L, b, out64));
    done += B;
  }
  r.classification = isClassification(task.loss().kind);
  r.accuracy = choices.value();
  r.chanceAccuracy = choices.chance();
  r.idealAccuracy = task.idealAccuracy();
  r.trials = trials;
  r.loss = sumLoss / static_cast<double>(trials);
  r.chanceLoss = sumChance / static_cast<double>(trials);
  return r;
}

}  // namespace cellc::runtime
