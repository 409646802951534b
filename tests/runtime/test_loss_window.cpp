// A stop and milestones that one lucky minibatch cannot trigger (train.loss_window, issue 30):
// the window's mean marks the milestone at or after the single minibatch's, the target stops at
// that very step, a resumed phase keeps its window; milestones carry their training seconds.
// pycog's fixed dropout mask (train.dropout_fixed, issue 29): one unscaled 0/1 mask per phase.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include "CompiledModel.h"
#include "jit/Jit.h"
#include "sema/Program.h"
#include "tasks/Tasks.h"
#include "train/NoiseDraw.h"
#include "train/Trainer.h"

using namespace cellc;
using namespace cellc::runtime;
namespace fs = std::filesystem;

namespace {

using Model = testing::CompiledModel;
Model model(const std::string& cell, std::map<std::string, double> o) { return testing::compiledModel(cell, std::move(o)); }

TrainResult train(Model& m, const Task& task, TrainConfig c, std::vector<double>* params = nullptr) {
  c.progress = false;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  TrainResult r = t.run(task);
  if (params) *params = t.params();
  return r;
}

}  // namespace

TEST_CASE("loss window: milestones and the target read the mean of the last W losses", "[trainer]") {
  Model m = model("gru.cell", {{"n", 16}, {"n_in", 1}});
  CopyFirstTask task({5, 1});
  TrainConfig c;
  c.optimizer = "adam", c.learningRate = 1e-2, c.clipNorm = 0, c.batch = 16, c.maxSteps = 400;
  c.validateEvery = 0, c.seed = 3, c.lossMilestones = {0.3};
  const std::string key = milestoneKey(0.3);

  TrainResult single = train(m, task, c);
  REQUIRE(single.milestones.count(key));
  TrainConfig w = c;
  w.lossWindow = 20;
  TrainResult windowed = train(m, task, w);
  REQUIRE(windowed.milestones.count(key));
  INFO("first minibatch below 0.3 at step " << single.milestones.at(key) << ", first window mean at "
                                            << windowed.milestones.at(key));
  // The window only changes what is judged, not the training: same curve, a later (or equal) mark.
  CHECK(windowed.steps == single.steps);
  CHECK(windowed.milestones.at(key) >= single.milestones.at(key));
  CHECK(windowed.milestones.at(key) >= 20);
  CHECK(windowed.milestones.at(key) > single.milestones.at(key));  // this curve is noisy enough
  CHECK(windowed.milestoneSeconds.at(key) > 0);
  CHECK(windowed.milestoneSeconds.at(key) <= windowed.seconds);

  SECTION("the target stops at the window's milestone") {
    TrainConfig t = w;
    t.targetLoss = 0.3;
    TrainResult stopped = train(m, task, t);
    CHECK(stopped.stopReason == StopReason::LossTarget);
    CHECK(stopped.steps == windowed.milestones.at(key));
  }
  SECTION("a resumed phase keeps its window: it stops at the same step as one straight run") {
    fs::path dir = fs::temp_directory_path() / ("cellc-window-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    TrainConfig t = w;
    t.targetLoss = 0.3, t.checkpointPath = (dir / "c.ckpt").string(), t.checkpointEvery = 1;
    t.maxSteps = windowed.milestones.at(key) - 5;  // stopped part way, 15 losses in the window
    CHECK(train(m, task, t).stopReason == StopReason::MaxSteps);
    t.maxSteps = 400;
    TrainResult resumed = train(m, task, t);
    CHECK(resumed.resumed);
    CHECK(resumed.stopReason == StopReason::LossTarget);
    CHECK(resumed.steps == windowed.milestones.at(key));
    fs::remove_all(dir);
  }
  SECTION("a window below 1 is refused") {
    TrainConfig bad = c;
    bad.lossWindow = 0;
    CHECK_THROWS_WITH(train(m, task, bad), Catch::Contains("loss_window must be at least 1"));
  }
}

TEST_CASE("fixed dropout: one unscaled 0/1 mask for every trial and step", "[dropout]") {
  Model m = model("dale_rnn.cell", {{"n", 20}, {"n_out", 3}});
  const ir::Layout& L = m.ir.layout;
  const ir::Slot* keep = L.find(ir::Role::Noise, "keep");
  REQUIRE(keep);
  std::mt19937_64 g1(5), g2(5);
  std::vector<double> mask = drawFixedMask(L, 0.5, g1);
  REQUIRE(mask.size() == size_t(keep->size));
  CHECK(mask == drawFixedMask(L, 0.5, g2));  // the same generator, the same mask
  int kept = 0;
  for (double v : mask) {
    CHECK((v == 0.0 || v == 1.0));
    kept += v == 1.0;
  }
  CHECK(kept > 0);
  CHECK(kept < keep->size);

  RecurrentDropout d{0.5, false, true, mask};
  const int64_t B = 3, T = 4;
  std::mt19937_64 normals(1), masks(2), untouched(2);
  auto nz = drawNoise<double>(L, B, T, &normals, d, &masks);
  REQUIRE(nz.size() == size_t(T));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < keep->size; ++i)
        CHECK(nz[t][B * keep->offset + b * keep->size + i] == mask[i]);  // every trial, every step
  CHECK(masks == untouched);  // nothing drawn per trial

  SECTION("the trainer draws it per phase: two runs with one seed give the same bits") {
    SequenceSpec spec;
    spec.in.duration = 200, spec.outputs = 3, spec.offset = 20, spec.spacing = 30;
    spec.in.onsetMin = 10, spec.in.onsetMax = 40;
    SequenceTask task(spec);
    TrainConfig c;
    c.optimizer = "adam", c.learningRate = 1e-2, c.batch = 8, c.maxSteps = 30, c.validateEvery = 0;
    c.seed = 7, c.dropout.p = 0.5, c.dropout.fixed = true;
    std::vector<double> a, b, inverted;
    train(m, task, c, &a);
    train(m, task, c, &b);
    CHECK(a == b);
    c.dropout.fixed = false;
    train(m, task, c, &inverted);
    CHECK(a != inverted);
    c.dropout.fixed = true, c.dropout.perStep = true;
    CHECK_THROWS_WITH(train(m, task, c), Catch::Contains("exclude each other"));
  }
}
