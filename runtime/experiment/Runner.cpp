#include "experiment/Runner.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/ColumnShift.h"
#include "io/npy.h"
#include "jit/Jit.h"
#include "jit/Threads.h"
#include "params/Init.h"
#include "sema/Bind.h"
#include "tasks/Tasks.h"
#include "train/Bptt.h"
#include "train/Checkpoint.h"
#include "train/Trainer.h"

namespace cellc::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void writeFile(const fs::path& p, const std::string& text) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw ExperimentError("cannot write " + p.string());
    out << text;
  }
  fs::rename(tmp, p);
}

// The task of a phase, from its keys.
std::unique_ptr<Task> makeTask(const Experiment& e, const PhaseSpec& p) {
  auto num = [&](const char* k) { return phaseNum(e, p, k); };
  std::string kind = phaseStr(e, p, "task.kind");
  PycogInput in{num("task.dt"), num("task.baseline"), num("task.tau_in"), num("task.sigma_in"),
                num("task.duration"), num("task.onset_min"), num("task.onset_max")};
  if (kind == "sequence") {
    SequenceSpec s;
    s.in = in;
    s.inputAmp = num("task.input_amp"), s.inputDecay = num("task.input_decay");
    s.inputSign = num("task.input_sign"), s.period = num("task.period");
    s.outputs = phaseInt(e, p, "task.outputs");
    s.height = num("task.height"), s.offset = num("task.offset"), s.spacing = num("task.spacing");
    s.width = num("task.width"), s.reverse = phaseFlag(e, p, "task.reverse");
    return std::make_unique<SequenceTask>(s);
  }
  if (kind == "multi_sequence") {
    MultiSequenceSpec s;
    s.in = in;
    s.tasks = phaseInt(e, p, "task.tasks"), s.perTask = phaseInt(e, p, "task.per_task");
    s.inputDecay = num("task.input_decay"), s.height = num("task.height");
    s.offset = num("task.offset"), s.spacing = num("task.spacing"), s.width = num("task.width");
    return std::make_unique<MultiSequenceTask>(s);
  }
  return std::make_unique<CopyFirstTask>(CopyFirstSpec{phaseInt(e, p, "task.steps"), phaseInt(e, p, "task.dim")});
}

TrainConfig makeConfig(const Experiment& e, const PhaseSpec& p, const fs::path& run) {
  TrainConfig c;
  c.optimizer = phaseStr(e, p, "train.optimizer");
  c.learningRate = phaseNum(e, p, "train.learning_rate");
  c.clipNorm = phaseNum(e, p, "train.clip_norm");
  c.batch = phaseInt(e, p, "train.batch");
  c.maxSteps = phaseInt(e, p, "train.max_steps");
  c.validateEvery = phaseInt(e, p, "train.validate_every");
  c.validationBatch = phaseInt(e, p, "train.validation_batch");
  c.metric = phaseStr(e, p, "train.metric");
  c.targetError = phaseNum(e, p, "train.target_error");
  c.targetLoss = phaseNum(e, p, "train.target_loss");
  c.patience = phaseInt(e, p, "train.patience");
  c.seed = static_cast<uint64_t>(e.integer("experiment.seed"));
  c.noise = phaseFlag(e, p, "train.noise");
  c.dropout.p = phaseNum(e, p, "train.dropout");
  c.dropout.perStep = phaseFlag(e, p, "train.dropout_per_step");
  c.frozen = phaseStrs(e, p, "train.frozen");
  for (auto& [name, ps] : e.params)
    if (ps.frozen) c.frozen.push_back(name);
  c.segment = phaseInt(e, p, "train.segment");
  c.memoryBudgetMb = phaseInt(e, p, "train.memory_budget_mb");
  c.threads = static_cast<int>(phaseInt(e, p, "train.threads"));
  c.omega = phaseNum(e, p, "train.omega");
  c.omegaState = phaseStr(e, p, "train.omega_state");
  c.checkpointPath = (run / ("train-" + p.name + ".ckpt")).string();
  c.checkpointEvery = phaseInt(e, p, "train.checkpoint_every");
  c.metricsPath = (run / "metrics.csv").string();
  c.phase = p.name;
  return c;
}

