// Each task's batches against its formula (../shared/EXPERIMENTS.md).
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <utility>

#include "tasks/Rehearsal.h"
#include "tasks/Tasks.h"

using namespace cellc::runtime;

TEST_CASE("E1 sequence task: input, targets and their peaks", "[tasks]") {
  SequenceTask task(SequenceSpec{});
  REQUIRE(task.steps() == 100);  // T = 1000 ms at dt = 10 ms
  const double onset = 150;
  TrialBatch b = task.trial(onset);
  REQUIRE(b.inputs.size() == 100);
  REQUIRE(b.targets[0].size() == 10);
  for (int64_t t = 0; t < 100; ++t) {
    double time = 10.0 * t;
    double X = time > onset ? 4 * std::exp(-(time - onset) / 800) : 0;
    CHECK(b.inputs[t][0] == Approx(std::max(0.0, 0.2 + X)));  // no input noise in trial()
    for (int i = 0; i < 10; ++i) {
      double d = time - onset - 80 * (i + 1);
      CHECK(b.targets[t][i] == Approx(12 * std::exp(-d * d / (2 * 20 * 20))).margin(1e-12));
    }
  }
  // Sampled batches: onsets in [100, 200], input noise of sd sqrt(2 * 100 / 10) * 0.01.
  std::mt19937_64 rng(5);
  TrialBatch s = task.sample(64, rng);
  REQUIRE(s.inputs[0].size() == 64);
  double sum = 0, sq = 0;
  for (double u : s.inputs[0]) sum += u - 0.2, sq += (u - 0.2) * (u - 0.2);
  double sd = std::sqrt(sq / 64 - (sum / 64) * (sum / 64));
  CHECK(sd == Approx(std::sqrt(20.0) * 0.01).epsilon(0.3));
  for (int64_t k = 0; k < 64; ++k) {
    // Each trial's first output peaks 80 ms after an onset in [100, 200].
    int64_t peak = 0;
    for (int64_t t = 1; t < 100; ++t)
      if (s.targets[t][k * 10] > s.targets[peak][k * 10]) peak = t;
    CHECK(peak * 10 >= 170);
    CHECK(peak * 10 <= 290);
  }
}

TEST_CASE("E1 case ii: 100 outputs spaced 8 ms apart", "[tasks]") {
  SequenceSpec spec;
  spec.outputs = 100, spec.offset = 8, spec.spacing = 8;
  SequenceTask task(spec);
  TrialBatch b = task.trial(100);
  REQUIRE(b.targets[0].size() == 100);
  CHECK(task.target(99, 100 + 800, 100) == Approx(12));
}

namespace {

// E3's two tasks (experiments/forgetting.toml): a decaying modulated input, then a growing one
// with the bumps reversed.
std::pair<SequenceSpec, SequenceSpec> e3Specs() {
  SequenceSpec t1;
  t1.inputDecay = 500, t1.period = 250, t1.height = 4, t1.offset = 60, t1.spacing = 60;
  SequenceSpec t2 = t1;
  t2.inputAmp = 1, t2.inputSign = +1, t2.period = 150, t2.reverse = true;
  return {t1, t2};
}

}  // namespace

TEST_CASE("E3 tasks: the modulated inputs and the reversed targets", "[tasks]") {
  const auto [t1, t2] = e3Specs();
  SequenceTask a(t1), b(t2);
  const double ts = 120, t = 400;
  CHECK(a.input(t, ts) == Approx(4 * std::exp(-(t - ts) / 500) * (2 + std::sin(2 * std::numbers::pi * (t - ts) / 250))));
  CHECK(b.input(t, ts) == Approx(std::exp((t - ts) / 500) * (2 + std::sin(2 * std::numbers::pi * (t - ts) / 150))));
  // Task 2's output i peaks at t_s + 60 (10 - i).
  for (int i = 0; i < 10; ++i) CHECK(b.target(i, ts + 60 * (10 - i), ts) == Approx(4));
}

