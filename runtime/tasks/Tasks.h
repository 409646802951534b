// The tasks of the experiments (../shared/EXPERIMENTS.md), as generators of (input, target, mask)
// batches. Times are in ms; a trial of duration T at step dt has T / dt steps, step k at time k dt.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "train/Trainer.h"

namespace cellc::runtime {

// pycog's input: u = relu(baseline + X(t) + sqrt(2 tau_in / dt) sigma_in xi), xi ~ N(0, 1).
struct PycogInput {
  double dt = 10;
  double baseline = 0.2;
  double tauIn = 100;
  double sigmaIn = 0.01;
  double duration = 1000;  // T
  double onsetMin = 100, onsetMax = 200;  // t_s ~ U(onsetMin, onsetMax)

  int64_t steps() const { return static_cast<int64_t>(duration / dt + 0.5); }
  double noiseScale() const { return std::sqrt(2 * tauIn / dt) * sigmaIn; }
};

// E1: one input X(t) = amp exp(-(t - t_s) / decay) for t > t_s; outputs i = 0..n-1 are Gaussian
// bumps height * exp(-(t - t_s - (offset + spacing i))^2 / (2 width^2)).
// Case i: 10 outputs, spacing 80, offset 80, width 20, height 12. Case ii: 100 outputs, spacing 8.
struct SequenceSpec {
  PycogInput in;
  double inputAmp = 4, inputDecay = 800;
  int64_t outputs = 10;
  double height = 12, offset = 80, spacing = 80, width = 20;
  bool reverse = false;  // output i peaks where output n-1-i would (E3's task 2)
  // E3: X(t) = amp exp(sign (t - t_s) / decay) (2 + sin(2 pi (t - t_s) / period)); period 0 = off
  double inputSign = -1;
  double period = 0;
};

class SequenceTask : public Task {
 public:
  explicit SequenceTask(SequenceSpec s) : s_(s) {}
  int64_t steps() const override { return s_.in.steps(); }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override;
  int64_t inputDim() const override { return 1; }
  int64_t outputDim() const override { return s_.outputs; }
  // One trial with a given onset and no input noise (the analyses use it).
  TrialBatch trial(double onset) const;
  const SequenceSpec& spec() const { return s_; }
  double input(double t, double onset) const;   // X(t)
  double target(int64_t i, double t, double onset) const;

 private:
  TrialBatch make(const std::vector<double>& onsets, std::mt19937_64* noise) const;
  SequenceSpec s_;
};

// E2: K sequences. Task k ~ U{0..K-1}: X(t) = 2 (k + 1) exp(-(t - t_s) / 400) for t >= t_s; 5K
// outputs; outputs 5k + i (i = 0..4) follow 4 exp(-(t - t_s - 100 (i + 2))^2 / (2 100^2)), the
// others stay 0.
struct MultiSequenceSpec {
  PycogInput in{10, 0.2, 100, 0.003, 1000, 100, 200};
  int64_t tasks = 1;
  int64_t perTask = 5;
  double inputDecay = 400, height = 4, offset = 200, spacing = 100, width = 100;
};

class MultiSequenceTask : public Task {
 public:
  explicit MultiSequenceTask(MultiSequenceSpec s) : s_(s) {}
  int64_t steps() const override { return s_.in.steps(); }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override;
  int64_t inputDim() const override { return 1; }
  int64_t outputDim() const override { return s_.tasks * s_.perTask; }
  TrialBatch trial(int64_t task, double onset) const;
  const MultiSequenceSpec& spec() const { return s_; }

 private:
  TrialBatch make(const std::vector<int64_t>& tasks, const std::vector<double>& onsets,
                  std::mt19937_64* noise) const;
  MultiSequenceSpec s_;
};

// E5: copy the first input. x_t ~ N(0, I_D) for t = 1..T; the target is x_1 at the last step (the
// targets of the other steps are empty: nothing reads them).
struct CopyFirstSpec {
  int64_t steps = 300;
  int64_t dim = 1;
};

class CopyFirstTask : public Task {
 public:
  explicit CopyFirstTask(CopyFirstSpec s) : s_(s) {}
  int64_t steps() const override { return s_.steps; }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override;
  LossSpec loss() const override { return {LossKind::MseLast, 0}; }
  int64_t inputDim() const override { return s_.dim; }
  int64_t outputDim() const override { return s_.dim; }
  const CopyFirstSpec& spec() const { return s_; }

 private:
  CopyFirstSpec s_;
};

}  // namespace cellc::runtime
