// Sweep files: expansion (product, zipped groups, seeds, names), errors that name the sweep file,
// the line and the key, validation of every point before anything runs, and sweep.csv.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sweep/Status.h"
#include "sweep/SweepFile.h"
#include "sweep/Table.h"

using namespace cellc::runtime;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kBase = CELLC_SOURCE_DIR "/experiments/copy_first_tiny.toml";
const std::string kHeader = "[sweep]\nbase = \"" + kBase + "\"\n";  // lines 1-2

fs::path scratch() {
  fs::path d = fs::temp_directory_path() / ("cellc-sweep-tests-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string writeSweep(const std::string& name, const std::string& text) {
  fs::path p = scratch() / (name + ".toml");
  std::ofstream(p) << text;
  return p.string();
}

// [axes] lines a0 = [0, 1, ...], one per size (unknown keys: loadSweep does not look them up).
std::string axesOf(const std::vector<size_t>& sizes) {
  std::string text;
  for (size_t k = 0; k < sizes.size(); ++k) {
    text += "a" + std::to_string(k) + " = [";
    for (size_t i = 0; i < sizes[k]; ++i) text += (i ? ", " : "") + std::to_string(i);
    text += "]\n";
  }
  return text;
}

std::string errorOf(const std::string& path) {
  try {
    loadSweep(path);
  } catch (const SweepError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a sweep expands to the product of its axes, zipped groups and seeds", "[sweep]") {
  std::string path = writeSweep("product", kHeader +
                                               "seeds = [1, 2]\n"
                                               "[axes]\n"
                                               "cell.file = [\"../cells/gru.cell\", \"../cells/nbrc.cell\"]\n"
                                               "[[zip]]\n"
                                               "task.dim = [1, 2, 4]\n"
                                               "cell.dims.n_in = [1, 2, 4]\n");
  Sweep s = loadSweep(path);
  REQUIRE(s.size() == 12);
  CHECK(s.axisKeys() == std::vector<std::string>{"cell.file", "task.dim", "cell.dims.n_in", "experiment.seed"});
  CHECK(s.base == kBase);
  CHECK(s.name == "product");
  // First axis outermost, the seeds innermost; zipped keys advance together.
  CHECK(s.run(0).name == "cell=gru,dim=1,dims.n_in=1,seed=1");
  CHECK(s.run(1).name == "cell=gru,dim=1,dims.n_in=1,seed=2");
  CHECK(s.run(2).name == "cell=gru,dim=2,dims.n_in=2,seed=1");
  CHECK(s.run(11).name == "cell=nbrc,dim=4,dims.n_in=4,seed=2");
  for (size_t i = 0; i < s.size(); ++i) {
    SweepRun r = s.run(i);
    REQUIRE(r.point.size() == 4);
    CHECK(r.point[1].toml == r.point[2].toml);
  }
  // A point is a list of --set edits: TOML values, strings quoted.
  CHECK(s.run(11).sets == std::vector<std::string>{"cell.file=\"../cells/nbrc.cell\"", "task.dim=4",
                                                    "cell.dims.n_in=4", "experiment.seed=2"});
  CHECK(s.run(11).point[0].shown == "nbrc");
}

TEST_CASE("axes keep the file's order, and [set] and --set reach every run", "[sweep]") {
  std::string path = writeSweep("order", kHeader +
                                             "profile = \"none\"\n"
                                             "name = \"lr_n\"\n"
                                             "[set]\n"
                                             "train.max_steps = 5\n"
                                             "[axes]\n"
                                             "train.learning_rate = [0.01, 0.1]\n"
                                             "cell.dims.n = [4]\n"
                                             "train.optimizer = [\"sgd\"]\n");
  Sweep s = loadSweep(path, {"train.batch=4"});
  REQUIRE(s.size() == 2);
  CHECK(s.name == "lr_n");
  CHECK(s.profile == "none");
  CHECK(s.run(0).name == "learning_rate=0.01,dims.n=4,optimizer=sgd");
  CHECK(s.run(1).sets == std::vector<std::string>{"train.max_steps=5", "train.batch=4", "train.learning_rate=0.1",
                                                   "cell.dims.n=4", "train.optimizer=\"sgd\""});
  CHECK(loadSweep(path, {}, "quick").profile == "quick");  // the command line's profile wins
}

TEST_CASE("a phase key is a --set edit of that phase", "[sweep]") {
  // `--set phase.NAME.KEY=VALUE` sets KEY in the [[phase]] named NAME (runtime/experiment/Spec.cpp).
  Sweep s = loadSweep(writeSweep("phase", kHeader + "[axes]\nphase.second.ewc.lambda = [0, 10.5]\n"));
  REQUIRE(s.size() == 2);
  CHECK(s.run(1).name == "second.ewc.lambda=10.5");
  CHECK(s.run(1).sets == std::vector<std::string>{"phase.second.ewc.lambda=10.5"});
}

TEST_CASE("run names are plain, unique file names", "[sweep]") {
  CHECK(sanitizeName("cell=a b/c,n=1") == "cell=a_b_c,n=1");
  CHECK(sanitizeName(".hidden") == "_.hidden");
  std::string path = writeSweep("unique", kHeader + "[axes]\ncell.file = [\"a/gru.cell\", \"b/gru.cell\"]\n"
                                                    "train.frozen = [[\"W_out\"], []]\n");
  Sweep s = loadSweep(path);
  REQUIRE(s.size() == 4);
  CHECK(s.run(0).name == "cell=gru,frozen=__W_out__");
  CHECK(s.run(2).name == "cell=gru,frozen=__W_out__-2");
  CHECK(s.run(0).sets[1] == "train.frozen=[\"W_out\"]");
  // A "-K" suffix is never another run's name: "gru-2" stays the run of gru-2.cell.
  for (const char* cells : {"\"gru-2.cell\", \"c1/gru.cell\", \"c2/gru.cell\"",
                            "\"c1/gru.cell\", \"c2/gru.cell\", \"gru-2.cell\""}) {
    Sweep d = loadSweep(writeSweep("dedup", kHeader + "[axes]\ncell.file = [" + std::string(cells) + "]\n"));
    REQUIRE(d.size() == 3);
    std::set<std::string> distinct;
    for (size_t i = 0; i < d.size(); ++i) distinct.insert(d.run(i).name);
    CHECK(distinct == std::set<std::string>{"cell=gru", "cell=gru-2", "cell=gru-3"});
    for (size_t i = 0; i < d.size(); ++i)
      if (d.run(i).point[0].toml == "\"gru-2.cell\"") CHECK(d.run(i).name == "cell=gru-2");
  }
  // Names are made from the point on demand; two points whose names would be equal are found
  // however they meet: values equal once sanitized, or a ',' in a value that reads as the next key.
  Sweep sp = loadSweep(writeSweep("spaces", kHeader + "[axes]\ncell.file = [\"a b.cell\", \"a_b.cell\"]\n"));
  CHECK(sp.run(0).name == "cell=a_b");
  CHECK(sp.run(1).name == "cell=a_b-2");
  Sweep cm = loadSweep(writeSweep("commas", kHeader + "[axes]\na = [\"x,b=1\", \"x\"]\nb = [\"2\", \"1,b=2\"]\n"));
  REQUIRE(cm.size() == 4);
  CHECK(cm.run(0).name == "a=x,b=1,b=2");
  CHECK(cm.run(3).name == "a=x,b=1,b=2-2");
  // Labels that would collide fall back to the whole key.
  Sweep t = loadSweep(writeSweep("labels", kHeader + "[axes]\ntask.dim = [1]\nother.dim = [2]\n"));
  CHECK(t.run(0).name == "task.dim=1,other.dim=2");
  // No axes: one run.
  Sweep u = loadSweep(writeSweep("single", kHeader));
  REQUIRE(u.size() == 1);
  CHECK(u.run(0).name == "run");
}

TEST_CASE("a grid over the limit is refused unless asked for, and runs are expanded on demand", "[sweep]") {
  // 1000 x 101 = 101,000 runs: over kMaxSweepRuns (100,000).
  std::string path = writeSweep("large", kHeader + "[axes]\n" + axesOf({1000, 101}));
  std::string err = errorOf(path);
  CHECK_THAT(err, Contains(path + ": error: the grid has 101000 runs (1000 x 101 values), more than the limit of 100000") &&
                      Contains("pass --allow-large"));
  Sweep s = loadSweep(path, {}, "", /*allowLarge=*/true);
  CHECK(s.size() == 101000);
  // A grid of 10^8 runs loads at once and holds nothing per run: any run is made from its index.
  std::string huge = writeSweep("huge", kHeader + "[axes]\n" + axesOf({10000, 10000}));
  CHECK_THAT(errorOf(huge), Contains("the grid has 100000000 runs"));
  Sweep h = loadSweep(huge, {}, "", true);
  CHECK(h.size() == 100000000);
  SweepRun last = h.run(h.size() - 1);
  CHECK(last.name == "a0=9999,a1=9999");
  CHECK(last.sets == std::vector<std::string>{"a0=9999", "a1=9999"});
  CHECK(h.run(12345678).name == "a0=1234,a1=5678");
}

TEST_CASE("sweep file errors name the file, the line and the key", "[sweep]") {
  struct Case {
    std::string what, text, where, message;
  };
  const std::vector<Case> cases = {
      {"no [sweep]", "[axes]\nx = [1]\n", "", "a sweep needs a [sweep] table"},
      {"no base", "[sweep]\nname = \"x\"\n", ":1:", "[sweep] needs a key 'base'"},
      {"missing base", "[sweep]\nbase = \"nope.toml\"\n", ":2:", "key 'sweep.base': no such experiment file"},
      {"unknown key", kHeader + "sedes = [1]\n", ":3:", "unknown key 'sweep.sedes'"},
      {"unknown table", kHeader + "[axis]\nx = [1]\n", ":3:", "unknown key 'axis'"},
      {"not a list", kHeader + "[axes]\ntrain.batch = 4\n", ":4:", "axis 'train.batch': expected a list of values"},
      {"empty list", kHeader + "[axes]\ntrain.batch = []\n", ":4:", "axis 'train.batch': the list of values is empty"},
      {"twice", kHeader + "[axes]\ntask.dim = [1]\n[[zip]]\ntask.dim = [1, 2]\ncell.dims.n_in = [1, 2]\n", ":6:",
       "key 'task.dim' is swept twice"},
      {"zip lengths", kHeader + "[[zip]]\ntask.dim = [1, 2]\ncell.dims.n_in = [1, 2, 4]\n", ":5:",
       "[[zip]] key 'cell.dims.n_in' has 3 values but 'task.dim' has 2"},
      {"seeds twice", kHeader + "seeds = [1]\n[axes]\nexperiment.seed = [1]\n", ":3:",
       "key 'sweep.seeds' and an axis on 'experiment.seed'"},
      {"seeds not ints", kHeader + "seeds = [1.5]\n", ":3:", "key 'sweep.seeds': expected a list of integers"},
      {"plot axis", kHeader + "[axes]\ntask.dim = [1]\n[[plot]]\nmetric = \"m\"\nx = \"cell.dims.n\"\n", ":7:",
       "[[plot]] axis 'cell.dims.n' is not an axis of the sweep (it has: task.dim)"},
      {"TOML syntax", kHeader + "[axes\n", ":3:", ""},
      // sweep.name is the default folder sweeps/<name>: a plain name, like experiment.name.
      {"name absolute", kHeader + "name = \"/tmp/elsewhere\"\n", ":3:", "sweep.name '/tmp/elsewhere': a name must be"},
      {"name upward", kHeader + "name = \"../../x\"\n", ":3:", "sweep.name '../../x': a name must be"},
      // A grid whose size does not fit 64 bits: 8 axes of 256 values (2^64, which wrapped to "0 runs"),
      // and 6 of 2000 (6.4e19, which wrapped to a number of runs whose stride was 0: SIGFPE).
      {"grid of 2^64", kHeader + "[axes]\n" + axesOf({256, 256, 256, 256, 256, 256, 256, 256}), ":11:",
       "the grid has more runs than can be counted (256 x 256 x 256 x 256 x 256 x 256 x 256 x 256 values: beyond 2^64 at axis 'a7')"},
      {"grid beyond 2^64", kHeader + "[axes]\n" + axesOf({2000, 2000, 2000, 2000, 2000, 2000}), ":9:",
       "beyond 2^64 at axis 'a5'"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      std::string path = writeSweep("bad", c.text);
      std::string err = errorOf(path);
      CHECK_THAT(err, Contains(path + c.where));
      CHECK_THAT(err, Contains(c.message));
    }
  }
}

TEST_CASE("a sweep file that is a directory or missing is an error that says so", "[sweep]") {
  fs::path dir = scratch() / "adir.toml";
  fs::create_directories(dir);
  CHECK_THAT(errorOf(dir.string()), Contains(dir.string() + ": error: the sweep file: cannot read '" + dir.string() +
                                             "'") && Contains("it is a directory"));
  std::string none = (scratch() / "none.toml").string();
  CHECK_THAT(errorOf(none), Contains(none + ": error: the sweep file: cannot read") && Contains("No such file or directory"));
}

TEST_CASE("every point is checked before anything runs, errors at the axis key's line", "[sweep]") {
  SECTION("a valid sweep has no errors") {
    Sweep s = loadSweep(writeSweep("valid", kHeader + "seeds = [1, 2]\n[axes]\ntrain.batch = [4, 8]\n"));
    CHECK(validateSweep(s).empty());
  }
  SECTION("an unknown key, a value out of range and a missing cell: one error each") {
    std::string path = writeSweep("points", kHeader +
                                                "[axes]\n"
                                                "train.learnig_rate = [0.1]\n"   // line 4
                                                "train.batch = [4, 0]\n"         // line 5
                                                "cell.file = [\"../cells/gru.cell\", \"../cells/nope.cell\"]\n");
    std::vector<std::string> errors = validateSweep(loadSweep(path));
    REQUIRE(errors.size() == 3);
    CHECK_THAT(errors[0], Contains(path + ":4:7: error: axis 'train.learnig_rate' = 0.1: --set train.learnig_rate=0.1: unknown key 'train.learnig_rate' (did you mean 'train.learning_rate'?)"));
    CHECK_THAT(errors[1], Contains(path + ":5:7: error: axis 'train.batch' = 0: --set train.batch=0: key 'train.batch' = 0 is out of range: at least 1"));
    CHECK_THAT(errors[1], !Contains(kBase + ":"));  // not the bogus location of the parsed edit
    CHECK_THAT(errors[2], Contains(path + ":6:6: error: axis 'cell.file' = \"../cells/nope.cell\": no such cell file '../cells/nope.cell'"));
  }
  SECTION("a zipped group names the key that is wrong") {
    std::string path = writeSweep("zipbad", kHeader + "[[zip]]\ntask.dim = [1, 2]\ntrain.optimizer = [\"adam\", \"rmsprop\"]\n");
    std::vector<std::string> errors = validateSweep(loadSweep(path));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Contains(path + ":5:7: error: axis 'train.optimizer' = \"rmsprop\""));
    CHECK_THAT(errors[0], Contains("expected one of sgd, adam"));
  }
  SECTION("the sweep's own settings break the base") {
    Sweep s = loadSweep(writeSweep("setbad", kHeader + "[set]\ntrain.batch = -1\n[axes]\ntask.dim = [1]\n"));
    std::vector<std::string> errors = validateSweep(s);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Contains("the base experiment " + kBase + " with the sweep's settings"));
    CHECK_THAT(errors[0], Contains("key 'train.batch' = -1 is out of range"));
  }
  SECTION("a run whose dims break the cell, or whose task does not fit it: found before any run") {
    // Each key is valid alone; the split PBRC's n is 2k, so setting n breaks its shapes, and a
    // task of 3 inputs does not fit a cell compiled for 2.
    std::string path = writeSweep("cellbad", kHeader +
                                                 "[[zip]]\n"
                                                 "cell.file = [\"../cells/pbrc_split.cell\", \"../cells/gru.cell\"]\n"
                                                 "cell.dims.n = [40, 8]\n"
                                                 "[[zip]]\n"
                                                 "task.dim = [2, 3]\n"
                                                 "cell.dims.n_in = [2, 2]\n"
                                                 "cell.dims.n_out = [2, 2]\n");
    std::vector<std::string> errors = validateSweep(loadSweep(path));
    REQUIRE(errors.size() == 3);
    CHECK_THAT(errors[0], Contains(path + ": error: run cell=pbrc_split,dims.n=40,dim=2,dims.n_in=2,dims.n_out=2:"));
    CHECK_THAT(errors[0], Contains("pbrc_split.cell has errors"));
    CHECK_THAT(errors[0], Contains("error[E300]"));
    CHECK_THAT(errors[2], Contains("run cell=gru,dims.n=8,dim=3,dims.n_in=2,dims.n_out=2:"));
    CHECK_THAT(errors[2], Contains("key 'task.dim'"));
  }
  SECTION("a --set or [set] of a swept key is refused: the axis would override it") {
    std::string path = writeSweep("setswept", kHeader + "seeds = [1]\n[set]\ntask.dim = 2\n[axes]\ntask.dim = [1, 4]\n");
    CHECK_THAT(errorOf(path), Contains(path + ":5:6: error: key 'task.dim' is swept (its axis is at " + path + ":7:6)"));
    std::string cli = writeSweep("cliswept", kHeader + "seeds = [1, 2]\n[axes]\ncell.dims.n = [4, 8]\n");
    for (std::string set : {"cell.dims.n=16", "experiment.seed=3"}) {
      std::string err;
      try {
        loadSweep(cli, {set});
      } catch (const SweepError& e) {
        err = e.what();
      }
      CHECK_THAT(err, Contains("command line: --set " + set + ": error: key '" + set.substr(0, set.find('=')) + "' is swept"));
    }
  }
  SECTION("a --set of the command line with an unknown key") {
    Sweep s = loadSweep(writeSweep("cliset", kHeader), {"train.bach=3"});
    std::vector<std::string> errors = validateSweep(s);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Contains("--set train.bach=3: unknown key 'train.bach' (did you mean 'train.batch'?)"));
  }
}