// Experiment [params.NAME] settings, applied after initialization.
void applyParamSettings(const Experiment& e, const ir::Layout& L, std::vector<double>& params) {
  for (auto& [name, ps] : e.params) {
    const ir::Slot* s = L.find(ir::Role::Param, name);
    if (!s) {
      std::string names;
      for (const ir::Slot& p : L.params) names += (names.empty() ? "" : ", ") + p.name;
      throw ExperimentError(e.path + ": [params." + name + "]: the cell has no param '" + name +
                            "' (it has: " + names + ")");
    }
    double* v = params.data() + s->offset;
    if (ps.fill) std::fill(v, v + s->size, *ps.fill);
    if (ps.value.empty()) continue;
    std::fill(v, v + s->size, 0.0);
    if (ps.value == "zeros") continue;
    if (s->shape.rank() != 2)
      throw ExperimentError(e.path + ": [params." + name + "] value = \"" + ps.value + "\" needs a matrix, " +
                            name + " is " + s->shape.str());
    const int64_t rows = s->shape.dims[0], cols = s->shape.dims[1];
    if (ps.value == "identity" && rows != cols)
      throw ExperimentError(e.path + ": [params." + name + "] identity needs a square matrix");
    for (int64_t i = 0; i < std::min(rows, cols); ++i) v[i * cols + i] = 1.0;  // partial identity
  }
}

void saveParams(const fs::path& dir, const ir::Layout& L, const std::vector<double>& params) {
  fs::create_directories(dir);
  for (const ir::Slot& s : L.params) {
    std::vector<int64_t> shape(s.shape.dims.begin(), s.shape.dims.end());
    npy::write((dir / (s.name + ".npy")).string(), shape, params.data() + s.offset);
  }
}

void saveArray(const fs::path& dir, const std::string& name, std::vector<int64_t> shape,
               const std::vector<double>& data) {
  npy::write((dir / (name + ".npy")).string(), shape, data.data());
}

bool pythonPlotting() {
  return std::system("/usr/bin/python3 -c 'import numpy, matplotlib' > /dev/null 2>&1") == 0;
}

struct Model {
  std::string cellPath, source;
  std::map<std::string, double> overrides;
  std::optional<Program> prog;
  StepIR ir;
  std::unique_ptr<CompiledCell<float>> kernel;
};

Model loadModel(const Experiment& e) {
  fs::path cellPath = fs::path(e.path).parent_path() / e.str("cell.file");
  if (!fs::exists(cellPath) && fs::exists(e.str("cell.file"))) cellPath = e.str("cell.file");
  Model m;
  m.cellPath = cellPath.string();
  std::string err;
  SourceFile file = SourceFile::load(m.cellPath, &err);
  if (!err.empty()) throw ExperimentError(e.path + ": cell.file: " + err);
  m.source = file.text();
  for (auto& [k, v] : e.dims) m.overrides[k] = v;
  for (auto& [k, v] : e.consts) m.overrides[k] = v;
  DiagnosticSink diags;
  m.prog = loadCell(file, m.overrides, diags);
  if (!m.prog) {
    std::ostringstream os;
    diags.render(os, file);
    throw ExperimentError(e.path + ": the cell " + m.cellPath + " has errors:\n" + os.str());
  }
  m.ir = lower(*m.prog);
  // The Omega function is compiled only when a phase uses the regularizer.
  bool omega = false;
  for (const PhaseSpec& p : e.phases) omega = omega || phaseNum(e, p, "train.omega") > 0;
  m.kernel = compileCell<float>(m.ir, omega);
  return m;
}

