// The run folder never lies (issue 8): no shell, every index range-checked before training, one
// process per folder, a learning curve that survives crashes, resumes that continue the same
// experiment or refuse without writing, signals honoured, a diverged phase not marked done.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiment/RunFolder.h"
#include "run/Runner.h"
#include "train/Metrics.h"
#include "train/Trainer.h"

using namespace cellc::runtime;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = CELLC_SOURCE_DIR "/tests/fixtures/experiments/tiny.toml";
const std::string kCell = CELLC_SOURCE_DIR "/cells/dale_rnn.cell";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("cellc-rel-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

// The tiny experiment with `edit(text)` applied, written to a scratch file.
std::string tinyWith(const std::string& name, const std::string& from = "", const std::string& to = "") {
  std::string s = slurp(kTiny);
  const std::string cell = "../../../cells/dale_rnn.cell";
  s.replace(s.find(cell), cell.size(), kCell);
  if (!from.empty()) {
    REQUIRE(s.find(from) != std::string::npos);
    s.replace(s.find(from), from.size(), to);
  }
  fs::path p = scratch("exp") / (name + ".toml");
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
  return p.string();
}

// Runs, expecting an ExperimentError containing `what`, and that no run folder was made.
void refusedBeforeTraining(const std::string& path, const std::string& what,
                           const std::vector<std::string>& sets = {}) {
  fs::path run = scratch("refused");
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  std::ostringstream log;
  try {
    Experiment e = loadExperiment(path, sets);
    runExperiment(e, opt, log);
    FAIL("expected an error containing: " << what);
  } catch (const ExperimentError& err) {
    CHECK_THAT(std::string(err.what()), Contains(what));
  }
  CHECK_FALSE(fs::exists(run));
}

RunOptions quiet(const fs::path& run) {
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  return opt;
}

// A log that raises the interrupt flag when a line with `trigger` is written.
class InterruptAt : public std::stringbuf {
 public:
  explicit InterruptAt(std::string trigger) : trigger_(std::move(trigger)) {}
  int sync() override {
    if (str().find(trigger_) != std::string::npos) Trainer::interruptFlag() = true;
    return 0;
  }

 private:
  std::string trigger_;
};

}  // namespace

TEST_CASE("run names are plain names: no shell or path tricks", "[reliability][names]") {
  refusedBeforeTraining(tinyWith("inject", "name = \"tiny\"", "name = \"x'; touch INJECTED; echo '\""),
                        "experiment.name");
  refusedBeforeTraining(tinyWith("slash", "name = \"tiny\"", "name = \"../elsewhere\""), "experiment.name");
  refusedBeforeTraining(tinyWith("abs", "name = \"tiny\"", "name = \"/tmp/x\""), "experiment.name");
  CHECK(isPlainName("sequence_shift-2.b"));
  CHECK_FALSE(isPlainName(".."));
  CHECK_FALSE(isPlainName("a/b"));
  CHECK_FALSE(isPlainName(""));
}

TEST_CASE("the plotter is spawned with an argument vector, never through a shell", "[reliability][names]") {
  // A run folder whose name a shell would read as commands.
  fs::path base = scratch("shell");
  fs::create_directories(base);
  fs::path run = base / "r'; touch INJECTED; echo '";
  fs::path marker = fs::current_path() / "INJECTED";
  fs::remove(marker);
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = true;
  opt.plotScript = (base / "plot.py").string();
  // A stand-in plot script that records the argument it was given.
  std::ofstream(opt.plotScript) << "import sys\nopen(sys.argv[1] + '/plotted', 'w').write(sys.argv[1])\n";
  std::ostringstream log;
  runExperiment(loadExperiment(tinyWith("shell"), {"train.max_steps=2"}), opt, log);
  CHECK_FALSE(fs::exists(marker));
  if (fs::exists("/usr/bin/python3") && log.str().find("not found") == std::string::npos) {
    CHECK(slurp(run / "plotted") == run.string());
    // A script other than cellc's own is code the user should know ran.
    CHECK_THAT(log.str(), Contains("figures: running " + opt.plotScript + " (not cellc's own plot.py"));
  }
}

