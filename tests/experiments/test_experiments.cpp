// Experiment files and `cellc run`: format errors name the file, line and key; a tiny experiment
// leaves every file it promises; an interrupted run resumes.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "blas/HostCpu.h"
#include "experiment/Model.h"
#include "io/npy.h"
#include "run/Runner.h"
#include "train/Trainer.h"

using namespace cellc::runtime;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = CELLC_SOURCE_DIR "/tests/fixtures/experiments/tiny.toml";
const std::string kCell = CELLC_SOURCE_DIR "/cells/dale_rnn.cell";
// The least a valid experiment says (mistakes are put before it, on line 2).
const std::string kMinimal = "[cell]\nfile = \"" + kCell + "\"\n[task]\nkind = \"sequence\"\n";

// Writes `text` as an experiment in a scratch folder of this process.
std::string writeExperiment(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("cellc-exp-files-" + std::to_string(::getpid())) / (name + ".toml");
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.string();
}

std::string tinyText() {
  std::ifstream in(kTiny);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  // Written elsewhere, the experiment names its cell by absolute path.
  const std::string from = "../../../cells/dale_rnn.cell";
  s.replace(s.find(from), from.size(), kCell);
  return s;
}

// Options of a run into `run`, without figures (the tests below).
RunOptions quietInto(const fs::path& run) {
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  return opt;
}

fs::path freshDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("cellc-exp-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("experiment format errors name the file, line and key", "[experiments]") {
  struct Case {
    std::string what, insert, message;
  };
  const std::vector<Case> cases = {
      {"unknown key", "[train]\nlearnig_rate = 0.1\n", "unknown key 'train.learnig_rate' (did you mean 'train.learning_rate'?)"},
      {"wrong type", "[train]\nbatch = \"twenty\"\n", "key 'train.batch': expected an integer, got a string"},
      {"out of range", "[train]\nbatch = 0\n", "key 'train.batch' = 0 is out of range: at least 1"},
      {"bad choice", "[train]\noptimizer = \"rmsprop\"\n", "expected one of sgd, adam"},
      {"unknown section", "[trian]\nbatch = 3\n", "unknown key 'trian.batch'"},
      {"table for a value", "[train.batch]\nx = 1\n", "key 'train.batch' takes a value, not a table"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      // Put the mistake first, so that its line is known: line 2.
      std::string path = writeExperiment("bad", c.insert + kMinimal);
      try {
        loadExperiment(path);
        FAIL("no error for " << c.what);
      } catch (const ExperimentError& e) {
        CHECK_THAT(e.what(), Contains(path + ":"));
        CHECK_THAT(e.what(), Contains(c.message));
        if (c.what != "unknown section" && c.what != "table for a value") CHECK_THAT(e.what(), Contains(path + ":2:"));
      }
    }
  }
  SECTION("TOML syntax error") {
    std::string path = writeExperiment("syntax", "[train\nbatch = 3\n");
    CHECK_THROWS_WITH(loadExperiment(path), Contains(path + ":1:"));
  }
  SECTION("--set of an unknown key, and a missing profile") {
    CHECK_THROWS_WITH(loadExperiment(kTiny, {"train.bach=3"}), Contains("command line: --set train.bach=3: error: unknown key 'train.bach' (did you mean 'train.batch'?)"));
    CHECK_THROWS_WITH(loadExperiment(kTiny, {}, "fast"), Contains("no profile 'fast'"));
    CHECK_THROWS_WITH(loadExperiment(kTiny, {"train.batch=0"}), Contains("out of range"));
  }
  SECTION("required keys") {
    std::string path = writeExperiment("nocell", "[task]\nkind = \"sequence\"\n");
    CHECK_THROWS_WITH(loadExperiment(path), Contains("'cell.file' is required"));
  }
}

TEST_CASE("profiles and --set override the file", "[experiments]") {
  std::string path = writeExperiment("prof", tinyText() + "\n[profiles.fast]\ntrain.batch = 2\ntrain.optimizer = \"adam\"\n");
  Experiment e = loadExperiment(path, {"train.learning_rate=0.5", "train.optimizer=sgd"}, "fast");
  CHECK(e.base.train.batch == 2);
  CHECK(e.base.train.learningRate == 0.5);
  CHECK(e.base.train.optimizer == "sgd");  // --set comes after the profile
  CHECK(e.base.train.clipNorm == 1.0);     // the schema's default
  CHECK(e.phases.at(0).train.batch == 2);  // the one phase starts from the top level
}

