// The table of analyses, and the context helpers they share.
#include <sstream>

#include "analysis/Analysis.h"
#include "io/npy.h"
#include "train/Trainer.h"

namespace cellc::runtime {

std::unique_ptr<Analysis> makeColumnShift();
std::unique_ptr<Analysis> makeTrace();
std::unique_ptr<Analysis> makeEiRates();
std::unique_ptr<Analysis> makeWeightHistogram();
std::unique_ptr<Analysis> makeReadoutActivity();
std::unique_ptr<Analysis> makeTraceAblation();

namespace {

const std::vector<AnalysisDef> kAnalyses = {
    {"column_shift", makeColumnShift},
    {"trace", makeTrace},
    {"ei_rates", makeEiRates},
    {"weight_histogram", makeWeightHistogram},
    {"readout_activity", makeReadoutActivity},
    {"trace_ablation", makeTraceAblation},
};

}  // namespace

const std::vector<AnalysisDef>& analysisTable() { return kAnalyses; }

std::unique_ptr<Analysis> makeAnalysis(const std::string& kind) {
  for (const AnalysisDef& d : kAnalyses)
    if (kind == d.kind) return d.make();
  throw ExperimentError("no analysis '" + kind + "'");
}

std::string AnalysisContext::where(const std::string& key) const {
  if (auto it = spec.where.find(key); it != spec.where.end()) return it->second;
  return spec.where.at("kind") + " (analysis." + key + " at its default)";
}
void AnalysisContext::fail(const std::string& key, const std::string& msg) const {
  throw ExperimentError(where(key) + ": error: " + spec.kind + " key '" + key + "': " + msg);
}
void AnalysisContext::save(const std::string& name, const std::vector<int64_t>& shape,
                           const std::vector<double>& data) const {
  std::filesystem::create_directories(arrays);
  // A named analysis prefixes its arrays: two of one kind keep theirs apart.
  const std::string file = spec.name.empty() ? name : spec.name + "_" + name;
  npy::write((arrays / (file + ".npy")).string(), shape, data.data());
}

void throwIfInterrupted(const char* what) {
  if (Trainer::interruptFlag())
    throw ExperimentError(std::string("interrupted during ") + what +
                          ": run the same command again to resume");
}

}  // namespace cellc::runtime