TEST_CASE("indices and sizes from the file are checked before any training", "[reliability][ranges]") {
  refusedBeforeTraining(tinyWith("col", "example_column = 8", "example_column = 100000000"), "example_column");
  refusedBeforeTraining(tinyWith("colneg", "example_column = 8", "example_column = -1"), "example_column");
  refusedBeforeTraining(tinyWith("col10", "example_column = 8", "example_column = 5"), "example_column");
  refusedBeforeTraining(tinyWith("pcols", "plot_columns = [8, 9]", "plot_columns = [8, 900]"), "plot_columns");
  refusedBeforeTraining(tinyWith("pvals", "plot_values = [-0.1, 0.1]", "plot_values = [-0.1, 7]"), "plot_values");
  refusedBeforeTraining(tinyWith("cols", "columns = [8, 9]", "columns = [8, 10]"), "columns");
  refusedBeforeTraining(tinyWith("frac", "columns = [8, 9]", "columns = [8.5, 9]"), "columns");
  refusedBeforeTraining(tinyWith("outs", "outputs = 3", "outputs = 50"), "task.outputs");
  refusedBeforeTraining(tinyWith("onset", "onset_min = 10", "onset_min = 300"), "onset");
  refusedBeforeTraining(tinyWith("long", "duration = 200", "duration = 1e9"), "task.dt");
  refusedBeforeTraining(tinyWith("adt", "dt = 2", "dt = 1e-9"), "dt");
  refusedBeforeTraining(tinyWith("nan", "values = [-0.1, 0.1, 3]", "values = [-0.1, nan, 3]"), "element 1");
  refusedBeforeTraining(tinyWith("batch", "batch = 4", "batch = 10000000"), "train.batch");
}

TEST_CASE("a run whose buffers exceed the machine's memory is refused before training, naming bytes and keys",
          "[reliability][memory]") {
  // Sizes within every key's range whose buffers no machine holds (tens of TB): the estimate
  // (train/Memory.h) says so before anything is allocated or written.
  const std::string path = tinyWith("memory");
  refusedBeforeTraining(path, "training phase 'train' needs about ",
                        {"cell.dims.n=16384", "train.batch=500000", "train.memory_budget_mb=1000000000"});
  refusedBeforeTraining(path, "command line: --set train.batch=500000: error: ",
                        {"cell.dims.n=16384", "train.batch=500000", "train.memory_budget_mb=1000000000"});
  refusedBeforeTraining(path, "the machine has ",
                        {"cell.dims.n=16384", "train.batch=500000", "train.memory_budget_mb=1000000000"});
  refusedBeforeTraining(path, "The sizes come from train.batch = 500000, train.validation_batch = 8, "
                              "train.memory_budget_mb = 1000000000, T = 20 steps (the [task] table), "
                              "cell.dims.n = 16384",
                        {"cell.dims.n=16384", "train.batch=500000", "train.memory_budget_mb=1000000000"});
  // The test stage's forward: test.trials, located at its key.
  refusedBeforeTraining(path, "the test stage (phase 'train') needs about ",
                        {"cell.dims.n=4096", "test.trials=100000000"});
  refusedBeforeTraining(path, "--set test.trials=100000000: error: ", {"cell.dims.n=4096", "test.trials=100000000"});
  refusedBeforeTraining(path, "The sizes come from test.trials = 100000000, T = 20 steps",
                        {"cell.dims.n=4096", "test.trials=100000000"});
}

TEST_CASE("phase names are unique and plain", "[reliability][phases]") {
  const std::string two = "[[phase]]\nname = \"a\"\n[[phase]]\nname = \"a\"\n";
  refusedBeforeTraining(tinyWith("dup", "[[analysis]]", two + "[[analysis]]"), "two [[phase]] tables are named 'a'");
  refusedBeforeTraining(tinyWith("badname", "[[analysis]]", "[[phase]]\nname = \"a/b\"\n[[analysis]]"), "phase name");
}

TEST_CASE("set-on-the-command-line errors point at the command line, and phase keys can be set", "[reliability][set]") {
  std::string path = tinyWith("set");
  CHECK_THROWS_WITH(loadExperiment(path, {"train.batch=-1"}), Contains("command line: --set train.batch=-1"));
  CHECK_THROWS_WITH(loadExperiment(path, {"train.bacth=2"}), Contains("did you mean 'train.batch'"));
  std::string phased = tinyWith("phased", "[[analysis]]", "[[phase]]\nname = \"one\"\n[[phase]]\nname = \"two\"\n[[analysis]]");
  Experiment e = loadExperiment(phased, {"phase.two.ewc.lambda=500"});
  CHECK(e.phases[1].ewc.lambda == 500);
  CHECK(e.phases[0].ewc.lambda == 0);
  CHECK_THROWS_WITH(loadExperiment(phased, {"phase.three.ewc.lambda=5"}), Contains("no [[phase]] named 'three'"));
}

TEST_CASE("one process per run folder", "[reliability][lock]") {
  fs::path run = scratch("lock");
  RunFolder first(run);
  CHECK_THROWS_WITH(RunFolder(run), Contains("another cellc process"));
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(loadExperiment(tinyWith("lock")), quiet(run), log),
                    Contains("another cellc process"));
}

