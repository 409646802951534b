// An analysis runs after training on the trained params: it writes what it measured into the
// run folder's arrays/ and returns its numbers for summary.json. Each kind is one file in
// runtime/analysis/ and one row in the table (Registry.cpp); its keys are `analysis[].*` rows of
// the schema (experiment/Spec.cpp).
#pragma once

#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiment/Model.h"
#include "experiment/Spec.h"

namespace cellc::runtime {

struct AnalysisContext {
  const Experiment& experiment;
  const AnalysisSpec& spec;           // this [[analysis]] table, its defaults applied
  const Model& model;
  const std::vector<double>& params;  // the trained params (empty in check())
  std::filesystem::path arrays;       // RUN/arrays
  std::ostream& log;

  // Where the key was set, for messages ("file:line:col"; the [[analysis]] table for a default).
  std::string where(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const;
  // Saves one array (row-major, shape) as arrays/NAME.npy, atomically.
  void save(const std::string& name, const std::vector<int64_t>& shape,
            const std::vector<double>& data) const;
};

class Analysis {
 public:
  virtual ~Analysis() = default;
  // Before any training: every key in range for this model (indices, sizes, time steps).
  virtual void check(const AnalysisContext& ctx) const = 0;
  // After training; returns the analysis' entry of summary.json ("measured": plain numbers).
  virtual nlohmann::json run(const AnalysisContext& ctx) const = 0;
};

struct AnalysisDef {
  const char* kind;
  std::unique_ptr<Analysis> (*make)();
};
const std::vector<AnalysisDef>& analysisTable();
std::unique_ptr<Analysis> makeAnalysis(const std::string& kind);

// Analyses poll this between units of work and stop with ExperimentError("interrupted") when set
// (Ctrl-C or SIGTERM).
void throwIfInterrupted(const char* what);

}  // namespace cellc::runtime