TEST_CASE("summary.json numbers flatten with dotted names", "[sweep]") {
  std::string long_array = "[";
  for (size_t i = 0; i <= kMaxArray; ++i) long_array += (i ? "," : "") + std::to_string(i);
  long_array += "]";
  auto flat = flattenSummary(R"({"training": {"steps": 60, "stop_reason": "max-steps", "resumed": false,
      "target_error": null, "phases": [{"loss": 0.5}, {"loss": 0.25}]}, "seconds": 1.5,
      "range": [1, 2], "long": )" + long_array + "}");
  std::map<std::string, double> m(flat.begin(), flat.end());
  CHECK(m.size() == 7);
  CHECK(m.at("training.steps") == 60);
  CHECK(m.at("training.resumed") == 0);
  CHECK(m.at("training.phases.0.loss") == 0.5);
  CHECK(m.at("training.phases.1.loss") == 0.25);
  CHECK(m.at("range.1") == 2);
  CHECK(m.at("seconds") == 1.5);
  CHECK(!m.count("training.stop_reason"));
  CHECK(!m.count("long.0"));
  CHECK(numberText(0.1) == "0.1");
  CHECK(numberText(1.0 / 3) == "0.3333333333333333");
}

TEST_CASE("sweep.csv holds each run's point, status and numbers", "[sweep]") {
  fs::path out = scratch() / "table";
  fs::remove_all(out);
  Sweep s = loadSweep(writeSweep("table", kHeader + "seeds = [1, 2]\n[axes]\ncell.file = [\"../cells/gru.cell\"]\n"));
  REQUIRE(s.size() == 2);
  fs::create_directories(out / s.run(0).name);
  RunStatus st;
  st.state = RunState::Finished, st.exitCode = 0;
  writeStatus(out / s.run(0).name, st);
  std::ofstream(out / s.run(0).name / "summary.json") << R"({"cell": {"name": "gru", "dims": {"n": 16}},
      "training": {"best_validation_error": 0.125}, "experiment": {"seed": 3}})";
  writeSweepTable(s, out);
  std::ifstream in(out / "sweep.csv");
  std::stringstream ss;
  ss << in.rdbuf();
  // experiment.seed is an axis: the summary's number of that name is not repeated.
  CHECK(ss.str() == "run,cell.file,experiment.seed,status,exit_code,cell.dims.n,training.best_validation_error\n"
                    "\"cell=gru,seed=1\",gru,1,finished,0,16,0.125\n"
                    "\"cell=gru,seed=2\",gru,2,pending,,,\n");
  CHECK(runDone(out / s.run(0).name));
  CHECK(!runDone(out / s.run(1).name));
}

TEST_CASE("sweep.csv on a full disk: the path and the OS reason, the old table kept, no temp left", "[sweep]") {
  fs::path out = scratch() / "fulldisk";
  fs::remove_all(out);
  fs::create_directories(out);
  Sweep s = loadSweep(writeSweep("fulldisk", kHeader + "seeds = [1, 2, 3, 4, 5, 6, 7, 8]\n"));
  writeSweepTable(s, out);
  std::ifstream in(out / "sweep.csv");
  std::string before((std::istreambuf_iterator<char>(in)), {});
  {
    // A file size limit (SIGXFSZ ignored) fails writes with EFBIG as a full disk does with ENOSPC.
    auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit lim = old;
    lim.rlim_cur = 16;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    std::string err;
    try {
      writeSweepTable(s, out);
    } catch (const SweepError& e) {
      err = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, oldHandler);
    CHECK_THAT(err, Contains("cannot write " + (out / "sweep.csv").string()) && Contains("File too large"));
  }
  std::ifstream again(out / "sweep.csv");
  CHECK(std::string((std::istreambuf_iterator<char>(again)), {}) == before);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"sweep.csv"});
}
