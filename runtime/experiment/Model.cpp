#include "experiment/Model.h"

#include "experiment/TaskTable.h"

#include <filesystem>
#include <sstream>

namespace cellc::runtime {

namespace fs = std::filesystem;

namespace {

// cell.file relative to the experiment file, else as given.
fs::path cellPathOf(const Experiment& e) {
  fs::path cellPath = fs::path(e.path).parent_path() / e.cellFile;
  if (!fs::exists(cellPath) && fs::exists(e.cellFile)) cellPath = e.cellFile;
  return cellPath;
}

// A cell written with d(x)/dt steps by its const dt; a task with a time step supplies it (every
// phase's the same), and a cell.consts.dt that disagrees is refused rather than silently run at
// another dt than the task's.
void bindTimeStep(const Experiment& e, const Program& prog, Overrides& o) {
  bool derivative = false;
  for (const Stmt& s : prog.ast.stmts) derivative = derivative || s.derivative;
  if (!derivative) return;
  double dt = 0;
  const PhaseSpec* first = nullptr;
  for (const PhaseSpec& p : e.phases) {
    const double pdt = taskTimeStep(p);
    if (pdt <= 0) continue;
    if (first && pdt != dt) {
      std::ostringstream os;
      os << e.path << ": the cell is written with d(x)/dt, but its phases' tasks step by different task.dt ("
         << dt << " at " << keyWhere(e, *first, "task.dt") << ", " << pdt << " at " << keyWhere(e, p, "task.dt")
         << "): one cell, one dt";
      throw ExperimentError(os.str());
    }
    dt = pdt, first = &p;
  }
  if (!first) return;  // no task with a time step: the cell's own dt
  if (auto it = e.consts.find("dt"); it != e.consts.end() && it->second != dt) {
    std::ostringstream os;
    os << e.path << ": cell.consts.dt = " << it->second << " disagrees with task.dt = " << dt << " ("
       << keyWhere(e, *first, "task.dt") << "): a cell written with d(x)/dt steps by the task's dt; set task.dt";
    throw ExperimentError(os.str());
  }
  o["dt"] = dt;
}

// The Omega function is compiled only when a phase uses the regularizer.
bool usesOmega(const Experiment& e) {
  bool omega = false;
  for (const PhaseSpec& p : e.phases) omega = omega || p.train.omega > 0;
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
  auto load = [&] {
    try {
      m.prog = loadProgram(file, m.overrides);
    } catch (const CellSourceError& bad) {
      throw ExperimentError(e.path + ": the cell " + m.cellPath + " has errors:\n" + bad.what() + "\n");
    }
  };
  load();
  const Overrides given = m.overrides;
  bindTimeStep(e, *m.prog, m.overrides);
  if (m.overrides != given) load();
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
  for (const PhaseSpec& p : e.phases) key << " task.dt=" << taskTimeStep(p);  // d(x)/dt cells
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