json columnShiftAnalysis(const Experiment& e, const std::map<std::string, Value>& a, const Model& m,
                         const std::vector<double>& params, const fs::path& run, std::ostream& log) {
  auto num = [&](const char* k, double d) { auto it = a.find(k); return it == a.end() ? d : it->second.num; };
  auto str = [&](const char* k, const char* d) { auto it = a.find(k); return it == a.end() ? std::string(d) : it->second.str; };
  ColumnShiftSpec spec;
  spec.dt = num("dt", 0.5), spec.tau = num("tau", 50);
  std::vector<double> cols = analysisNums(a, "columns", {80, 99}), rows = analysisNums(a, "rows", {0, 79});
  std::vector<double> vals = analysisNums(a, "values", {-0.2, 0.2, 21});
  if (cols.size() != 2 || rows.size() != 2 || vals.size() != 3 || vals[2] < 1)
    throw ExperimentError(e.path + ": column_shift: columns and rows take [first, last], values [lo, hi, count]");
  spec.colFirst = static_cast<int64_t>(cols[0]), spec.colLast = static_cast<int64_t>(cols[1]);
  spec.rowFirst = static_cast<int64_t>(rows[0]), spec.rowLast = static_cast<int64_t>(rows[1]);
  for (int64_t i = 0; i < static_cast<int64_t>(vals[2]); ++i)
    spec.values.push_back(vals[2] == 1 ? vals[0] : vals[0] + (vals[1] - vals[0]) * static_cast<double>(i) / (vals[2] - 1));
  spec.onset = num("onset", 150);
  spec.exampleColumn = static_cast<int64_t>(num("example_column", 86));
  spec.exampleValue = num("example_value", 0.04);
  const std::string matrix = str("matrix", "W_rec"), alpha = str("alpha", "alpha");

  // The cell at the analysis time step, with the effective matrix as a param.
  Overrides o = m.overrides;
  o[alpha] = spec.dt / spec.tau;
  std::string err;
  SourceFile file = SourceFile::load(m.cellPath, &err);
  DiagnosticSink diags;
  std::optional<Program> bound = bindAsParam(file, o, matrix, diags);
  if (!bound) {
    std::ostringstream os;
    diags.render(os, file);
    throw ExperimentError(e.path + ": column_shift: " + os.str());
  }
  StepIR bir = lower(*bound);
  auto kernel = compileCell<double>(bir);
  // Params by name; the bound matrix from the trained model's effective matrix.
  std::vector<double> bp(bir.layout.paramSize, 0.0);
  for (const ir::Slot& s : bir.layout.params)
    if (const ir::Slot* src = m.ir.layout.find(ir::Role::Param, s.name))
      std::copy(params.begin() + src->offset, params.begin() + src->offset + src->size, bp.begin() + s.offset);
  const ir::Slot* mslot = bir.layout.find(ir::Role::Param, matrix);
  // The trained effective matrix: the one the cell's spectral_radius initializer measures.
  std::vector<double> eff;
  for (size_t p = 0; p < m.ir.layout.params.size(); ++p)
    if (m.ir.effective[p] >= 0) eff = effectiveMatrix(m.ir, params, p);
  if (eff.empty() || static_cast<int64_t>(eff.size()) != mslot->size)
    throw ExperimentError(e.path + ": column_shift: the cell must name " + matrix +
                          " as the effective matrix of a param (spectral_radius(..., " + matrix + "))");
  std::copy(eff.begin(), eff.end(), bp.begin() + mslot->offset);

  SequenceTask trialTask = [&] {
    PhaseSpec first = e.phases.front();
    std::unique_ptr<Task> t = makeTask(e, first);
    auto* seq = dynamic_cast<SequenceTask*>(t.get());
    if (!seq) throw ExperimentError(e.path + ": column_shift needs a sequence task");
    SequenceSpec s = seq->spec();
    s.in.dt = spec.dt;
    return SequenceTask(s);
  }();
  // The same trial at the training time step, through the trained model as trained: the
  // sequence it learned, before the change of time step that the analysis makes.
  {
    std::unique_ptr<Task> trained = makeTask(e, e.phases.front());
    auto* seq = dynamic_cast<SequenceTask*>(trained.get());
    TrialBatch tb = seq->trial(spec.onset);
    Bptt<float> bptt(*m.kernel, 1, tb.steps, tb.steps);
    std::vector<std::vector<float>> outs;
    bptt.forward(std::vector<float>(params.begin(), params.end()), tb, {}, {}, outs);
    const ir::Slot& out = m.ir.layout.outputs.at(0);
    std::vector<double> time, input, target, output;
    for (int64_t t = 0; t < tb.steps; ++t) {
      time.push_back(static_cast<double>(t) * seq->spec().in.dt);
      input.push_back(tb.inputs[t][0]);
      for (int64_t i = 0; i < out.size; ++i) {
        target.push_back(tb.targets[t][i]);
        output.push_back(outs[t][out.offset + i]);
      }
    }
    fs::path arrays = run / "arrays";
    fs::create_directories(arrays);
    saveArray(arrays, "trained_time", {tb.steps}, time);
    saveArray(arrays, "trained_input", {tb.steps}, input);
    saveArray(arrays, "trained_target", {tb.steps, out.size}, target);
    saveArray(arrays, "trained_output", {tb.steps, out.size}, output);
  }
  log << "column_shift: " << (spec.colLast - spec.colFirst + 1) << " columns x " << spec.values.size()
      << " edits on one trial of " << trialTask.steps() << " steps at dt = " << spec.dt << " ms\n";
  auto t0 = std::chrono::steady_clock::now();
  ColumnShiftResult r = columnShift(*kernel, bp, *mslot, trialTask, spec);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fs::path arrays = run / "arrays";
  fs::create_directories(arrays);
  const int64_t T = r.steps, n = r.outputs, C = static_cast<int64_t>(r.columns.size()),
                V = static_cast<int64_t>(r.values.size());
  saveArray(arrays, "trial_time", {T}, r.time);
  saveArray(arrays, "trial_input", {T}, r.input);
  saveArray(arrays, "trial_target", {T, n}, r.target);
  saveArray(arrays, "trial_output", {T, n}, r.output);
  saveArray(arrays, "edit_example_output", {T, n}, r.example);
  saveArray(arrays, "shift_columns", {C}, r.columns);
  saveArray(arrays, "shift_values", {V}, r.values);
  saveArray(arrays, "peak_shift", {C, V}, r.peakShift);
  saveArray(arrays, "centroid_shift", {C, V}, r.centroidShift);
  saveArray(arrays, "failures", {C, V}, r.failures);
  saveArray(arrays, "peak_shift_per_output", {C, V, n}, r.peakPerOutput);

  // The paper's claims, measured: the sign of the shift follows the sign of v; the whole
  // sequence moves together; the size depends on the column.
  // Edits that move the sequence by less than one analysis step (silent columns) carry no sign.
  int same = 0, opposite = 0, coherent = 0, cells = 0, failures = 0;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t v = 0; v < V; ++v) {
      double val = r.values[v], s = r.peakShift[c * V + v];
      failures += static_cast<int>(r.failures[c * V + v]);
      if (val == 0 || !std::isfinite(s) || std::fabs(s) < spec.dt) continue;
      ((s > 0) == (val > 0) ? same : opposite) += 1;
      int pos = 0, neg = 0;
      for (int64_t i = 0; i < n; ++i) {
        double si = r.peakPerOutput[(c * V + v) * n + i];
        pos += si > 0, neg += si < 0;
      }
      ++cells;
      coherent += pos == 0 || neg == 0;
    }
  std::vector<double> perColumn;  // mean |peak shift| per column over v
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    int k = 0;
    for (int64_t v = 0; v < V; ++v)
      if (std::isfinite(r.peakShift[c * V + v])) sum += std::fabs(r.peakShift[c * V + v]), ++k;
    perColumn.push_back(k ? sum / k : NAN);
  }
  double lo = INFINITY, hi = -INFINITY;
  for (double x : perColumn)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  json j;
  j["dt"] = spec.dt;
  j["tau"] = spec.tau;
  j["columns"] = {spec.colFirst, spec.colLast};
  j["values"] = r.values;
  j["example"] = {{"column", spec.exampleColumn}, {"value", spec.exampleValue}};
  j["plot_values"] = analysisNums(a, "plot_values", {-0.12, -0.04, 0.04, 0.12});
  j["plot_columns"] = analysisNums(a, "plot_columns", {84, 88, 92, 96});
  j["seconds"] = secs;
  j["measured"] = {
      {"sign_consistency", same + opposite ? static_cast<double>(std::max(same, opposite)) / (same + opposite) : NAN},
      {"sign_direction", same > opposite ? "v > 0 makes the sequence come earlier" : "v > 0 makes the sequence come later"},
      {"sign_consistency_note", "among edits (column, v != 0) that move the mean peak by at least one analysis step, the fraction whose shift has the majority's sign relation to v"},
      {"edits_that_moved", same + opposite},
      {"coherent_fraction", cells ? static_cast<double>(coherent) / cells : NAN},
      {"coherent_note", "fraction of edits in which every output shifted the same way (or not at all)"},
      {"mean_abs_shift_by_column_ms", perColumn},
      {"mean_abs_shift_range_ms", {lo, hi}},
      {"failures", failures},
      {"failures_note", "outputs whose peak moved by more than tau / 2 (pycog dropped these; counted here, excluded from the means)"}};
  j["paper_claim"] =
      "Editing one inhibitory column shifts the whole sequence in time; the sign of the shift "
      "follows the sign of v, and its size depends on the column (Song, Yang & Wang 2016, Figs 2-3).";
  log << "column_shift: sign consistency " << j["measured"]["sign_consistency"] << " ("
      << j["measured"]["sign_direction"].get<std::string>() << "), coherent "
      << j["measured"]["coherent_fraction"] << ", mean |shift| per column " << lo << " to " << hi
      << " ms, " << failures << " failures (" << secs << " s)\n";
  return j;
}

}  // namespace

