#include "experiment/Model.h"

#include <filesystem>
#include <sstream>

namespace cellc::runtime {

namespace fs = std::filesystem;

namespace {

// cell.file relative to the experiment file, else as given.
fs::path cellPathOf(const Experiment& e) {
  fs::path cellPath = fs::path(e.path).parent_path() / e.str("cell.file");
  if (!fs::exists(cellPath) && fs::exists(e.str("cell.file"))) cellPath = e.str("cell.file");
  return cellPath;
}

// The Omega function is compiled only when a phase uses the regularizer.
bool usesOmega(const Experiment& e) {
  bool omega = false;
  for (const PhaseSpec& p : e.phases) omega = omega || phaseNum(e, p, "train.omega") > 0;
  return omega;
}

}  // namespace

Model loadModel(const Experiment& e) {
  fs::path cellPath = cellPathOf(e);
  Model m;
  m.cellPath = cellPath.string();
  std::string err;
  SourceFile file = SourceFile::load(m.cellPath, &err);
  if (!err.empty()) throw ExperimentError(e.path + ": cell.file: " + err);
  m.source = file.text();
  for (auto& [k, v] : e.dims) m.overrides[k] = v;
  for (auto& [k, v] : e.consts) m.overrides[k] = v;
  try {
    m.prog = loadProgram(file, m.overrides);
  } catch (const CellSourceError& bad) {
    throw ExperimentError(e.path + ": the cell " + m.cellPath + " has errors:\n" + bad.what() +
                          "\n");
  }
  CompiledProgram<float> c = compileProgram<float>(*m.prog, {.omega = usesOmega(e)});
  m.ir = std::move(c.ir);
  m.kernel = std::move(c.kernel);
  return m;
}

const Model& ModelCache::get(const Experiment& e) {
  std::ostringstream key;
  key << fs::weakly_canonical(cellPathOf(e)).string() << (usesOmega(e) ? " omega" : "");
  key.precision(17);
  for (auto& [k, v] : e.dims) key << " " << k << "=" << v;
  for (auto& [k, v] : e.consts) key << " const " << k << "=" << v;
  std::unique_ptr<Model>& slot = models_[key.str()];
  if (!slot) slot = std::make_unique<Model>(loadModel(e));
  return *slot;
}

std::map<std::string, int64_t> modelDims(const Model& m) {
  std::map<std::string, int64_t> dims;
  for (const Symbol* s : m.prog->ofKind(SymKind::Dim)) dims[s->name] = s->dimValue;
  return dims;
}

}  // namespace cellc::runtime
