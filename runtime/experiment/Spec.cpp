#include "experiment/Spec.h"

#include "diag/Text.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <type_traits>

namespace cellc::runtime {

namespace {

// The binder: a schema row names its field by a member pointer, from which `bind` makes the
// functions that write and read it and takes the key's type, so the table, the fields and their
// types cannot drift apart (tests/experiments/test_spec_fields.cpp checks every field has a row).

// The C++ type of a field, its schema type and its conversions from and to a Value.
template <class T> struct FieldType;
template <> struct FieldType<int64_t> {
  static constexpr const char* name = "int";
  static void set(int64_t& f, const Value& v) { f = static_cast<int64_t>(v.num); }
  static Value get(const int64_t& f) { return {Value::Kind::Int, static_cast<double>(f)}; }
};
template <> struct FieldType<double> {
  static constexpr const char* name = "float";
  static void set(double& f, const Value& v) { f = v.num; }
  static Value get(const double& f) { return {Value::Kind::Float, f}; }
};
template <> struct FieldType<bool> {
  static constexpr const char* name = "bool";
  static void set(bool& f, const Value& v) { f = v.flag; }
  static Value get(const bool& f) { return {Value::Kind::Bool, 0, f}; }
};
template <> struct FieldType<std::string> {
  static constexpr const char* name = "string";
  static void set(std::string& f, const Value& v) { f = v.str; }
  static Value get(const std::string& f) { return {Value::Kind::String, 0, false, f}; }
};
template <> struct FieldType<std::vector<double>> {
  static constexpr const char* name = "floats";
  static void set(std::vector<double>& f, const Value& v) { f = v.nums; }
  static Value get(const std::vector<double>& f) { return {Value::Kind::Floats, 0, false, "", f}; }
};
template <> struct FieldType<std::vector<std::string>> {
  static constexpr const char* name = "strings";
  static void set(std::vector<std::string>& f, const Value& v) { f = v.strs; }
  static Value get(const std::vector<std::string>& f) { return {Value::Kind::Strings, 0, false, "", {}, f}; }
};
// A key without a default: not set is a state of its own.
template <class T> struct FieldType<std::optional<T>> {
  static constexpr const char* name = FieldType<T>::name;
  static void set(std::optional<T>& f, const Value& v) { FieldType<T>::set(f.emplace(), v); }
  static Value get(const std::optional<T>& f) { return FieldType<T>::get(f.value_or(T{})); }
};

// The struct a field's struct lives in: task.*, train.* and ewc.* fields are a phase's settings.
template <class S> struct Home {
  using Owner = S;
  template <class O> static auto& in(O& o) { return o; }
};
template <> struct Home<TaskSettings> {
  using Owner = PhaseSettings;
  template <class O> static auto& in(O& o) { return o.task; }
};
template <> struct Home<TrainSettings> {
  using Owner = PhaseSettings;
  template <class O> static auto& in(O& o) { return o.train; }
};
template <> struct Home<EwcSettings> {
  using Owner = PhaseSettings;
  template <class O> static auto& in(O& o) { return o.ewc; }
};

template <class O> constexpr FieldRef::Scope scopeOf() {
  if constexpr (std::is_same_v<O, Experiment>) return FieldRef::Scope::Experiment;
  else if constexpr (std::is_same_v<O, PhaseSettings>) return FieldRef::Scope::Phase;
  else {
    static_assert(std::is_same_v<O, AnalysisSpec>, "a schema field lives in Experiment, a phase or an analysis");
    return FieldRef::Scope::Analysis;
  }
}

template <class C, class T> C classOf(T C::*);
template <class C, class T> T memberOf(T C::*);

// A row's field and type.
struct Bound {
  std::string type;
  FieldRef field;
};

template <auto M> Bound bind() {
  using S = decltype(classOf(M));
  using T = decltype(memberOf(M));
  using O = typename Home<S>::Owner;
  FieldRef f;
  f.scope = scopeOf<O>();
  f.set = [](void* o, const Value& v) { FieldType<T>::set(Home<S>::in(*static_cast<O*>(o)).*M, v); };
  f.get = [](const void* o) { return FieldType<T>::get(Home<S>::in(*static_cast<const O*>(o)).*M); };
  return {FieldType<T>::name, f};
}

// A key that fills a map or names a table (cell.dims.*, params.*, phase[].name): read by hand.
Bound unbound(const char* type) { return {type, {}}; }

struct Row : KeySpec {
  Row(const char* path_, Bound b, const char* def_, const char* doc_, double min_ = -1e300,
      double max_ = 1e300, std::vector<std::string> choices_ = {})
      : KeySpec{path_, b.type, def_, doc_, min_, max_, std::move(choices_), b.field} {}
};

// The schema. Task keys apply to the kinds named in their doc; analysis keys to column_shift.
const std::vector<Row> kRows = {
    {"experiment.name", bind<&Experiment::name>(), "", "run name (default: the file's stem)"},
    {"experiment.description", bind<&Experiment::description>(), "", "one line on what the experiment shows"},
    {"experiment.seed", bind<&Experiment::seed>(), "1", "master seed of every random stream", 0, 1e18},
    {"cell.file", bind<&Experiment::cellFile>(), "", "the .cell file, relative to the experiment file (required)"},
    {"cell.dims.*", unbound("int"), "", "dim overrides, like -D", 1, 1 << 28},
    {"cell.consts.*", unbound("float"), "", "scalar const overrides, like -D"},
    {"params.*.value", unbound("string"), "", "set a param after initialization", 0, 0,
     {"partial_identity", "identity", "zeros", "initialized"}},
    {"params.*.fill", unbound("float"), "", "set every entry of a param after initialization"},
    {"params.*.frozen", unbound("bool"), "false", "the param does not train"},
    {"task.kind", bind<&TaskSettings::kind>(), "", "the task (required)", 0, 0,
     {"sequence", "multi_sequence", "copy_first", "perceptual_decision"}},
    {"task.dt", bind<&TaskSettings::dt>(), "10", "sequence, multi_sequence, perceptual_decision: time step (ms)", 1e-9, 1e9},
    {"task.duration", bind<&TaskSettings::duration>(), "1000", "sequence, multi_sequence: trial length T (ms)", 1e-9, 1e9},
    {"task.onset_min", bind<&TaskSettings::onsetMin>(), "100", "sequence, multi_sequence: onset t_s ~ U(min, max) (ms)"},
    {"task.onset_max", bind<&TaskSettings::onsetMax>(), "200", "sequence, multi_sequence: see onset_min (ms)"},
    {"task.baseline", bind<&TaskSettings::baseline>(), "0.2", "sequence, multi_sequence, perceptual_decision: input baseline"},
    {"task.tau_in", bind<&TaskSettings::tauIn>(), "100", "sequence, multi_sequence, perceptual_decision: input noise time constant (ms)", 1e-9},
    {"task.sigma_in", bind<&TaskSettings::sigmaIn>(), "0.01", "sequence, multi_sequence, perceptual_decision: input noise scale", 0},
    {"task.input_amp", bind<&TaskSettings::inputAmp>(), "4", "sequence: input amplitude"},
    {"task.input_decay", bind<&TaskSettings::inputDecay>(), "800", "sequence, multi_sequence: input decay time (ms)", 1e-9},
    {"task.input_sign", bind<&TaskSettings::inputSign>(), "-1", "sequence: -1 decaying, +1 growing input", -1, 1},
    {"task.period", bind<&TaskSettings::period>(), "0", "sequence: input modulation period (ms); 0: none", 0},
    {"task.outputs", bind<&TaskSettings::outputs>(), "10", "sequence: number of outputs (Gaussian bumps)", 1, 1e6},
    {"task.height", bind<&TaskSettings::height>(), "12", "sequence, multi_sequence: bump height"},
    {"task.offset", bind<&TaskSettings::offset>(), "80", "sequence, multi_sequence: first bump's delay after onset (ms)"},
    {"task.spacing", bind<&TaskSettings::spacing>(), "80", "sequence, multi_sequence: delay between bumps (ms)"},
    {"task.width", bind<&TaskSettings::width>(), "20", "sequence, multi_sequence: bump width sigma (ms)", 1e-9},
    {"task.reverse", bind<&TaskSettings::reverse>(), "false", "sequence: bumps in reverse order"},
    {"task.tasks", bind<&TaskSettings::tasks>(), "1", "multi_sequence: number of sequences K", 1, 1e6},
    {"task.per_task", bind<&TaskSettings::perTask>(), "5", "multi_sequence: outputs per sequence", 1, 1e6},
    {"task.steps", bind<&TaskSettings::steps>(), "300", "copy_first: sequence length T", 1, 1e9},
    {"task.dim", bind<&TaskSettings::dim>(), "1", "copy_first: input dimension D", 1, 1e6},
    {"task.fixation", bind<&TaskSettings::fixation>(), "100", "perceptual_decision: fixation epoch, no evidence and no target (ms)", 0, 1e9},
    {"task.stimulus", bind<&TaskSettings::stimulus>(), "800", "perceptual_decision: stimulus epoch, the evidence (ms)", 1e-9, 1e9},
    {"task.decision", bind<&TaskSettings::decision>(), "300", "perceptual_decision: decision epoch, the target is the choice (ms)", 1e-9, 1e9},
    {"task.coherences", bind<&TaskSettings::coherences>(), "[1, 2, 4, 8, 16]", "perceptual_decision: coherences (percent, 0 to 100), one drawn per trial: the two inputs differ by it"},
    {"train.optimizer", bind<&TrainSettings::optimizer>(), "\"sgd\"", "optimizer", 0, 0, {"sgd", "adam"}},
    {"train.learning_rate", bind<&TrainSettings::learningRate>(), "0.001", "learning rate", 0, 1e9},
    {"train.clip_norm", bind<&TrainSettings::clipNorm>(), "1.0", "global gradient-norm clip; 0: none", 0},
    {"train.batch", bind<&TrainSettings::batch>(), "20", "trials per step", 1, 1e7},
    {"train.max_steps", bind<&TrainSettings::maxSteps>(), "100000", "at most this many steps", 0, 1e12},
    {"train.validate_every", bind<&TrainSettings::validateEvery>(), "500", "validate every this many steps; 0: never", 0, 1e12},
    {"train.validation_batch", bind<&TrainSettings::validationBatch>(), "100", "fresh trials per validation", 1, 1e7},
    {"train.metric", bind<&TrainSettings::metric>(), "\"rmse\"", "validation error: rmse, the loss itself, or error_rate (1 - accuracy of the choices; a classification task)", 0, 0,
     {"rmse", "loss", "error_rate"}},
    {"train.target_error", bind<&TrainSettings::targetError>(), "-1", "stop when validation error <= this; < 0: off"},
    {"train.target_loss", bind<&TrainSettings::targetLoss>(), "-1", "stop when a minibatch loss (or the mean of train.loss_window of them) < this; < 0: off"},
    {"train.loss_window", bind<&TrainSettings::lossWindow>(), "1", "train.target_loss and train.loss_milestones read the mean of the last this many minibatch losses, so one lucky minibatch cannot stop a run or mark a milestone; 1: each minibatch alone", 1, 1e9},
    {"train.patience", bind<&TrainSettings::patience>(), "0", "stop after this many validations without improvement; 0: off", 0},
    {"train.noise", bind<&TrainSettings::noise>(), "true", "draw the cell's normal noise; off: zeros (dropout masks follow train.dropout)"},
    {"train.frozen", bind<&TrainSettings::frozen>(), "[]", "params that do not train"},
    {"train.dropout", bind<&TrainSettings::dropout>(), "0", "probability of dropping a unit of the cell's `~ dropout()` noise in training steps (the cell must declare one)", 0, 0.99},
    {"train.dropout_per_step", bind<&TrainSettings::dropoutPerStep>(), "false", "a new dropout mask every step (default: per trial)"},
    {"train.dropout_fixed", bind<&TrainSettings::dropoutFixed>(), "false", "one 0/1 dropout mask for the whole phase, not rescaled by 1 / (1 - p): pycog's course trainer (seed 000's E3); default: inverted dropout, a new mask per trial"},
    {"train.segment", bind<&TrainSettings::segment>(), "0", "BPTT segment length; 0: automatic", 0, 1e9},
    {"train.memory_budget_mb", bind<&TrainSettings::memoryBudgetMb>(), "1024", "BPTT memory for states and tapes, and at batches up to 4 the weight-gradient operands of one segment (MB); beyond it, segments", 1, 1e9},
    {"train.threads", bind<&TrainSettings::threads>(), "0", "threads of large matrix products, of large batch-split kernels (a Hebbian trace's [B, n, n] work, split only while measuring shows that it pays) and of BPTT's batch shards; 0: all cores. Results are the same for every count (a product large enough to split may differ in the last bits between one thread and more)", 0, 1024},
    {"train.flush_denormals", bind<&TrainSettings::flushDenormals>(), "true", "flush denormal floats to zero while training (x86 FTZ and DAZ): a gate whose gradient underflows otherwise slows every product that reads it (copy-first's GRU trained 4.4x faster, its loss the same to every bit)"},
    {"train.input_stage", bind<&TrainSettings::inputStage>(), "false", "run the step's products of inputs and params alone (a GRU's W_zx @ x) once over all steps x batch rows before the recurrence, and their weight gradients once after it (`cellc emit-llvm --plan` shows the staged form; a cell without such a product, or a run where BPTT forms the weight gradients per segment (batches of at most 4, or a weight gradient of 2^19 elements or more), runs as without it); numbers differ from the default in the last bits (the sums over steps are one product). Measured slower on copy-first (D = 32, H = 48), so off by default"},
    {"train.batch_shards", bind<&TrainSettings::batchShards>(), "0", "BPTT cuts the batch into this many shards that run side by side (each on one thread); 0: automatic (2 when each gets 8 trials or more and the step's products are small, else 1); 1: none. Results depend on it (the batch sums are split), not on train.threads", 0, 4096},
    {"train.omega", bind<&TrainSettings::omega>(), "0", "weight of pycog's vanishing-gradient regularizer Omega (pycog: 2); 0: off", 0},
    {"train.omega_state", bind<&TrainSettings::omegaState>(), "\"\"", "the state Omega regularizes (default: the first)"},
    {"train.checkpoint_every", bind<&TrainSettings::checkpointEvery>(), "1000", "checkpoint every this many steps", 1, 1e12},
    {"train.loss_milestones", bind<&TrainSettings::lossMilestones>(), "[]", "record the first step (and its training seconds) whose minibatch loss (or window mean, train.loss_window) is below each of these"},
    {"train.rehearse", bind<&TrainSettings::rehearse>(), "\"\"", "an earlier phase: every batch (training and validation) is half this phase's trials and half that phase's task's, so both are trained jointly (rehearsal; E3's upper reference); the test stage still scores each task alone. Empty: this phase's task only"},
    {"test.trials", bind<&Experiment::testTrials>(), "0", "after training, the loss on this many fresh trials of each phase's task (summary.json test); 0: none", 0, 1e8},
    {"ewc.lambda", bind<&EwcSettings::lambda>(), "0", "after this phase, consolidate it with EWC of this strength", 0},
    {"ewc.fisher_trials", bind<&EwcSettings::fisherTrials>(), "200", "trials for the diagonal Fisher", 1, 1e9},
    {"ewc.form", bind<&EwcSettings::form>(), "\"fisher\"", "fisher: the task's diagonal Fisher at its solution (Kirkpatrick et al.); course: pycog's course trainer as its code reads, F recomputed at every later step at the current params on the current minibatch from log softmax of the outputs (no gradient through F; ewc.fisher_trials unused)", 0, 0, {"fisher", "course"}},
    {"ewc.params", bind<&EwcSettings::params>(), "[]", "the params the penalty covers (pycog's course trainer: its W_in, W_rec and W_out); []: all"},
    {"phase[].name", unbound("string"), "", "phase name; a [[phase]] may set task.*, train.* and ewc.*"},
    {"analysis[].kind", bind<&AnalysisSpec::kind>(), "", "the analysis", 0, 0,
     {"column_shift", "trace", "ei_rates", "weight_histogram", "readout_activity", "trace_ablation"}},
    {"analysis[].name", bind<&AnalysisSpec::name>(), "", "the analysis' name in summary.json and its arrays' prefix (default: the kind; unique)"},
    {"analysis[].after", bind<&AnalysisSpec::after>(), "", "run on the params after this phase (default: the last)"},
    {"analysis[].task", bind<&AnalysisSpec::task>(), "", "trace: the phase whose task the trials come from (default: the first)"},
    {"analysis[].dt", bind<&AnalysisSpec::dt>(), "0.5", "column_shift: time step of the analysis (ms)", 1e-9},
    {"analysis[].tau", bind<&AnalysisSpec::tau>(), "50", "column_shift: the cell's time constant (ms): alpha = dt/tau", 1e-9},
    {"analysis[].alpha", bind<&AnalysisSpec::alpha>(), "\"alpha\"", "column_shift: the const that holds dt/tau"},
    {"analysis[].matrix", bind<&AnalysisSpec::matrix>(), "\"W_rec\"", "column_shift: the intermediate to edit"},
    {"analysis[].columns", bind<&AnalysisSpec::columns>(), "[80, 99]", "column_shift: first and last column"},
    {"analysis[].rows", bind<&AnalysisSpec::rows>(), "[0, 79]", "column_shift: first and last row edited"},
    {"analysis[].values", bind<&AnalysisSpec::values>(), "[-0.2, 0.2, 21]", "column_shift: lo, hi, count of edits v"},
    {"analysis[].onset", bind<&AnalysisSpec::onset>(), "150", "column_shift, trace: onset of the fixed trial (ms)"},
    {"analysis[].example_column", bind<&AnalysisSpec::exampleColumn>(), "86", "column_shift: the edit shown in the heatmap"},
    {"analysis[].example_value", bind<&AnalysisSpec::exampleValue>(), "0.04", "column_shift: see example_column"},
    {"analysis[].plot_values", bind<&AnalysisSpec::plotValues>(), "[-0.12, -0.04, 0.04, 0.12]", "column_shift: v per curve"},
    {"analysis[].plot_columns", bind<&AnalysisSpec::plotColumns>(), "[84, 88, 92, 96]", "column_shift: column per curve"},
    {"analysis[].trials", bind<&AnalysisSpec::trials>(), "", "trace (1; one per sequence for multi_sequence), ei_rates, readout_activity (100), trace_ablation (1000): trials", 1, 100000},
    {"analysis[].trace", bind<&AnalysisSpec::trace>(), "", "trace_ablation: the matrix state (default: the first state with two dims)"},
    {"analysis[].rate", bind<&AnalysisSpec::rate>(), "\"eta\"", "trace_ablation: the scalar param that sets the trace's rate"},
    {"analysis[].states", bind<&AnalysisSpec::states>(), "", "trace: the states to record (default: every state)"},
    {"analysis[].state", bind<&AnalysisSpec::state>(), "\"x\"", "ei_rates: the state whose relu is the rate"},
    {"analysis[].excitatory", bind<&AnalysisSpec::excitatory>(), "0.8", "ei_rates, weight_histogram: fraction of excitatory units (the first ones)", 0, 1},
    {"analysis[].bins", bind<&AnalysisSpec::bins>(), "100", "weight_histogram: number of bins", 1, 100000},
    {"analysis[].threshold", bind<&AnalysisSpec::threshold>(), "0.1", "readout_activity: an output is active above this fraction of the largest target", 0, 1},
    {"output.plot", bind<&Experiment::plot>(), "true", "draw the figures at the end (python3 + matplotlib)"},
};
const std::vector<KeySpec> kKeys(kRows.begin(), kRows.end());

std::string where(const std::string& file, const toml::source_region& r) {
  return file + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// Matches a concrete path ("cell.dims.n", "phase[].train.batch") against a schema path.
bool matches(const std::string& schema, const std::string& path) {
  size_t i = 0, j = 0;
  while (i < schema.size() && j < path.size()) {
    if (schema[i] == '*') {
      ++i;
      while (j < path.size() && path[j] != '.') ++j;
      continue;
    }
    if (schema[i] != path[j]) return false;
    ++i, ++j;
  }
  return i == schema.size() && j == path.size();
}

// Phase tables hold task.*, train.* and ewc.* keys, checked as the top-level ones.
std::string schemaPath(const std::string& path) {
  const std::string ph = "phase[].";
  if (path.rfind(ph, 0) == 0 && path != "phase[].name") return path.substr(ph.size());
  return path;
}

const KeySpec* findKey(const std::string& path) {
  std::string p = schemaPath(path);
  for (const KeySpec& k : kKeys)
    if (matches(k.path, p)) return &k;
  return nullptr;
}


std::string suggest(const std::string& path) {
  std::string best;
  size_t bestD = 4;
  for (const KeySpec& k : kKeys) {
    size_t d = editDistance(schemaPath(path), k.path);
    if (d < bestD) bestD = d, best = k.path;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

[[noreturn]] void fail(const std::string& at, const std::string& msg) {
  throw ExperimentError(at + ": error: " + msg);
}

Value readValue(const KeySpec& spec, const std::string& path, const toml::node& node,
                const std::string& at) {
  Value v;
  v.where = at;
  auto typeName = [&]() -> std::string {
    switch (node.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a number";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "an array";
      case toml::node_type::table: return "a table";
      default: return "a date or time";
    }
  };
  auto wrongType = [&](const std::string& want) {
    fail(at, "key '" + path + "': expected " + want + ", got " + typeName());
  };
  if (spec.type == "int") {
    if (!node.is_integer()) wrongType("an integer");
    v.kind = Value::Kind::Int;
    v.num = static_cast<double>(*node.value<int64_t>());
  } else if (spec.type == "float") {
    if (!node.is_number()) wrongType("a number");
    v.kind = Value::Kind::Float;
    v.num = *node.value<double>();
  } else if (spec.type == "bool") {
    if (!node.is_boolean()) wrongType("true or false");
    v.kind = Value::Kind::Bool;
    v.flag = *node.value<bool>();
  } else if (spec.type == "string") {
    if (!node.is_string()) wrongType("a string");
    v.kind = Value::Kind::String;
    v.str = *node.value<std::string>();
  } else if (spec.type == "floats") {
    const toml::array* a = node.as_array();
    if (!a) wrongType("an array of numbers");
    v.kind = Value::Kind::Floats;
    for (const toml::node& e : *a) {
      if (!e.is_number()) wrongType("an array of numbers");
      v.nums.push_back(*e.value<double>());
      if (!std::isfinite(v.nums.back()))
        fail(at, "key '" + path + "': element " + std::to_string(v.nums.size() - 1) +
                     " is not a finite number");
    }
  } else if (spec.type == "strings") {
    const toml::array* a = node.as_array();
    if (!a) wrongType("an array of strings");
    v.kind = Value::Kind::Strings;
    for (const toml::node& e : *a) {
      if (!e.is_string()) wrongType("an array of strings");
      v.strs.push_back(*e.value<std::string>());
    }
  }
  if ((v.kind == Value::Kind::Int || v.kind == Value::Kind::Float) &&
      (!std::isfinite(v.num) || v.num < spec.min || v.num > spec.max)) {
    std::ostringstream os;
    os << "key '" << path << "' = " << v.num << " is out of range";
    if (spec.min > -1e300) os << ": at least " << spec.min;
    if (spec.max < 1e300) os << (spec.min > -1e300 ? ", " : ": ") << "at most " << spec.max;
    fail(at, os.str());
  }
  if (!spec.choices.empty() && v.kind == Value::Kind::String &&
      std::find(spec.choices.begin(), spec.choices.end(), v.str) == spec.choices.end()) {
    std::string list;
    for (const std::string& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
    fail(at, "key '" + path + "' = \"" + v.str + "\": expected one of " + list);
  }
  return v;
}

// Walks a table, validating every leaf against the schema into `out` (keyed by path without
// the "phase[]." prefix for phases, so phases and the top level share lookups).
// Values set on the command line (--set) are located there, not in the file.
using Origins = std::map<const toml::node*, std::string>;

void walk(const std::string& file, const toml::table& t, const std::string& prefix,
          std::map<std::string, Value>& out, const Origins& origins) {
  for (auto&& [k, node] : t) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    auto origin = origins.find(&node);
    std::string at = origin != origins.end() ? origin->second : where(file, k.source());
    if (const toml::table* sub = node.as_table()) {
      if (findKey(path)) fail(at, "key '" + path + "' takes a value, not a table");
      walk(file, *sub, path, out, origins);
      continue;
    }
    const KeySpec* spec = findKey(path);
    if (!spec) fail(at, "unknown key '" + path + "'" + suggest(path));
    out[schemaPath(path)] = readValue(*spec, path, node, at);
  }
}

// Sets `path` (dotted) in `root` to the TOML value text `value` (a --set or a profile entry).
const toml::node* setPath(toml::table& root, const std::string& path, const toml::node& value) {
  toml::table* t = &root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      t->insert_or_assign(part, value);
      return t->get(part);
    }
    toml::node* next = t->get(part);
    if (!next || !next->is_table()) {
      t->insert_or_assign(part, toml::table{});
      next = t->get(part);
    }
    t = next->as_table();
    start = dot + 1;
  }
}

void flatten(const toml::table& t, const std::string& prefix,
             std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [k, node] : t) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = node.as_table()) flatten(*sub, path, out);
    else out.push_back({path, &node});
  }
}

