#include "tasks/Tasks.h"

#include "random/Normals.h"

#include <cmath>
#include <numbers>

namespace cellc::runtime {

namespace {

double gaussian(double t, double center, double width) {
  double d = t - center;
  return std::exp(-d * d / (2 * width * width));
}

TrialBatch emptyBatch(int64_t batch, int64_t steps, int64_t inputs, int64_t outputs) {
  TrialBatch b;
  b.batch = batch;
  b.steps = steps;
  b.inputs.assign(steps, std::vector<double>(inputs * batch, 0.0));
  b.targets.assign(steps, std::vector<double>(outputs * batch, 0.0));
  return b;
}

// u = relu(baseline + X + noise): the one input of the pycog tasks.
double pycogInput(const PycogInput& in, double x, std::mt19937_64* noise) {
  double xi = 0;
  if (noise) xi = std::normal_distribution<double>(0, 1)(*noise);
  return std::max(0.0, in.baseline + x + in.noiseScale() * xi);
}

}  // namespace

double SequenceTask::input(double t, double onset) const {
  if (t <= onset) return 0;
  double dt = t - onset;
  double envelope = s_.inputAmp * std::exp(s_.inputSign * dt / s_.inputDecay);
  if (s_.period > 0) envelope *= 2 + std::sin(2 * std::numbers::pi * dt / s_.period);
  return envelope;
}

double SequenceTask::target(int64_t i, double t, double onset) const {
  int64_t slot = s_.reverse ? s_.outputs - 1 - i : i;
  return s_.height * gaussian(t, onset + s_.offset + s_.spacing * static_cast<double>(slot), s_.width);
}

TrialBatch SequenceTask::make(const std::vector<double>& onsets, std::mt19937_64* noise) const {
  const int64_t B = static_cast<int64_t>(onsets.size()), T = steps(), n = s_.outputs;
  TrialBatch b = emptyBatch(B, T, 1, n);
  for (int64_t t = 0; t < T; ++t) {
    double time = static_cast<double>(t) * s_.in.dt;
    for (int64_t k = 0; k < B; ++k) {
      b.inputs[t][k] = pycogInput(s_.in, input(time, onsets[k]), noise);
      for (int64_t i = 0; i < n; ++i) b.targets[t][k * n + i] = target(i, time, onsets[k]);
    }
  }
  return b;
}

TrialBatch SequenceTask::sample(int64_t batch, std::mt19937_64& rng) const {
  std::uniform_real_distribution<double> onset(s_.in.onsetMin, s_.in.onsetMax);
  std::vector<double> onsets(batch);
  for (double& o : onsets) o = onset(rng);
  return make(onsets, &rng);
}

TrialBatch SequenceTask::trial(double onset) const { return make({onset}, nullptr); }

TrialBatch MultiSequenceTask::make(const std::vector<int64_t>& tasks,
                                   const std::vector<double>& onsets, std::mt19937_64* noise) const {
  const int64_t B = static_cast<int64_t>(onsets.size()), T = steps();
  const int64_t n = s_.tasks * s_.perTask;
  TrialBatch b = emptyBatch(B, T, 1, n);
  for (int64_t t = 0; t < T; ++t) {
    double time = static_cast<double>(t) * s_.in.dt;
    for (int64_t k = 0; k < B; ++k) {
      double since = time - onsets[k];
      double x = since >= 0 ? 2.0 * static_cast<double>(tasks[k] + 1) * std::exp(-since / s_.inputDecay) : 0;
      b.inputs[t][k] = pycogInput(s_.in, x, noise);
      for (int64_t i = 0; i < s_.perTask; ++i)
        b.targets[t][k * n + tasks[k] * s_.perTask + i] =
            s_.height * gaussian(time, onsets[k] + s_.offset + s_.spacing * static_cast<double>(i), s_.width);
    }
  }
  return b;
}

TrialBatch MultiSequenceTask::sample(int64_t batch, std::mt19937_64& rng) const {
  std::uniform_real_distribution<double> onset(s_.in.onsetMin, s_.in.onsetMax);
  std::uniform_int_distribution<int64_t> task(0, s_.tasks - 1);
  std::vector<double> onsets(batch);
  std::vector<int64_t> tasks(batch);
  for (int64_t k = 0; k < batch; ++k) tasks[k] = task(rng), onsets[k] = onset(rng);
  return make(tasks, onsets, &rng);
}

TrialBatch MultiSequenceTask::trial(int64_t task, double onset) const {
  return make({task}, {onset}, nullptr);
}

TrialBatch CopyFirstTask::sample(int64_t batch, std::mt19937_64& rng) const {
  const int64_t T = s_.steps, D = s_.dim;
  TrialBatch b;
  b.batch = batch, b.steps = T;
  b.inputs.resize(T);
  std::vector<double*> steps(T);
  for (int64_t t = 0; t < T; ++t) {
    b.inputs[t].resize(D * batch);
    steps[t] = b.inputs[t].data();
  }
  fillNormals(rng, steps, static_cast<size_t>(D * batch));  // one job for all T steps
  // The target is the first input, asked for at the end; the loss reads no other step, so the
  // other steps' targets stay empty (at T = 300, D = 32, B = 128 a full set is 10 MB a step).
  b.targets.resize(T);
  b.targets[T - 1] = b.inputs[0];
  return b;
}

}  // namespace cellc::runtime