TEST_CASE("checked atomic writes name the path and the OS reason", "[reliability][writes]") {
  fs::path dir = scratch("writes");
  fs::create_directories(dir / "target_is_a_folder");
  CHECK_THROWS_WITH(writeFileAtomic(dir / "target_is_a_folder", "x"), Contains("target_is_a_folder"));
  CHECK_THROWS_WITH(writeFileAtomic(dir / "missing" / "f", "x"), Contains("No such file or directory"));
  // Nothing is left behind.
  size_t n = 0;
  for (auto& entry : fs::directory_iterator(dir)) n += entry.path().filename() != "target_is_a_folder";
  CHECK(n == 0);
  writeFileAtomic(dir / "ok", "hello");
  CHECK(slurp(dir / "ok") == "hello");
}

TEST_CASE("the learning curve survives a crash: cut back to the checkpoint, no torn rows", "[reliability][metrics]") {
  fs::path run = scratch("metrics");
  Experiment e = loadExperiment(tinyWith("metrics"), {"train.max_steps=40", "train.checkpoint_every=10"});
  Trainer::interruptFlag() = false;
  InterruptAt buf("step 20/");
  std::ostream watched(&buf);
  CHECK_THROWS_WITH(runExperiment(e, quiet(run), watched), Contains("interrupted"));
  Trainer::interruptFlag() = false;
  // What a kill -9 during a write leaves: rows past the checkpoint, a torn one, a glued one.
  {
    std::ofstream m(run / "metrics.csv", std::ios::app);
    m << "train,30,0.5,,0.1,99\ntrain,5310train,6510,0.1,,0.3\ntrain,3";
  }
  std::ostringstream log;
  runExperiment(e, quiet(run), log);
  std::vector<MetricsRow> rows = readMetrics((run / "metrics.csv").string());  // throws on a malformed row
  REQUIRE(!rows.empty());
  for (size_t i = 1; i < rows.size(); ++i) {
    CHECK(rows[i].step > rows[i - 1].step);
    CHECK(rows[i].seconds >= rows[i - 1].seconds);  // the clock continues across the resume
  }
  CHECK(rows.back().step == 40);
  CHECK_THROWS_WITH(readMetrics((run / "experiment.toml").string()), Contains("not a metrics file"));
}

TEST_CASE("a resume continues the same experiment or refuses, writing nothing", "[reliability][resume]") {
  fs::path run = scratch("identity");
  std::string path = tinyWith("identity");
  Trainer::interruptFlag() = false;
  InterruptAt buf("step 10/");
  std::ostream watched(&buf);
  CHECK_THROWS_WITH(runExperiment(loadExperiment(path), quiet(run), watched), Contains("interrupted"));
  Trainer::interruptFlag() = false;
  const std::string before = slurp(run / "experiment.toml");
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(loadExperiment(path, {"experiment.seed=4"}), quiet(run), log),
                    Contains("experiment.seed: was 3, now 4"));
  CHECK_THROWS_WITH(runExperiment(loadExperiment(path, {"train.batch=8"}), quiet(run), log),
                    Contains("train.batch"));
  CHECK(slurp(run / "experiment.toml") == before);
  // Settings that do not change the training may differ: a longer run continues.
  runExperiment(loadExperiment(path, {"train.max_steps=30"}), quiet(run), log);
  CHECK_THAT(log.str(), Contains("resuming train from step 10"));
}

TEST_CASE("SIGTERM behaves like Ctrl-C, and an interrupt before training is honoured", "[reliability][signals]") {
  installInterruptHandler();
  Trainer::interruptFlag() = false;
  std::raise(SIGTERM);
  CHECK(Trainer::interruptFlag());
  CHECK(interruptedExitCode() == 143);  // `cellc run`'s exit status, as docs/experiments.md says
  // Raised during compilation: nothing trains, the run can be started again.
  fs::path run = scratch("early");
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(loadExperiment(tinyWith("early")), quiet(run), log), Contains("interrupted"));
  CHECK_FALSE(fs::exists(run / "done-train.ckpt"));
  Trainer::interruptFlag() = false;
  std::raise(SIGINT);
  CHECK(interruptedExitCode() == 130);
  Trainer::interruptFlag() = false;
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}

TEST_CASE("a diverged phase is not marked done, and a rerun says what happened", "[reliability][diverged]") {
  fs::path run = scratch("diverged");
  std::string path = tinyWith("diverged");
  Experiment e = loadExperiment(path, {"train.learning_rate=1e9", "train.clip_norm=0"});
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(e, quiet(run), log), Contains("diverged"));
  CHECK_FALSE(fs::exists(run / "done-train.ckpt"));
  CHECK_FALSE(fs::exists(run / "summary.json"));
  CHECK_THROWS_WITH(runExperiment(e, quiet(run), log), Contains("diverged in an earlier run"));
}