// The name of the i-th [[phase]] table: its `name`, or "phaseN" (1-based) when it has none.
std::string phaseName(const toml::table& t, size_t i) {
  if (auto n = t["name"].value<std::string>()) return *n;
  return "phase" + std::to_string(i + 1);
}

std::string elide(const std::string& s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max) + "... (" + std::to_string(s.size()) + " characters)";
}

// Applies one edit (a profile entry or --set) to the tree. "phase.NAME.KEY" edits KEY (task.*,
// train.*, ewc.*) of the [[phase]] named NAME; any other key edits the top level.
const toml::node* applyEdit(toml::table& root, const std::string& key, const toml::node& value,
                            const std::string& at) {
  if (key.rfind("phase.", 0) == 0) {
    size_t dot = key.find('.', 6);
    std::string name = key.substr(6, dot == std::string::npos ? std::string::npos : dot - 6);
    std::string rest = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (name.empty() || rest.empty())
      fail(at, "key '" + key + "': expected phase.NAME.KEY, e.g. phase.task2.ewc.lambda");
    if (!findKey("phase[]." + rest) || rest == "name")
      fail(at, "key '" + key + "': '" + rest + "' is not a phase key (task.*, train.*, ewc.*)" +
                   suggest(rest));
    toml::array* phases = root["phase"].as_array();
    std::string names;
    if (phases)
      for (size_t i = 0; i < phases->size(); ++i) {
        toml::table* t = (*phases)[i].as_table();
        if (!t) continue;
        if (phaseName(*t, i) == name) return setPath(*t, rest, value);
        names += (names.empty() ? "" : ", ") + phaseName(*t, i);
      }
    fail(at, "key '" + key + "': the experiment has no [[phase]] named '" + name + "'" +
                 (names.empty() ? " (it has no [[phase]] tables)" : " (it has: " + names + ")"));
  }
  const KeySpec* spec = findKey(key);
  if (!spec || key.rfind("phase[]", 0) == 0 || key.rfind("analysis[]", 0) == 0)
    fail(at, "unknown key '" + key + "'" + suggest(key));
  return setPath(root, key, value);
}