TEST_CASE("a tiny experiment runs end to end and leaves every file it promises", "[experiments]") {
  fs::path run = freshDir("tiny");
  Experiment e = loadExperiment(kTiny);
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  std::ostringstream log;
  runExperiment(e, opt, log);
  for (const char* f : {"experiment.toml", "cell.cell", "metrics.csv", "summary.json", "done-train.ckpt",
                        "params/W_rec_raw.npy", "params/x0.npy", "arrays/trial_output.npy",
                        "arrays/peak_shift.npy", "arrays/centroid_shift.npy", "arrays/failures.npy",
                        "arrays/edit_example_output.npy", "arrays/shift_values.npy"}) {
    INFO(f);
    CHECK(fs::exists(run / f));
  }
  std::ifstream s(run / "summary.json");
  std::stringstream ss;
  ss << s.rdbuf();
  CHECK_THAT(ss.str(), Contains("\"sign_consistency\""));
  CHECK_THAT(ss.str(), Contains("\"stop_reason\": \"max-steps\""));
  // The CPU that made the numbers (the JIT compiles for it): its name and extensions.
  const nlohmann::json summary = nlohmann::json::parse(ss.str());
  REQUIRE(summary.contains("machine"));
  CHECK(summary["machine"]["cpu"].is_string());
  CHECK(summary["machine"]["isa"].get<std::string>() == cellc::hostIsaNames());
  // The resolved experiment parses back.
  CHECK_NOTHROW(loadExperiment((run / "experiment.toml").string()));
  // Running again does not train again.
  std::ostringstream again;
  runExperiment(e, opt, again);
  CHECK_THAT(again.str(), Contains("already trained"));
}

TEST_CASE("an interrupted run resumes where it stopped", "[experiments]") {
  fs::path run = freshDir("resume");
  Experiment e = loadExperiment(kTiny, {"train.max_steps=40"});
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  // Ctrl-C after the first validation (step 10): the SIGINT handler only raises this flag.
  Trainer::interruptFlag() = false;
  class Watch : public std::stringbuf {
   public:
    int sync() override {
      if (str().find("step 10/") != std::string::npos) Trainer::interruptFlag() = true;
      return 0;
    }
  } buf;
  std::ostream watched(&buf);
  CHECK_THROWS_WITH(runExperiment(e, opt, watched), Contains("interrupted"));
  CHECK(fs::exists(run / "train-train.ckpt"));
  CHECK_FALSE(fs::exists(run / "done-train.ckpt"));
  Trainer::interruptFlag() = false;
  std::ostringstream second;
  runExperiment(e, opt, second);
  CHECK_THAT(second.str(), Contains("resuming train from step 10"));
  CHECK(fs::exists(run / "done-train.ckpt"));
}

TEST_CASE("docs/experiments.md lists every key as the schema does", "[experiments][docs]") {
  std::ifstream in(CELLC_SOURCE_DIR "/docs/experiments.md");
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK_THAT(ss.str(), Contains(keyReference()));
}

TEST_CASE("every experiment in experiments/ loads, with each of its profiles", "[experiments]") {
  for (const auto& f : fs::directory_iterator(CELLC_SOURCE_DIR "/experiments")) {
    if (f.path().extension() != ".toml") continue;
    DYNAMIC_SECTION(f.path().filename().string()) {
      CHECK_NOTHROW(loadExperiment(f.path().string()));
      CHECK_NOTHROW(loadExperiment(f.path().string(), {}, "quick"));
    }
  }
}

TEST_CASE("an experiment can train with the vanishing-gradient regularizer", "[experiments][omega]") {
  fs::path run = freshDir("omega");
  Experiment e = loadExperiment(kTiny, {"train.omega=2", "train.max_steps=5", "train.validate_every=5"});
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  std::ostringstream log;
  runExperiment(e, opt, log);
  CHECK(fs::exists(run / "done-train.ckpt"));
  CHECK_THROWS_WITH(loadExperiment(kTiny, {"train.omega=-1"}), Contains("out of range"));
}

TEST_CASE("train.dropout needs a ~ dropout() noise in the cell: an error at the key, no run folder",
          "[experiments][dropout]") {
  const std::string gru = CELLC_SOURCE_DIR "/cells/gru.cell";
  const std::string text = "[cell]\nfile = \"" + gru + "\"\ndims = { n = 4 }\n"
                           "[task]\nkind = \"copy_first\"\nsteps = 5\n"
                           "[train]\nmax_steps = 2\ndropout = 0.5\n";
  const std::string path = writeExperiment("dropout_without_mask", text);
  fs::path run = freshDir("dropout-without-mask");
  RunOptions opt;
  opt.outDir = run.string();
  opt.plot = false;
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(loadExperiment(path), opt, log),
                    Contains(path + ":9:") && Contains("train.dropout = 0.5") &&
                        Contains("cell gru declares no dropout mask") && Contains("~ dropout()"));
  CHECK(!fs::exists(run));
  // dale_rnn places its mask on the rates W_rec reads: the same key trains it.
  fs::path ok = freshDir("dropout-dale");
  opt.outDir = ok.string();
  runExperiment(loadExperiment(kTiny, {"train.dropout=0.5", "train.max_steps=5", "train.validate_every=5"}),
                opt, log);
  CHECK(fs::exists(ok / "done-train.ckpt"));
}

