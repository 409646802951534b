// The trainer end to end on small cells and tasks: it learns, resumes bit for bit, stops cleanly
// on divergence and on Ctrl-C, keeps frozen params fixed, and refuses bad checkpoints.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "CompiledModel.h"
#include "jit/Jit.h"
#include "sema/Program.h"
#include "tasks/Tasks.h"
#include "train/Checkpoint.h"
#include "train/Trainer.h"

using namespace cellc;
using namespace cellc::runtime;
namespace fs = std::filesystem;

namespace {

using Model = testing::CompiledModel;
Model model(const std::string& cell, std::map<std::string, double> o) { return testing::compiledModel(cell, std::move(o)); }

fs::path tempDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("cellc-trainer-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TrainConfig quiet(TrainConfig c) {
  c.progress = false;
  return c;
}

}  // namespace

TEST_CASE("a GRU learns copy-first at T = 5: the loss falls tenfold", "[trainer]") {
  Model m = model("gru.cell", {{"n", 16}, {"n_in", 1}});
  CopyFirstTask task({5, 1});
  TrainConfig c = quiet({});
  c.optimizer = "adam", c.learningRate = 1e-2, c.clipNorm = 0, c.batch = 32, c.maxSteps = 400;
  c.validateEvery = 100, c.metric = "loss", c.seed = 3;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  std::mt19937_64 rng(99);
  double before = t.evaluate(task, t.params(), 500, rng);
  TrainResult r = t.run(task);
  std::mt19937_64 rng2(99);
  double after = t.evaluate(task, r.params, 500, rng2);
  INFO("validation loss before " << before << ", after " << after);
  CHECK(before > 0.5);
  CHECK(after < before / 10);
}

TEST_CASE("resuming from a checkpoint continues bit-identically", "[trainer]") {
  Model m = model("dale_rnn.cell", {{"n", 10}, {"n_out", 3}});
  SequenceSpec spec;
  spec.in.duration = 200, spec.outputs = 3, spec.offset = 20, spec.spacing = 30, spec.in.onsetMin = 10,
  spec.in.onsetMax = 40;
  SequenceTask task(spec);
  fs::path dir = tempDir("resume");
  TrainConfig c = quiet({});
  c.learningRate = 1e-2, c.batch = 4, c.validateEvery = 5, c.validationBatch = 8, c.seed = 11;
  c.dropout.p = 0.2;
  auto runTo = [&](int64_t steps, const std::string& ckpt) {
    TrainConfig cc = c;
    cc.maxSteps = steps, cc.checkpointPath = ckpt, cc.checkpointEvery = 3;
    std::ostringstream log;
    Trainer t(m.ir, *m.kernel, {"dale_rnn.cell", m.source, m.overrides, ""}, cc, log);
    t.initialize();
    TrainResult r = t.run(task);
    return std::make_pair(t.params(), r);
  };
  auto [straight, r1] = runTo(14, (dir / "a.ckpt").string());
  runTo(7, (dir / "b.ckpt").string());             // stopped half way
  auto [resumed, r2] = runTo(14, (dir / "b.ckpt").string());  // picks up at step 7
  CHECK(r2.resumed);
  REQUIRE(straight.size() == resumed.size());
  CHECK(std::memcmp(straight.data(), resumed.data(), straight.size() * sizeof(double)) == 0);
  CHECK(r1.bestError == r2.bestError);
}

TEST_CASE("a diverging run stops with a message and keeps the last good parameters", "[trainer]") {
  Model m = model("gru.cell", {{"n", 8}});
  CopyFirstTask task({5, 1});
  fs::path dir = tempDir("diverge");
  TrainConfig c = quiet({});
  c.learningRate = 1e30, c.clipNorm = 0, c.batch = 8, c.maxSteps = 50, c.validateEvery = 0;
  c.checkpointPath = (dir / "c.ckpt").string();
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  TrainResult r = t.run(task);
  CHECK(r.stopReason == StopReason::Diverged);
  CHECK(log.str().find("diverged at step") != std::string::npos);
  for (double p : t.params()) REQUIRE(std::isfinite(p));
  Checkpoint saved = readCheckpoint(c.checkpointPath);
  for (double p : saved.params) REQUIRE(std::isfinite(p));
}

TEST_CASE("frozen params do not move", "[trainer]") {
  Model m = model("dale_rnn.cell", {{"n", 10}, {"n_out", 3}});
  SequenceSpec spec;
  spec.in.duration = 100, spec.outputs = 3;
  SequenceTask task(spec);
  TrainConfig c = quiet({});
  c.learningRate = 1e-1, c.batch = 4, c.maxSteps = 10, c.validateEvery = 0, c.frozen = {"W_out_raw"};
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"dale_rnn.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  std::vector<double> before = t.params();
  t.run(task);
  const ir::Slot* w = m.ir.layout.find(ir::Role::Param, "W_out_raw");
  const ir::Slot* rec = m.ir.layout.find(ir::Role::Param, "W_rec_raw");
  REQUIRE((w && rec));
  bool recMoved = false;
  for (int64_t i = 0; i < w->size; ++i) CHECK(t.params()[w->offset + i] == before[w->offset + i]);
  for (int64_t i = 0; i < rec->size; ++i) recMoved |= t.params()[rec->offset + i] != before[rec->offset + i];
  CHECK(recMoved);
}