const KeySpec& keySpec(const std::string& path) {
  const KeySpec* k = findKey(path);
  if (!k) throw std::logic_error("no schema entry for " + path);
  return *k;
}

// The settings with every schema default in place: the start of every experiment, phase and
// analysis. Computed once from the table's TOML defaults.
struct Defaults {
  Experiment experiment;
  AnalysisSpec analysis;
};

const Defaults& defaults() {
  static const Defaults all = [] {
    Defaults d;
    for (const KeySpec& k : kKeys) {
      if (k.def.empty() || !k.field.set) continue;
      toml::table t = toml::parse("v = " + k.def);
      Value v = readValue(k, k.path, *t.get("v"), "the schema");
      switch (k.field.scope) {
        case FieldRef::Scope::Experiment: k.field.set(&d.experiment, v); break;
        case FieldRef::Scope::Phase: k.field.set(&d.experiment.base, v); break;
        case FieldRef::Scope::Analysis: k.field.set(&d.analysis, v); break;
        case FieldRef::Scope::None: break;
      }
    }
    return d;
  }();
  return all;
}

}  // namespace

const char* const kPlainName =
    "a name must be 1 to 100 letters, digits, '_', '-' or '.', not start with '.' (no '/', no '..')";

bool isPlainName(const std::string& s) {
  if (s.empty() || s.size() > 100 || s[0] == '.') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

const std::vector<KeySpec>& experimentKeys() { return kKeys; }

std::string keyReference() {
  std::ostringstream os;
  os << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const KeySpec& k : kKeys) {
    std::string doc = k.doc;
    if (!k.choices.empty()) {
      doc += " (";
      for (size_t i = 0; i < k.choices.size(); ++i) doc += (i ? ", " : "") + k.choices[i];
      doc += ")";
    }
    os << "| `" << k.path << "` | " << k.type << " | " << (k.def.empty() ? "" : "`" + k.def + "`")
       << " | " << doc << " |\n";
  }
  return os.str();
}

