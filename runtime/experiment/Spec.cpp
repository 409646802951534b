#include "experiment/Spec.h"

#include "diag/Text.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <toml++/toml.h>

namespace cellc::runtime {

namespace {

// The schema. Task keys apply to the kinds named in their doc; analysis keys to column_shift.
const std::vector<KeySpec> kKeys = {
    {"experiment.name", "string", "", "run name (default: the file's stem)"},
    {"experiment.description", "string", "", "one line on what the experiment shows"},
    {"experiment.seed", "int", "1", "master seed of every random stream", 0, 1e18},
    {"cell.file", "string", "", "the .cell file, relative to the experiment file (required)"},
    {"cell.dims.*", "int", "", "dim overrides, like -D", 1, 1 << 28},
    {"cell.consts.*", "float", "", "scalar const overrides, like -D"},
    {"params.*.value", "string", "", "set a param after initialization", 0, 0,
     {"partial_identity", "identity", "zeros", "initialized"}},
    {"params.*.fill", "float", "", "set every entry of a param after initialization"},
    {"params.*.frozen", "bool", "false", "the param does not train"},
    {"task.kind", "string", "", "the task (required)", 0, 0,
     {"sequence", "multi_sequence", "copy_first", "perceptual_decision"}},
    {"task.dt", "float", "10", "sequence, multi_sequence, perceptual_decision: time step (ms)", 1e-9, 1e9},
    {"task.duration", "float", "1000", "sequence, multi_sequence: trial length T (ms)", 1e-9, 1e9},
    {"task.onset_min", "float", "100", "sequence, multi_sequence: onset t_s ~ U(min, max) (ms)"},
    {"task.onset_max", "float", "200", "sequence, multi_sequence: see onset_min (ms)"},
    {"task.baseline", "float", "0.2", "sequence, multi_sequence, perceptual_decision: input baseline"},
    {"task.tau_in", "float", "100", "sequence, multi_sequence, perceptual_decision: input noise time constant (ms)", 1e-9},
    {"task.sigma_in", "float", "0.01", "sequence, multi_sequence, perceptual_decision: input noise scale", 0},
    {"task.input_amp", "float", "4", "sequence: input amplitude"},
    {"task.input_decay", "float", "800", "sequence, multi_sequence: input decay time (ms)", 1e-9},
    {"task.input_sign", "float", "-1", "sequence: -1 decaying, +1 growing input", -1, 1},
    {"task.period", "float", "0", "sequence: input modulation period (ms); 0: none", 0},
    {"task.outputs", "int", "10", "sequence: number of outputs (Gaussian bumps)", 1, 1e6},
    {"task.height", "float", "12", "sequence, multi_sequence: bump height"},
    {"task.offset", "float", "80", "sequence, multi_sequence: first bump's delay after onset (ms)"},
    {"task.spacing", "float", "80", "sequence, multi_sequence: delay between bumps (ms)"},
    {"task.width", "float", "20", "sequence, multi_sequence: bump width sigma (ms)", 1e-9},
    {"task.reverse", "bool", "false", "sequence: bumps in reverse order"},
    {"task.tasks", "int", "1", "multi_sequence: number of sequences K", 1, 1e6},
    {"task.per_task", "int", "5", "multi_sequence: outputs per sequence", 1, 1e6},
    {"task.steps", "int", "300", "copy_first: sequence length T", 1, 1e9},
    {"task.dim", "int", "1", "copy_first: input dimension D", 1, 1e6},
    {"task.fixation", "float", "100", "perceptual_decision: fixation epoch, no evidence and no target (ms)", 0, 1e9},
    {"task.stimulus", "float", "800", "perceptual_decision: stimulus epoch, the evidence (ms)", 1e-9, 1e9},
    {"task.decision", "float", "300", "perceptual_decision: decision epoch, the target is the choice (ms)", 1e-9, 1e9},
    {"task.coherences", "floats", "[1, 2, 4, 8, 16]", "perceptual_decision: coherences (percent, 0 to 100), one drawn per trial: the two inputs differ by it"},
    {"train.optimizer", "string", "\"sgd\"", "optimizer", 0, 0, {"sgd", "adam"}},
    {"train.learning_rate", "float", "0.001", "learning rate", 0, 1e9},
    {"train.clip_norm", "float", "1.0", "global gradient-norm clip; 0: none", 0},
    {"train.batch", "int", "20", "trials per step", 1, 1e7},
    {"train.max_steps", "int", "100000", "at most this many steps", 0, 1e12},
    {"train.validate_every", "int", "500", "validate every this many steps; 0: never", 0, 1e12},
    {"train.validation_batch", "int", "100", "fresh trials per validation", 1, 1e7},
    {"train.metric", "string", "\"rmse\"", "validation error: rmse, the loss itself, or error_rate (1 - accuracy of the choices; a classification task)", 0, 0,
     {"rmse", "loss", "error_rate"}},
    {"train.target_error", "float", "-1", "stop when validation error <= this; < 0: off"},
    {"train.target_loss", "float", "-1", "stop when a minibatch loss (or the mean of train.loss_window of them) < this; < 0: off"},
    {"train.loss_window", "int", "1", "train.target_loss and train.loss_milestones read the mean of the last this many minibatch losses, so one lucky minibatch cannot stop a run or mark a milestone; 1: each minibatch alone", 1, 1e9},
    {"train.patience", "int", "0", "stop after this many validations without improvement; 0: off", 0},
    {"train.noise", "bool", "true", "draw the cell's normal noise; off: zeros (dropout masks follow train.dropout)"},
    {"train.frozen", "strings", "[]", "params that do not train"},
    {"train.dropout", "float", "0", "probability of dropping a unit of the cell's `~ dropout()` noise in training steps (the cell must declare one)", 0, 0.99},
    {"train.dropout_per_step", "bool", "false", "a new dropout mask every step (default: per trial)"},
    {"train.dropout_fixed", "bool", "false", "one 0/1 dropout mask for the whole phase, not rescaled by 1 / (1 - p): pycog's course trainer (seed 000's E3); default: inverted dropout, a new mask per trial"},
    {"train.segment", "int", "0", "BPTT segment length; 0: automatic", 0, 1e9},
    {"train.memory_budget_mb", "int", "1024", "BPTT memory for states and tapes, and at batches up to 4 the weight-gradient operands of one segment (MB); beyond it, segments", 1, 1e9},
    {"train.threads", "int", "0", "threads of large matrix products, of large batch-split kernels (a Hebbian trace's [B, n, n] work, split only while measuring shows that it pays) and of BPTT's batch shards; 0: all cores. Results are the same for every count (a product large enough to split may differ in the last bits between one thread and more)", 0, 1024},
    {"train.batch_shards", "int", "0", "BPTT cuts the batch into this many shards that run side by side (each on one thread); 0: automatic (2 when each gets 8 trials or more and the step's products are small, else 1); 1: none. Results depend on it (the batch sums are split), not on train.threads", 0, 4096},
    {"train.omega", "float", "0", "weight of pycog's vanishing-gradient regularizer Omega (pycog: 2); 0: off", 0},
    {"train.omega_state", "string", "\"\"", "the state Omega regularizes (default: the first)"},
    {"train.checkpoint_every", "int", "1000", "checkpoint every this many steps", 1, 1e12},
    {"train.loss_milestones", "floats", "[]", "record the first step (and its training seconds) whose minibatch loss (or window mean, train.loss_window) is below each of these"},
    {"test.trials", "int", "0", "after training, the loss on this many fresh trials of each phase's task (summary.json test); 0: none", 0, 1e8},
    {"ewc.lambda", "float", "0", "after this phase, consolidate it with EWC of this strength", 0},
    {"ewc.fisher_trials", "int", "200", "trials for the diagonal Fisher", 1, 1e9},
    {"phase[].name", "string", "", "phase name; a [[phase]] may set task.*, train.* and ewc.*"},
    {"analysis[].kind", "string", "", "the analysis", 0, 0,
     {"column_shift", "trace", "ei_rates", "weight_histogram", "readout_activity", "trace_ablation"}},
    {"analysis[].name", "string", "", "the analysis' name in summary.json and its arrays' prefix (default: the kind; unique)"},
    {"analysis[].after", "string", "", "run on the params after this phase (default: the last)"},
    {"analysis[].task", "string", "", "trace: the phase whose task the trials come from (default: the first)"},
    {"analysis[].dt", "float", "0.5", "column_shift: time step of the analysis (ms)", 1e-9},
    {"analysis[].tau", "float", "50", "column_shift: the cell's time constant (ms): alpha = dt/tau", 1e-9},
    {"analysis[].alpha", "string", "\"alpha\"", "column_shift: the const that holds dt/tau"},
    {"analysis[].matrix", "string", "\"W_rec\"", "column_shift: the intermediate to edit"},
    {"analysis[].columns", "floats", "[80, 99]", "column_shift: first and last column"},
    {"analysis[].rows", "floats", "[0, 79]", "column_shift: first and last row edited"},
    {"analysis[].values", "floats", "[-0.2, 0.2, 21]", "column_shift: lo, hi, count of edits v"},
    {"analysis[].onset", "float", "150", "column_shift, trace: onset of the fixed trial (ms)"},
    {"analysis[].example_column", "int", "86", "column_shift: the edit shown in the heatmap"},
    {"analysis[].example_value", "float", "0.04", "column_shift: see example_column"},
    {"analysis[].plot_values", "floats", "[-0.12, -0.04, 0.04, 0.12]", "column_shift: v per curve"},
    {"analysis[].plot_columns", "floats", "[84, 88, 92, 96]", "column_shift: column per curve"},
    {"analysis[].trials", "int", "", "trace (1; one per sequence for multi_sequence), ei_rates, readout_activity (100), trace_ablation (1000): trials", 1, 100000},
    {"analysis[].trace", "string", "", "trace_ablation: the matrix state (default: the first state with two dims)"},
    {"analysis[].rate", "string", "\"eta\"", "trace_ablation: the scalar param that sets the trace's rate"},
    {"analysis[].states", "strings", "", "trace: the states to record (default: every state)"},
    {"analysis[].state", "string", "\"x\"", "ei_rates: the state whose relu is the rate"},
    {"analysis[].excitatory", "float", "0.8", "ei_rates, weight_histogram: fraction of excitatory units (the first ones)", 0, 1},
    {"analysis[].bins", "int", "100", "weight_histogram: number of bins", 1, 100000},
    {"analysis[].threshold", "float", "0.1", "readout_activity: an output is active above this fraction of the largest target", 0, 1},
    {"output.plot", "bool", "true", "draw the figures at the end (python3 + matplotlib)"},
};

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

const Value* lookup(const std::map<std::string, Value>& m, const std::string& path) {
  auto it = m.find(path);
  return it == m.end() ? nullptr : &it->second;
}

double defaultNum(const std::string& path) {
  const KeySpec& k = keySpec(path);
  if (k.def.empty()) throw ExperimentError("key '" + path + "' is required");
  return std::stod(k.def);
}

std::string defaultStr(const std::string& path) {
  const KeySpec& k = keySpec(path);
  if (k.def.size() >= 2 && k.def.front() == '"') return k.def.substr(1, k.def.size() - 2);
  return k.def;
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

double Experiment::num(const std::string& key) const {
  const Value* v = lookup(values, key);
  return v ? v->num : defaultNum(key);
}
int64_t Experiment::integer(const std::string& key) const { return static_cast<int64_t>(num(key)); }
bool Experiment::flag(const std::string& key) const {
  const Value* v = lookup(values, key);
  return v ? v->flag : defaultStr(key) == "true";
}
std::string Experiment::str(const std::string& key) const {
  const Value* v = lookup(values, key);
  if (v) return v->str;
  if (keySpec(key).def.empty()) throw ExperimentError(path + ": key '" + key + "' is required");
  return defaultStr(key);
}

double phaseNum(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  const Value* v = lookup(p.values, path);
  return v ? v->num : e.num(path);
}
int64_t phaseInt(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  return static_cast<int64_t>(phaseNum(e, p, path));
}
bool phaseFlag(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  const Value* v = lookup(p.values, path);
  return v ? v->flag : e.flag(path);
}
std::string phaseStr(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  const Value* v = lookup(p.values, path);
  return v ? v->str : e.str(path);
}
std::vector<std::string> phaseStrs(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  if (const Value* v = lookup(p.values, path)) return v->strs;
  if (const Value* v = lookup(e.values, path)) return v->strs;
  return {};
}
std::vector<double> phaseNums(const Experiment& e, const PhaseSpec& p, const std::string& path) {
  if (const Value* v = lookup(p.values, path)) return v->nums;
  if (const Value* v = lookup(e.values, path)) return v->nums;
  return {};
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

  Experiment e;
  e.path = path;
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
        ph.values = std::move(vals);
        e.phases.push_back(std::move(ph));
      } else {
        std::map<std::string, Value> stripped;
        for (auto& [k, v] : vals) stripped[k.substr(std::string("analysis[].").size())] = v;
        if (!stripped.count("kind"))
          fail(where(path, item.source()), "an [[analysis]] needs a kind");
        e.analyses.push_back(std::move(stripped));
      }
    }
    root.erase(key);
  }
  walk(path, root, "", e.values, origins);
  if (e.phases.empty()) e.phases.push_back({"train", {}});
  for (auto& [k, v] : e.values) {
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
  if (auto it = e.values.find("experiment.name"); it != e.values.end() && !isPlainName(it->second.str))
    fail(it->second.where, "experiment.name '" + elide(it->second.str, 40) + "': " + kPlainName +
                               " (choose the folder with --out)");
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
  if (!e.values.count("cell.file")) throw ExperimentError(path + ": key 'cell.file' is required");
  bool anyKind = e.values.count("task.kind") > 0;
  for (const PhaseSpec& p : e.phases) anyKind = anyKind || p.values.count("task.kind");
  if (!anyKind) throw ExperimentError(path + ": key 'task.kind' is required");
  return e;
}

Experiment experimentFromEdits(const std::vector<std::string>& edits, const std::string& origin) {
  return buildExperiment(origin, toml::table{}, edits, "", origin + ": ");
}

}  // namespace cellc::runtime