TEST_CASE("corrupt or mismatched checkpoints are refused", "[trainer]") {
  Model m = model("gru.cell", {{"n", 8}});
  CopyFirstTask task({5, 1});
  fs::path dir = tempDir("corrupt");
  TrainConfig c = quiet({});
  c.batch = 4, c.maxSteps = 3, c.validateEvery = 0, c.checkpointPath = (dir / "c.ckpt").string();
  std::ostringstream log;
  {
    std::ofstream(c.checkpointPath) << "garbage, not a checkpoint";
    Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
    t.initialize();
    CHECK_THROWS_WITH(t.run(task), Catch::Contains("not a cellc checkpoint"));
  }
  fs::remove(c.checkpointPath);
  {
    Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
    t.initialize();
    t.run(task);
  }
  Model other = model("gru.cell", {{"n", 9}});
  Trainer t(other.ir, *other.kernel, {"gru.cell", other.source, other.overrides, ""}, c, log);
  t.initialize();
  CHECK_THROWS_WITH(t.run(task), Catch::Contains("-D n: checkpoint 8, now 9"));
}

TEST_CASE("an interrupt saves a checkpoint and stops", "[trainer]") {
  Model m = model("gru.cell", {{"n", 8}});
  // Raises the interrupt flag on the 4th batch, as the SIGINT handler would.
  struct Interrupting : CopyFirstTask {
    using CopyFirstTask::CopyFirstTask;
    mutable int calls = 0;
    TrialBatch sample(int64_t b, std::mt19937_64& rng) const override {
      if (++calls == 4) Trainer::interruptFlag() = true;
      return CopyFirstTask::sample(b, rng);
    }
  } task({5, 1});
  fs::path dir = tempDir("interrupt");
  TrainConfig c = quiet({});
  c.batch = 4, c.maxSteps = 100, c.validateEvery = 0, c.checkpointPath = (dir / "c.ckpt").string();
  c.checkpointEvery = 1000;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  TrainResult r = t.run(task);
  Trainer::interruptFlag() = false;  // the flag outlives the run (a CLI process exits): clear it for the next test
  CHECK(r.stopReason == StopReason::Interrupted);
  CHECK(r.steps == 4);
  CHECK(readCheckpoint(c.checkpointPath).step == 4);
}

TEST_CASE("EWC: the Fisher is a mean of squared per-trial gradients, and the penalty trains", "[trainer][ewc]") {
  Model m = model("gru.cell", {{"n", 6}});
  CopyFirstTask task({4, 1});
  TrainConfig c = quiet({});
  c.batch = 4, c.maxSteps = 5, c.validateEvery = 0;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"gru.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  std::vector<double> f = t.fisher(task, 16);
  REQUIRE(static_cast<int64_t>(f.size()) == m.ir.layout.paramSize);
  double total = 0;
  for (double v : f) {
    CHECK(v >= 0);
    total += v;
  }
  CHECK(total > 0);
  std::vector<double> anchor = t.params();
  t.ewc().add({anchor, f, 500.0, "copy"});
  CHECK(t.ewc().penalty(anchor) == 0);
  TrainResult r = t.run(task);
  CHECK(std::isfinite(r.lastLoss));
}

TEST_CASE("EWC, course form: F is the squared gradient of sum log softmax over M terms", "[trainer][ewc]") {
  // pycog's course trainer: F = (d/dtheta sum_{t,b,i} log softmax(z)_i)^2 / (T B N_out), here
  // checked against central differences of that sum through the forward alone.
  Model m = model("dale_rnn.cell", {{"n", 10}, {"n_out", 3}});
  const int64_t T = 6, B = 3, nOut = 3;
  TrainConfig c = quiet({});
  c.batch = B;
  std::ostringstream log;
  Trainer t(m.ir, *m.kernel, {"dale_rnn.cell", m.source, m.overrides, ""}, c, log);
  t.initialize();
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0, 1);
  TrialBatch b;
  b.batch = B, b.steps = T;
  for (int64_t s = 0; s < T; ++s) {
    b.inputs.emplace_back(B);
    for (double& x : b.inputs.back()) x = 2 * u(rng);
    b.targets.emplace_back(B * nOut, 0.5);  // the course's F never reads them
  }
  const LossSpec mse{LossKind::Mse, 0};
  Bptt<float> bptt(*m.kernel, B, T);
  const std::vector<double> f = t.courseFisher(bptt, b, mse, {});
  const ir::Slot& out = lossOutput(m.ir.layout, mse);
  // The differences run the same cell compiled in double precision.
  std::unique_ptr<CompiledCell<double>> k64 = compileCell<double>(m.ir);
  Bptt<double> fwd64(*k64, B, T);
  auto sumLogSoftmax = [&](const std::vector<double>& theta) {
    std::vector<std::vector<double>> outputs;
    fwd64.forward(theta, b, {}, {}, outputs);
    double g = 0;
    for (const auto& o : outputs)
      for (int64_t k = 0; k < B; ++k) {
        const double* z = o.data() + out.offset * B + k * out.size;
        double mx = z[0], se = 0;
        for (int64_t i = 0; i < nOut; ++i) mx = std::max(mx, z[i]);
        for (int64_t i = 0; i < nOut; ++i) se += std::exp(z[i] - mx);
        for (int64_t i = 0; i < nOut; ++i) g += z[i] - mx - std::log(se);
      }
    return g;
  };
  // The ten largest entries, by central differences (h = 1e-6).
  std::vector<size_t> order(f.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t c2) { return f[a] > f[c2]; });
  REQUIRE(f[order[0]] > 0);
  const double M = double(T * B * nOut);
  for (size_t k = 0; k < 10; ++k) {
    const size_t i = order[k];
    std::vector<double> plus = t.params(), minus = t.params();
    const double h = 1e-6;
    plus[i] += h;
    minus[i] -= h;
    const double dg = (sumLogSoftmax(plus) - sumLogSoftmax(minus)) / (2 * h);
    INFO("param element " << i << ": F " << f[i] << ", from differences " << dg * dg / M);
    CHECK(f[i] == Approx(dg * dg / M).epsilon(1e-3));  // F itself comes from the float kernel
  }
}