std::string analysisName(const AnalysisSpec& a) { return a.name.empty() ? a.kind : a.name; }

const PhaseSpec* findPhase(const Experiment& e, const std::string& name) {
  for (const PhaseSpec& p : e.phases)
    if (p.name == name) return &p;
  return nullptr;
}

std::string keyWhere(const Experiment& e, const PhaseSpec& p, const std::string& key) {
  if (auto it = p.where.find(key); it != p.where.end()) return it->second;
  return e.path + " (" + key + " at its default)";
}

namespace {

// The experiment of a parsed file (or of nothing, for edits alone): `profile`, then the edits
// `sets`, each located at `setsAt` + the edit, then the schema's checks.
Experiment buildExperiment(const std::string& path, toml::table root, const std::vector<std::string>& sets,
                           const std::string& profile, const std::string& setsAt) {
  // A profile, then --set overrides, are applied onto the file before validation.
  Origins origins;
  toml::table profiles;
  if (toml::node* p = root.get("profiles")) {
    if (!p->is_table()) fail(where(path, p->source()), "key 'profiles' must be a table of tables");
    profiles = *p->as_table();
    root.erase("profiles");
  }
  if (!profile.empty()) {
    const toml::table* chosen = profiles[profile].as_table();
    if (!chosen) {
      std::string names;
      for (auto&& [k, v] : profiles) names += (names.empty() ? "" : ", ") + std::string(k.str());
      throw ExperimentError(path + ": no profile '" + profile + "'" +
                            (names.empty() ? " (the file has none)" : " (it has: " + names + ")"));
    }
    std::vector<std::pair<std::string, const toml::node*>> leaves;
    flatten(*chosen, "", leaves);
    for (auto& [k, v] : leaves) {
      std::string at = where(path, v->source()) + " (profile " + profile + ")";
      const toml::node* n = applyEdit(root, k, *v, at);
      origins[n] = at;
    }
  }
  for (const std::string& s : sets) {
    auto eq = s.find('=');
    const std::string at = setsAt + elide(s, 80);
    if (eq == std::string::npos || eq == 0)
      throw ExperimentError(at + ": error: expected key=value, e.g. train.batch=64");
    std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    toml::table parsed;
    try {
      parsed = toml::parse("v = " + value);
    } catch (const toml::parse_error&) {
      parsed = toml::table{{"v", value}};  // a bare word is a string: --set train.optimizer=adam
    }
    const toml::node* n = applyEdit(root, key, *parsed.get("v"), at);
    origins[n] = at;
  }

  Experiment e = defaults().experiment;
  e.path = path;
  std::vector<std::map<std::string, Value>> phaseValues;  // each [[phase]]'s keys, as read
  std::ostringstream text;
  text << root << "\n";
  e.text = text.str();
  // Arrays of tables: phases and analyses.
  std::vector<std::pair<std::string, std::string>> arrays = {{"phase", "phase[]"}, {"analysis", "analysis[]"}};
  for (auto& [key, schema] : arrays) {
    toml::node* n = root.get(key);
    if (!n) continue;
    const toml::array* a = n->as_array();
    if (!a || !a->is_array_of_tables())
      fail(where(path, n->source()), "key '" + key + "' must be an array of tables: [[" + key + "]]");
    for (const toml::node& item : *a) {
      std::map<std::string, Value> vals;
      walk(path, *item.as_table(), schema, vals, origins);
      if (key == "phase") {
        PhaseSpec ph;
        auto it = vals.find("phase[].name");
        ph.name = it != vals.end() ? it->second.str : "phase" + std::to_string(e.phases.size() + 1);
        const std::string at = it != vals.end() ? it->second.where : where(path, item.source());
        if (!isPlainName(ph.name))
          fail(at, "phase name '" + elide(ph.name, 40) + "': " + kPlainName);
        for (const PhaseSpec& other : e.phases)
          if (other.name == ph.name)
            fail(at, "two [[phase]] tables are named '" + ph.name + "': phase names must be unique");
        vals.erase("phase[].name");
        e.phases.push_back(std::move(ph));
        phaseValues.push_back(std::move(vals));
      } else {
        AnalysisSpec an = defaults().analysis;
        for (auto& [k, v] : vals) {
          keySpec(k).field.set(&an, v);
          an.where[k.substr(std::string("analysis[].").size())] = v.where;
        }
        if (!an.where.count("kind"))
          fail(where(path, item.source()), "an [[analysis]] needs a kind");
        e.analyses.push_back(std::move(an));
      }
    }
    root.erase(key);
  }
  std::map<std::string, Value> values;
  walk(path, root, "", values, origins);
  for (auto& [k, v] : values) {
    e.where[k] = v.where;
    const FieldRef& f = keySpec(k).field;
    if (f.scope == FieldRef::Scope::Experiment) f.set(&e, v);
    if (f.scope == FieldRef::Scope::Phase) f.set(&e.base, v);
    if (k.rfind("cell.dims.", 0) == 0) e.dims[k.substr(10)] = v.num;
    if (k.rfind("cell.consts.", 0) == 0) e.consts[k.substr(12)] = v.num;
    if (k.rfind("params.", 0) == 0) {
      std::string rest = k.substr(7);
      std::string name = rest.substr(0, rest.rfind('.')), field = rest.substr(rest.rfind('.') + 1);
      Experiment::ParamSetting& ps = e.params[name];
      if (field == "value") ps.value = v.str;
      if (field == "fill") ps.fill = v.num;
      if (field == "frozen") ps.frozen = v.flag;
    }
  }
  // Each phase: the top level's settings, then its own. A [[phase]] may hold any top-level key
  // (the schema allows it), but only its task.*, train.* and ewc.* are the phase's.
  if (e.phases.empty()) {
    e.phases.push_back({});
    e.phases.back().name = "train";
    phaseValues.emplace_back();
  }
  for (size_t i = 0; i < e.phases.size(); ++i) {
    PhaseSpec& ph = e.phases[i];
    static_cast<PhaseSettings&>(ph) = e.base;
    ph.where = e.where;
    for (auto& [k, v] : phaseValues[i]) {
      const FieldRef& f = keySpec(k).field;
      if (f.scope != FieldRef::Scope::Phase) continue;
      f.set(static_cast<PhaseSettings*>(&ph), v);
      ph.where[k] = v.where;
    }
  }
  // train.rehearse names a phase before the one that sets it.
  for (const PhaseSpec& ph : e.phases) {
    if (ph.train.rehearse.empty()) continue;
    if (const PhaseSpec* earlier = findPhase(e, ph.train.rehearse); !earlier || earlier >= &ph)
      fail(ph.where.at("train.rehearse"), "key 'train.rehearse' of phase '" + ph.name + "': no phase named '" +
                                              elide(ph.train.rehearse, 40) + "' before it");
  }
  if (auto it = e.where.find("experiment.name"); it != e.where.end() && !isPlainName(e.name))
    fail(it->second, "experiment.name '" + elide(e.name, 40) + "': " + kPlainName +
                         " (choose the folder with --out)");
  // The analyses' names become file prefixes and summary.json keys: plain and unique. `after`
  // names a phase.
  std::set<std::string> analysisNames;
  for (const AnalysisSpec& a : e.analyses) {
    const std::string name = analysisName(a);
    if (!isPlainName(name) || !analysisNames.insert(name).second)
      fail(a.where.at("kind"), "two analyses are named '" + name + "': give each a plain, unique analysis.name");
    if (auto it = a.where.find("after"); it != a.where.end() && !findPhase(e, a.after))
      fail(it->second, "analysis.after: no phase named '" + a.after + "'");
  }
  return e;
}

}  // namespace

Experiment loadExperiment(const std::string& path, const std::vector<std::string>& sets,
                          const std::string& profile) {
  toml::table root;
  if (std::string why = unreadableFileReason(path); !why.empty()) throw ExperimentError(why);
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& r = e.source();
    fail(path + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column),
         std::string(e.description()));
  }
  Experiment e = buildExperiment(path, std::move(root), sets, profile, "command line: --set ");
  if (!e.where.count("cell.file")) throw ExperimentError(path + ": key 'cell.file' is required");
  for (const PhaseSpec& p : e.phases)
    if (p.task.kind.empty()) throw ExperimentError(path + ": key 'task.kind' is required");
  return e;
}

Experiment experimentFromEdits(const std::vector<std::string>& edits, const std::string& origin) {
  return buildExperiment(origin, toml::table{}, edits, "", origin + ": ");
}

}  // namespace cellc::runtime