TEST_CASE("a two-phase run keeps each phase's params and its Fisher, and a trace reads the task it names",
          "[experiments][ewc]") {
  fs::path run = freshDir("phases");
  Experiment e = loadExperiment(CELLC_SOURCE_DIR "/experiments/forgetting.toml",
                                {"train.max_steps=5", "phase.task1.ewc.fisher_trials=4", "cell.dims.n=12",
                                 "test.trials=4", "phase.task1.train.dropout=0"},
                                "quick");
  RunOptions opt = quietInto(run);
  std::ostringstream log;
  runExperiment(e, opt, log);
  for (const char* f : {"params-task1/W_rec_raw.npy", "params-task2/W_rec_raw.npy", "fisher-task1/W_rec_raw.npy",
                        "fisher-task1/x0.npy", "arrays/task2_after_trace_input.npy"}) {
    INFO(f);
    CHECK(fs::exists(run / f));
  }
  CHECK_FALSE(fs::exists(run / "fisher-task2"));  // the last phase consolidates nothing
  // The task-2 trace's input grows (task 2), the task-1 trace's decays (task 1): their last steps differ.
  auto read = [&](const char* name) {
    std::ifstream in(run / "arrays" / name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  CHECK(read("task2_after_trace_input.npy") != read("task1_after_trace_input.npy"));
}

TEST_CASE("a trace whose task names no phase is refused before training, at its key", "[experiments]") {
  fs::path run = freshDir("trace-task");
  std::string path = writeExperiment("trace_task", tinyText() + "\n[[analysis]]\nkind = \"trace\"\ntask = \"task9\"\n");
  Experiment e = loadExperiment(path);
  RunOptions opt = quietInto(run);
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(e, opt, log), Contains("no phase named 'task9'") && Contains("trace_task.toml:"));
  CHECK_FALSE(fs::exists(run / "metrics.csv"));
}

namespace {

nlohmann::json ablationOf(const std::string& name, const std::string& extra) {
  const std::string text = "[cell]\nfile = \"" CELLC_SOURCE_DIR "/cells/pbrc.cell\"\n"
                           "dims = { n_in = 2, n_out = 2, n = 6 }\n"
                           "[task]\nkind = \"copy_first\"\nsteps = 8\ndim = 2\n"
                           "[train]\noptimizer = \"adam\"\nlearning_rate = 0.01\nclip_norm = 0\nbatch = 16\n"
                           "max_steps = 30\nvalidate_every = 0\n" + extra +
                           "[test]\ntrials = 64\n[[analysis]]\nkind = \"trace_ablation\"\ntrials = 64\n";
  fs::path run = freshDir(name);
  RunOptions opt = quietInto(run);
  std::ostringstream log;
  runExperiment(loadExperiment(writeExperiment(name, text)), opt, log);
  std::ifstream in(run / "summary.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("trace_ablation: a trace the cell never reads changes nothing and one it reads changes the loss",
          "[experiments][analysis]") {
  // A = 0 and frozen: the candidate reads (A * hebb) h = 0, whatever the trace holds.
  nlohmann::json unread = ablationOf("ablation-unread", "[params.A]\nfill = 0\nfrozen = true\n");
  const auto& u = unread["analyses"]["trace_ablation"]["measured"];
  CHECK(u["loss_frozen"].get<double>() == u["loss_intact"].get<double>());
  CHECK(u["loss_shuffled"].get<double>() == u["loss_intact"].get<double>());
  CHECK(u["loss_no_rate"].get<double>() == u["loss_intact"].get<double>());
  CHECK(unread["analyses"]["trace_ablation"]["state"] == "hebb");

  nlohmann::json read = ablationOf("ablation-read", "[params.A]\nfill = 0.5\n");
  const auto& m = read["analyses"]["trace_ablation"]["measured"];
  CHECK(m["loss_frozen"].get<double>() != m["loss_intact"].get<double>());
  CHECK(m["loss_shuffled"].get<double>() != m["loss_intact"].get<double>());
  // The intact walk is the test stage's forward: the same loss up to the order of its sums.
  CHECK(m["loss_intact"].get<double>() == Approx(read["test"]["loss"].get<double>()).epsilon(1e-3));
  for (const char* k : {"r2_outer_last", "r2_running_outer"}) {
    INFO(k);
    CHECK(m[k].get<double>() >= 0.0);
    CHECK(m[k].get<double>() <= 1.0);
  }
}

TEST_CASE("trace_ablation: a cell without a matrix state is skipped and a named state that is missing is refused",
          "[experiments][analysis]") {
  SECTION("skipped") {
    std::string path = writeExperiment("ablation_skip", tinyText() + "\n[[analysis]]\nkind = \"trace_ablation\"\n");
    fs::path run = freshDir("ablation-skip");
    RunOptions opt = quietInto(run);
    std::ostringstream log;
    runExperiment(loadExperiment(path), opt, log);
    std::ifstream in(run / "summary.json");
    CHECK(nlohmann::json::parse(in)["analyses"]["trace_ablation"]["skipped"] == "the cell has no matrix state");
  }
  std::string path = writeExperiment("ablation_nbrc", tinyText() + "\n[[analysis]]\nkind = \"trace_ablation\"\ntrace = \"hebb\"\n");
  fs::path run = freshDir("ablation-nbrc");
  RunOptions opt = quietInto(run);
  std::ostringstream log;
  CHECK_THROWS_WITH(runExperiment(loadExperiment(path), opt, log),
                    Contains("no state named 'hebb'") && Contains("ablation_nbrc.toml:"));
}

TEST_CASE("a cell written with d(x)/dt takes the task's dt, and a cell.consts.dt that disagrees is refused",
          "[experiments][derivative]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("cellc_dt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto experiment = [&](const std::string& cell, const std::string& consts) {
    const fs::path path = dir / "ct.toml";
    std::ofstream(path) << "[experiment]\nname = \"ct\"\n[cell]\nfile = \"" CELLC_SOURCE_DIR "/cells/" << cell
                        << "\"\ndims = { n = 10, n_in = 1, n_out = 2 }\n" << consts
                        << "[task]\nkind = \"sequence\"\ndt = 5\n";
    return path.string();
  };
  // The task steps by 5 ms: the cell's const dt (10 in the file) becomes 5.
  Model m = loadModel(loadExperiment(experiment("dale_rnn_ct.cell", "")));
  CHECK(m.overrides.at("dt") == 5);
  // The same dt given twice is fine; a different one is an error naming both keys.
  CHECK_NOTHROW(loadModel(loadExperiment(experiment("dale_rnn_ct.cell", "consts = { dt = 5 }\n"))));
  CHECK_THROWS_WITH(loadModel(loadExperiment(experiment("dale_rnn_ct.cell", "consts = { dt = 2 }\n"))),
                    Contains("cell.consts.dt = 2 disagrees with task.dt = 5") && Contains("ct.toml:"));
  // A cell without d(x)/dt keeps its own consts (dale_rnn steps by alpha).
  Model plain = loadModel(loadExperiment(experiment("dale_rnn.cell", "")));
  CHECK(plain.overrides.count("dt") == 0);
  fs::remove_all(dir);
}

TEST_CASE("ewc.params and train.rehearse: refused before training at their keys, and ewc.params limits the Fisher",
          "[experiments][ewc]") {
  const std::vector<std::string> quick = {"train.max_steps=5", "phase.task1.ewc.fisher_trials=4", "cell.dims.n=12",
                                          "test.trials=4", "phase.task1.train.dropout=0"};
  auto load = [&](std::vector<std::string> more) {
    more.insert(more.begin(), quick.begin(), quick.end());
    return loadExperiment(CELLC_SOURCE_DIR "/experiments/forgetting.toml", more, "quick");
  };
  std::ostringstream log;
  fs::path bad = freshDir("ewc-params-bad");
  CHECK_THROWS_WITH(runExperiment(load({"phase.task1.ewc.params=[\"W_rec_raw\", \"W_rex\"]"}), quietInto(bad), log),
                    Contains("command line: --set phase.task1.ewc.params") &&
                        Contains("the cell has no param 'W_rex' (its params: x0, W_rec_raw, W_in_raw, W_out_raw)"));
  CHECK_FALSE(fs::exists(bad));
  CHECK_THROWS_WITH(runExperiment(load({"phase.task2.train.rehearse=\"task1\"", "phase.task2.task.duration=2000"}),
                                  quietInto(bad), log),
                    Contains("command line: --set phase.task2.train.rehearse") &&
                        Contains("phase 'task2' cannot rehearse 'task1'") &&
                        Contains("differ in steps per trial (200 and 100)"));
  CHECK_FALSE(fs::exists(bad));

  // The Fisher of the params left out is zero; of the one covered, not.
  fs::path run = freshDir("ewc-params");
  runExperiment(load({"phase.task1.ewc.params=[\"W_rec_raw\"]"}), quietInto(run), log);
  auto sumOf = [&](const char* name) {
    double s = 0;
    for (double v : cellc::npy::read((run / "fisher-task1" / name).string()).data) s += std::fabs(v);
    return s;
  };
  CHECK(sumOf("W_rec_raw.npy") > 0);
  CHECK(sumOf("W_in_raw.npy") == 0);
  CHECK(sumOf("W_out_raw.npy") == 0);
  CHECK(sumOf("x0.npy") == 0);
}
