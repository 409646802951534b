// The cell an experiment trains: its source, the checked program, the step graph and the
// float32 kernel the trainer runs. Loaded once per run, before anything is written.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "driver/Compile.h"
#include "experiment/Spec.h"
#include "sema/Program.h"

namespace cellc::runtime {

struct Model {
  std::string cellPath, source;
  std::map<std::string, double> overrides;  // dims and consts from the experiment
  std::optional<Program> prog;
  StepIR ir;
  std::unique_ptr<CompiledCell<float>> kernel;
};

// Resolves cell.file (relative to the experiment file, else as given), checks and compiles it.
// Throws ExperimentError with the cell's located diagnostics.
Model loadModel(const Experiment& e);

// The dims of the checked program, by name (for summaries).
std::map<std::string, int64_t> modelDims(const Model& m);

// Models loaded while checking many experiments (a sweep's runs), one per cell file, dims, consts
// and Omega: a sweep of 36 runs over 12 models compiles each model once.
class ModelCache {
 public:
  const Model& get(const Experiment& e);

 private:
  std::map<std::string, std::unique_ptr<Model>> models_;
};

}  // namespace cellc::runtime
