// The perceptual-decision task (tasks/PerceptualDecision.h): its epochs, evidence and targets,
// its coherence and choice draws, and its ideal observer against a simulated one.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "tasks/PerceptualDecision.h"

using namespace cellc::runtime;

TEST_CASE("perceptual decision: epochs, evidence and targets of a noiseless trial", "[tasks][classify]") {
  PerceptualDecisionSpec s;  // dt 10: fixation 10 steps, stimulus 80, decision 30
  PerceptualDecisionTask task(s);
  REQUIRE(task.steps() == 120);
  TrialBatch b = task.make({0.08, 0.16}, {1, 0}, nullptr);
  REQUIRE(b.batch == 2);
  REQUIRE(b.steps == 120);
  for (int64_t t = 0; t < 120; ++t) {
    INFO("step " << t);
    const bool stim = t >= 10 && t < 90, decision = t >= 90;
    // Trial 0 chooses 1 at coherence 8 %, trial 1 chooses 0 at 16 %.
    CHECK(b.inputs[t][0] == Approx(0.2 + (stim ? 0.46 : 0)));
    CHECK(b.inputs[t][1] == Approx(0.2 + (stim ? 0.54 : 0)));
    CHECK(b.inputs[t][2] == Approx(0.2 + (stim ? 0.58 : 0)));
    CHECK(b.inputs[t][3] == Approx(0.2 + (stim ? 0.42 : 0)));
    CHECK(b.targets[t] == (decision ? std::vector<double>{0, 1, 1, 0} : std::vector<double>{0, 0, 0, 0}));
  }
  CHECK(task.loss().kind == LossKind::CrossEntropy);
}

TEST_CASE("perceptual decision: draws cover every coherence and both choices evenly", "[tasks][classify]") {
  PerceptualDecisionSpec s;
  s.coherences = {5, 50};
  s.in.sigmaIn = 0;  // noiseless: the coherence can be read back from the inputs
  PerceptualDecisionTask task(s);
  std::mt19937_64 rng(9);
  const int64_t B = 4000;
  TrialBatch b = task.sample(B, rng);
  int64_t right = 0, strong = 0;
  for (int64_t k = 0; k < B; ++k) {
    const double diff = b.inputs[50][2 * k + 1] - b.inputs[50][2 * k];
    const bool choice1 = b.targets[119][2 * k + 1] == 1;
    CHECK((diff > 0) == choice1);  // the target is the stronger input
    CHECK((std::fabs(std::fabs(diff) - 0.05) < 1e-12 || std::fabs(std::fabs(diff) - 0.5) < 1e-12));
    right += choice1, strong += std::fabs(diff) > 0.1;
  }
  CHECK(std::fabs(static_cast<double>(right) / B - 0.5) < 0.03);   // 4 standard deviations
  CHECK(std::fabs(static_cast<double>(strong) / B - 0.5) < 0.03);
}

TEST_CASE("perceptual decision: the ideal observer's accuracy matches a simulated one", "[tasks][classify]") {
  // The observer sums input 1 - input 0 over the stimulus epoch and chooses its sign. Baseline 1
  // keeps relu from clipping, where the closed form is exact.
  PerceptualDecisionSpec s;
  s.in.baseline = 1;
  s.coherences = {2};
  PerceptualDecisionTask task(s);
  std::mt19937_64 rng(4);
  const int64_t B = 20000;
  TrialBatch b = task.sample(B, rng);
  int64_t correct = 0;
  for (int64_t k = 0; k < B; ++k) {
    double sum = 0;
    for (int64_t t = 10; t < 90; ++t) sum += b.inputs[t][2 * k + 1] - b.inputs[t][2 * k];
    correct += (sum > 0) == (b.targets[119][2 * k + 1] == 1);
  }
  const double p = task.idealAccuracy(0.02), sim = static_cast<double>(correct) / B;
  INFO("closed form " << p << ", simulated " << sim);
  CHECK(p == Approx(0.6114).epsilon(1e-3));  // Phi(0.02 sqrt(40) / (sqrt(20) 0.1))
  CHECK(std::fabs(sim - p) < 4 * std::sqrt(p * (1 - p) / B));
  CHECK(task.idealAccuracy() == Approx(p));  // one coherence: its accuracy
}
