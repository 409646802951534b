// Experiment files (experiments/*.toml): what a run trains and analyses. One schema table
// (Spec.cpp) lists every key with its type, default, range, meaning and the field it fills; it
// drives validation (unknown keys, wrong types and out-of-range values are errors with file, line
// and key), the defaults, and the key reference (`cellc run --keys`, docs/experiments.md).
// loadExperiment decodes a file once into the typed settings below; the rest of cellc reads
// fields, never keys.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cellc::runtime {

struct ExperimentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A typed value as read from the file, with where it came from.
struct Value {
  enum class Kind { Int, Float, Bool, String, Floats, Strings } kind;
  double num = 0;
  bool flag = false;
  std::string str;
  std::vector<double> nums;
  std::vector<std::string> strs;
  std::string where;  // "file:line:col"
};

// Where each key set in a table came from, by key: "file:line:col" or "command line: --set ...".
using Locations = std::map<std::string, std::string>;

// The typed settings. Their members start at zero: the schema's defaults fill them when an
// experiment is loaded (each default is written once, in the schema table).

// task.*: every kind's keys; a kind reads those its schema doc names.
struct TaskSettings {
  std::string kind;
  double dt = 0, duration = 0, onsetMin = 0, onsetMax = 0, baseline = 0, tauIn = 0, sigmaIn = 0;
  double inputAmp = 0, inputDecay = 0, inputSign = 0, period = 0;
  int64_t outputs = 0;
  double height = 0, offset = 0, spacing = 0, width = 0;
  bool reverse = false;
  int64_t tasks = 0, perTask = 0;
  int64_t steps = 0, dim = 0;
  double fixation = 0, stimulus = 0, decision = 0;
  std::vector<double> coherences;
};

// train.*
struct TrainSettings {
  std::string optimizer;
  double learningRate = 0, clipNorm = 0;
  int64_t batch = 0, maxSteps = 0, validateEvery = 0, validationBatch = 0;
  std::string metric;
  double targetError = 0, targetLoss = 0;
  int64_t lossWindow = 0, patience = 0;
  bool noise = false;
  std::vector<std::string> frozen;
  double dropout = 0;
  bool dropoutPerStep = false, dropoutFixed = false;
  bool inputStage = false, flushDenormals = true;
  int64_t segment = 0, memoryBudgetMb = 0, threads = 0, batchShards = 0;
  double omega = 0;
  std::string omegaState;
  int64_t checkpointEvery = 0;
  std::vector<double> lossMilestones;
  std::string rehearse;  // an earlier phase whose task fills half of every batch; empty: none
};

// ewc.*
struct EwcSettings {
  double lambda = 0;
  int64_t fisherTrials = 0;
  std::string form;                 // "fisher" (Kirkpatrick et al.) or "course" (pycog's course trainer)
  std::vector<std::string> params;  // the params the penalty covers; empty: all
};

// What a phase may set: its task, its training and its consolidation.
struct PhaseSettings {
  TaskSettings task;
  TrainSettings train;
  EwcSettings ewc;
};

// One training phase: the top level's settings with the [[phase]] table's over them.
struct PhaseSpec : PhaseSettings {
  std::string name;
  Locations where;  // "task.dt", "train.batch", ...: the phase's own, else the top level's
};

// One [[analysis]] table: the keys of every kind; a kind reads those its schema doc names.
struct AnalysisSpec {
  std::string kind, name, after, task;  // name, after, task: empty when not set
  double dt = 0, tau = 0;
  std::string alpha, matrix;
  std::vector<double> columns, rows, values;
  double onset = 0;
  int64_t exampleColumn = 0;
  double exampleValue = 0;
  std::vector<double> plotValues, plotColumns;
  std::optional<int64_t> trials;                   // no default: each kind has its own
  std::string trace, rate;                         // trace: empty when not set
  std::optional<std::vector<std::string>> states;  // not set: every state
  std::string state;
  double excitatory = 0;
  int64_t bins = 0;
  double threshold = 0;
  Locations where;  // "kind", "dt", ...
};

struct Experiment {
  std::string path;  // the .toml file
  std::string text;  // the resolved experiment, as TOML
  // experiment.*, cell.file, test.*, output.*
  std::string name, description;  // empty when not set (the run's name is then the file's stem)
  int64_t seed = 0;
  std::string cellFile;  // empty when not set
  int64_t testTrials = 0;
  bool plot = false;
  std::map<std::string, double> dims, consts;  // cell.dims.*, cell.consts.*
  struct ParamSetting {
    std::optional<double> fill;
    std::string value;  // "partial_identity", ...
    bool frozen = false;
  };
  std::map<std::string, ParamSetting> params;  // params.*
  PhaseSettings base;                // the top level's task.*, train.*, ewc.*: every phase's start
  std::vector<PhaseSpec> phases;     // at least one
  std::vector<AnalysisSpec> analyses;
  Locations where;                   // the top level's keys
};

// An analysis' name in summary.json: analysis.name, else its kind (unique in an experiment).
std::string analysisName(const AnalysisSpec& a);

// The phase named `name`, or null.
const PhaseSpec* findPhase(const Experiment& e, const std::string& name);

// Where a phase key was set: "file:line:col", "command line: --set ...", or the file (a default).
std::string keyWhere(const Experiment& e, const PhaseSpec& p, const std::string& key);

// The binding of a schema key to its field: the struct that holds it and functions, made from a
// member pointer in the schema row (Spec.cpp), that write and read it.
struct FieldRef {
  enum class Scope { None, Experiment, Phase, Analysis };
  Scope scope = Scope::None;  // None: a key filled by hand (cell.dims.*, params.*, phase names)
  void (*set)(void* owner, const Value& v) = nullptr;
  Value (*get)(const void* owner) = nullptr;
};

// One key of the schema. Paths use dots; a '*' segment matches any name (dims, params) and
// "phase[]" / "analysis[]" stand for array-of-table entries.
struct KeySpec {
  std::string path;
  std::string type;  // int, float, bool, string, floats, strings: the field's C++ type
  std::string def;   // default as TOML text, empty: required or none
  std::string doc;
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices;
  FieldRef field;
};
const std::vector<KeySpec>& experimentKeys();
std::string keyReference();  // markdown table of every key

// Run, phase and sweep names (every name from a file that becomes a folder) are plain file names:
// letters, digits, '_', '-', '.', not starting with '.', at most 100 characters. kPlainName says
// so in a message.
bool isPlainName(const std::string& s);
extern const char* const kPlainName;

// Reads and validates an experiment file; `sets` are `key=value` overrides (TOML values) applied
// after `profile` (a [profiles.NAME] table of the file). Throws ExperimentError.
Experiment loadExperiment(const std::string& path, const std::vector<std::string>& sets = {},
                          const std::string& profile = "");

// The experiment of `key=value` edits alone, with no file (cellc.train's options): the same
// schema and checks as a file's keys, each error located at "ORIGIN: EDIT". Nothing is required.
Experiment experimentFromEdits(const std::vector<std::string>& edits, const std::string& origin);

}  // namespace cellc::runtime
