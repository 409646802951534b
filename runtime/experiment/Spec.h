// Experiment files (experiments/*.toml): what a run trains and analyses. One schema table
// (Spec.cpp) lists every key with its type, default, range and meaning; it drives validation
// (unknown keys, wrong types and out-of-range values are errors with file, line and key), the
// defaults, and the key reference (`cellc run --keys`, docs/experiments.md).
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cellc::runtime {

struct ExperimentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One key of the schema. Paths use dots; a '*' segment matches any name (dims, params) and
// "phase[]" / "analysis[]" stand for array-of-table entries.
struct KeySpec {
  std::string path;
  std::string type;  // int, float, bool, string, floats, strings
  std::string def;   // default as TOML text, empty: required or none
  std::string doc;
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices;
};
const std::vector<KeySpec>& experimentKeys();
std::string keyReference();  // markdown table of every key

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

// Settings of one training phase: its task and its training keys, phase values over top level.
struct PhaseSpec {
  std::string name;
  std::map<std::string, Value> values;  // "task.kind", "train.batch", "ewc.lambda", ...
};

struct Experiment {
  std::string path;                      // the .toml file
  std::string text;                      // the resolved experiment, as TOML
  std::map<std::string, Value> values;   // every key set in the file (after --set/profile)
  std::vector<PhaseSpec> phases;         // at least one
  std::vector<std::map<std::string, Value>> analyses;  // "kind", ...
  std::map<std::string, double> dims, consts;
  struct ParamSetting {
    std::optional<double> fill;
    std::string value;  // "partial_identity", ...
    bool frozen = false;
  };
  std::map<std::string, ParamSetting> params;

  // Typed lookups with the schema's defaults (`path` as in the schema, e.g. "train.batch").
  double num(const std::string& path) const;
  int64_t integer(const std::string& path) const;
  bool flag(const std::string& path) const;
  std::string str(const std::string& path) const;
};

// Typed lookups in a phase (its own values, then the experiment's, then the schema's defaults).
double phaseNum(const Experiment& e, const PhaseSpec& p, const std::string& path);
int64_t phaseInt(const Experiment& e, const PhaseSpec& p, const std::string& path);
bool phaseFlag(const Experiment& e, const PhaseSpec& p, const std::string& path);
std::string phaseStr(const Experiment& e, const PhaseSpec& p, const std::string& path);
std::vector<std::string> phaseStrs(const Experiment& e, const PhaseSpec& p, const std::string& path);
std::vector<double> phaseNums(const Experiment& e, const PhaseSpec& p, const std::string& path);

// Run, phase and sweep names (every name from a file that becomes a folder) are plain file names:
// letters, digits, '_', '-', '.', not starting with '.', at most 100 characters. kPlainName says
// so in a message.
bool isPlainName(const std::string& s);
extern const char* const kPlainName;

// Reads and validates an experiment file; `sets` are `key=value` overrides (TOML values) applied
// after `profile` (a [profiles.NAME] table of the file). Throws ExperimentError.
Experiment loadExperiment(const std::string& path, const std::vector<std::string>& sets = {},
                          const std::string& profile = "");

// The experiment of `key=value` edits alone, with no file (cellc.train's task options): the same
// schema and checks as a file's keys, each error located at "ORIGIN: EDIT". Nothing is required.
Experiment experimentFromEdits(const std::vector<std::string>& edits, const std::string& origin);

}  // namespace cellc::runtime