TEST_CASE("E2 multi-sequence task: only the chosen task's outputs move", "[tasks]") {
  MultiSequenceSpec spec;
  spec.tasks = 4;
  MultiSequenceTask task(spec);
  TrialBatch b = task.trial(2, 150);
  REQUIRE(b.targets[0].size() == 20);
  for (int64_t t = 0; t < task.steps(); ++t) {
    double time = 10.0 * t, since = time - 150;
    double X = since >= 0 ? 2 * 3 * std::exp(-since / 400) : 0;
    CHECK(b.inputs[t][0] == Approx(std::max(0.0, 0.2 + X)));
    for (int o = 0; o < 20; ++o) {
      bool mine = o / 5 == 2;
      double d = time - 150 - 100 * (o % 5 + 2);
      double want = mine ? 4 * std::exp(-d * d / (2 * 100 * 100)) : 0;
      CHECK(b.targets[t][o] == Approx(want).margin(1e-12));
    }
  }
}

TEST_CASE("E5 copy-first: the target is the first input, at the last step", "[tasks]") {
  CopyFirstTask task({300, 32});
  std::mt19937_64 rng(1);
  TrialBatch b = task.sample(128, rng);
  REQUIRE(b.steps == 300);
  CHECK(b.targets[299] == b.inputs[0]);
  CHECK(task.loss().kind == LossKind::MseLast);
  double sq = 0;
  for (double x : b.inputs[17]) sq += x * x;
  CHECK(sq / (128 * 32) == Approx(1).epsilon(0.05));  // N(0, I): predicting zeros scores about 1
}

TEST_CASE("rehearsal: a batch is the phase's own trials, then the earlier task's", "[tasks]") {
  const auto [t1, t2] = e3Specs();
  SequenceTask task1(t1), task2(t2);
  RehearsalTask joint(task2, task1);
  const int64_t B = 5;  // odd: the phase's own task gets the larger half, 3
  std::mt19937_64 rng(7), again(7);
  const TrialBatch b = joint.sample(B, rng);
  const TrialBatch own = task2.sample(3, again), earlier = task1.sample(2, again);
  REQUIRE(b.batch == B);
  REQUIRE(b.steps == task2.steps());
  REQUIRE(b.masks.empty());  // neither side has masks
  for (int64_t t = 0; t < b.steps; ++t) {
    std::vector<double> in = own.inputs[t], tg = own.targets[t];
    in.insert(in.end(), earlier.inputs[t].begin(), earlier.inputs[t].end());
    tg.insert(tg.end(), earlier.targets[t].begin(), earlier.targets[t].end());
    REQUIRE(b.inputs[t] == in);
    REQUIRE(b.targets[t] == tg);
  }
  CHECK(rng() == again());  // the same draws, in the same order
  // A batch of one is the phase's own trial alone.
  std::mt19937_64 r1(3), r2(3);
  CHECK(joint.sample(1, r1).targets == task2.sample(1, r2).targets);

  // Trials that cannot share a batch are refused, saying why.
  SequenceSpec longer = t1;
  longer.in.duration = 2000;
  SequenceTask task3(longer);
  CHECK_THROWS_WITH(RehearsalTask(task2, task3),
                    Catch::Matchers::Contains("differ in steps per trial (100 and 200)"));
  CopyFirstTask copy({100, 1});
  CHECK_THROWS_WITH(RehearsalTask(task2, copy), Catch::Matchers::Contains("targets per step (10 and 1)"));
}

TEST_CASE("rehearsal: masks join, and a step with a target on one side only is masked on the other", "[tasks]") {
  // copy-first has a target at its last step only; a task with every step targeted beside it.
  struct Every : Task {
    int64_t steps() const override { return 3; }
    TrialBatch sample(int64_t batch, std::mt19937_64&) const override {
      TrialBatch b;
      b.batch = batch, b.steps = 3;
      b.inputs.assign(3, std::vector<double>(batch, 1.0));
      b.targets.assign(3, std::vector<double>(batch, 2.0));
      return b;
    }
    LossSpec loss() const override { return {LossKind::MseLast, 0}; }
    int64_t inputDim() const override { return 1; }
    int64_t outputDim() const override { return 1; }
  } every;
  CopyFirstTask copy({3, 1});
  std::mt19937_64 rng(1);
  const TrialBatch b = RehearsalTask(every, copy).sample(4, rng);
  REQUIRE(b.masks.size() == 3);
  for (int64_t t = 0; t < 2; ++t) {
    CHECK(b.targets[t] == std::vector<double>{2, 2, 0, 0});
    CHECK(b.masks[t] == std::vector<double>{1, 1, 0, 0});  // copy-first's trials have no term here
  }
  CHECK(b.masks[2] == std::vector<double>{1, 1, 1, 1});
}