std::string runExperiment(const Experiment& e, const RunOptions& opt, std::ostream& log) {
  std::string name = e.values.count("experiment.name") ? e.str("experiment.name")
                                                       : fs::path(e.path).stem().string();
  fs::path run = opt.outDir.empty() ? fs::path("runs") / name : fs::path(opt.outDir);
  fs::create_directories(run);
  Model m = loadModel(e);
  writeFile(run / "experiment.toml", e.text);
  writeFile(run / "cell.cell", m.source);
  log << "run folder: " << run.string() << "\n";
  auto t0 = std::chrono::steady_clock::now();

  // Training, phase by phase; a finished phase (done-PHASE.ckpt) is not trained again.
  ModelInfo info{m.cellPath, m.source, m.overrides, e.text};
  std::vector<double> params;
  json training = json::array();
  Ewc ewc;
  for (size_t i = 0; i < e.phases.size(); ++i) {
    const PhaseSpec& ph = e.phases[i];
    TrainConfig cfg = makeConfig(e, ph, run);
    setThreads(cfg.threads);
    fs::path done = run / ("done-" + ph.name + ".ckpt");
    std::unique_ptr<Task> task = makeTask(e, ph);
    Trainer trainer(m.ir, *m.kernel, info, cfg, log);
    if (fs::exists(done)) {
      Checkpoint c = readCheckpoint(done.string());
      checkCompatible(c, m.source, m.overrides, m.ir.layout.paramSize);
      params = c.params;
      if (!c.ewcState.empty()) {
        std::istringstream es(c.ewcState);
        ewc.load(es);
      }
      training.push_back(json::parse(c.extra.count("summary") ? c.extra.at("summary") : "{}"));
      log << "phase " << ph.name << ": already trained (" << done.string() << ")\n";
      continue;
    }
    if (i == 0 && !fs::exists(cfg.checkpointPath)) {
      trainer.initialize();
      std::vector<double> p = trainer.params();
      applyParamSettings(e, m.ir.layout, p);
      trainer.setParams(p);
      std::ofstream(run / "metrics.csv", std::ios::trunc);  // a fresh run starts a fresh curve
    } else if (i > 0) {
      trainer.setParams(params);
    }
    trainer.ewc() = ewc;
    log << "phase " << ph.name << ": training " << m.prog->ast.name << " (" << m.ir.layout.paramSize
        << " params) on " << phaseStr(e, ph, "task.kind") << "\n";
    auto p0 = std::chrono::steady_clock::now();
    TrainResult r = trainer.run(*task);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
    if (r.stopReason == "interrupted")
      throw ExperimentError("interrupted: run the same command again to resume from " + cfg.checkpointPath);
    params = r.params;
    json summary = {{"phase", ph.name},          {"steps", r.steps},
                    {"stop_reason", r.stopReason}, {"best_validation_error", r.bestError},
                    {"target_error", cfg.targetError >= 0 ? json(cfg.targetError) : json()},
                    {"seconds", secs},           {"resumed", r.resumed}};
    if (r.stopReason == "diverged")
      log << "phase " << ph.name << " diverged; its last good parameters are kept and analysed\n";
    // Consolidate this phase for the ones after it.
    double lambda = phaseNum(e, ph, "ewc.lambda");
    if (lambda > 0) {
      trainer.setParams(params);
      std::vector<double> fisher = trainer.fisher(*task, phaseInt(e, ph, "ewc.fisher_trials"));
      ewc.add({params, fisher, lambda, ph.name});
      summary["ewc_lambda"] = lambda;
    }
    Checkpoint c;
    c.cellSource = m.source, c.cellPath = m.cellPath, c.overrides = m.overrides, c.experiment = e.text;
    c.step = r.steps, c.params = params, c.bestParams = params, c.bestValidation = r.bestError;
    c.optimizerKind = cfg.optimizer;
    c.randomState = trainer.streams().save();
    std::ostringstream es;
    ewc.save(es);
    c.ewcState = es.str();
    c.extra["phase"] = ph.name;
    c.extra["summary"] = summary.dump();
    writeCheckpoint(done.string(), c);
    training.push_back(summary);
  }
  saveParams(run / "params", m.ir.layout, params);

  json analyses = json::object();
  for (const auto& a : e.analyses) {
    const std::string kind = a.at("kind").str;
    if (kind == "column_shift") analyses[kind] = columnShiftAnalysis(e, a, m, params, run, log);
  }
  json dims = json::object();
  for (const Symbol* s : m.prog->ofKind(SymKind::Dim)) dims[s->name] = s->dimValue;
  json summary = {
      {"experiment", {{"name", name}, {"file", e.path}, {"description", e.values.count("experiment.description") ? e.str("experiment.description") : ""}}},
      {"cell", {{"file", m.cellPath}, {"name", m.prog->ast.name}, {"dims", dims}}},
      {"training", training.size() == 1 ? training[0] : json{{"phases", training}}},
      {"analyses", analyses},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  writeFile(run / "summary.json", summary.dump(2) + "\n");

  if (opt.plot && e.flag("output.plot")) {
    fs::path script = opt.plotScript;
    if (script.empty()) script = fs::path(e.path).parent_path() / "plot.py";
    if (!fs::exists(script)) script = fs::path(CELLC_SOURCE_DIR) / "experiments" / "plot.py";
    if (!fs::exists(script)) log << "figures: no plot script found; skipped\n";
    else if (!pythonPlotting())
      log << "figures: python3 with numpy and matplotlib not found; draw them later with\n  python3 "
          << script.string() << " " << run.string() << "\n";
    else {
      std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + run.string() + "'";
      if (std::system(cmd.c_str()) != 0) log << "figures: the plot script failed (" << cmd << ")\n";
    }
  }
  log << "done: " << (run / "summary.json").string() << ", figures in " << (run / "figures").string() << "\n";
  return run.string();
}

}  // namespace cellc::runtime
