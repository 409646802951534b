#include "run/Runner.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/Analysis.h"
#include "experiment/Model.h"
#include "experiment/PhaseTraining.h"
#include "experiment/RunFolder.h"
#include "experiment/TaskTable.h"
#include "experiment/TestStage.h"
#include "run/Figures.h"
#include "tasks/Rehearsal.h"
#include "io/npy.h"
#include "blas/HostCpu.h"
#include "blas/Threads.h"
#include "train/Checkpoint.h"
#include "train/Memory.h"
#include "train/Trainer.h"

namespace cellc::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

TrainConfig makeConfig(const Experiment& e, const PhaseSpec& p, const fs::path& run) {
  TrainConfig c = trainConfig(e, p);
  c.checkpointPath = (run / ("train-" + p.name + ".ckpt")).string();
  c.metricsPath = (run / "metrics.csv").string();
  c.phase = p.name;
  return c;
}

// Experiment [params.NAME] settings, checked against the layout before anything runs.
void checkParamSettings(const Experiment& e, const ir::Layout& L) {
  for (auto& [name, ps] : e.params) {
    const ir::Slot* s = L.find(ir::Role::Param, name);
    if (!s) {
      std::string names;
      for (const ir::Slot& p : L.params) names += (names.empty() ? "" : ", ") + p.name;
      throw ExperimentError(e.path + ": [params." + name + "]: the cell has no param '" + name +
                            "' (it has: " + names + ")");
    }
    if (ps.value.empty() || ps.value == "zeros" || ps.value == "initialized") continue;
    if (s->shape.rank() != 2)
      throw ExperimentError(e.path + ": [params." + name + "] value = \"" + ps.value + "\" needs a matrix, " +
                            name + " is " + s->shape.str());
    if (ps.value == "identity" && s->shape.dims[0] != s->shape.dims[1])
      throw ExperimentError(e.path + ": [params." + name + "] identity needs a square matrix");
  }
}

// Experiment [params.NAME] settings, applied after initialization.
void applyParamSettings(const Experiment& e, const ir::Layout& L, std::vector<double>& params) {
  for (auto& [name, ps] : e.params) {
    const ir::Slot* s = L.find(ir::Role::Param, name);
    double* v = params.data() + s->offset;
    if (ps.fill) std::fill(v, v + s->size, *ps.fill);
    if (ps.value.empty() || ps.value == "initialized") continue;  // as the cell's initializer made it
    std::fill(v, v + s->size, 0.0);
    if (ps.value == "zeros") continue;
    const int64_t cols = s->shape.dims[1];
    for (int64_t i = 0; i < std::min(s->shape.dims[0], cols); ++i) v[i * cols + i] = 1.0;  // partial identity
  }
}

// ewc.params as a weight per param element: 1 where the penalty applies, 0 elsewhere (names were
// checked against the cell before training).
std::vector<double> ewcSelector(const ir::Layout& L, const std::vector<std::string>& names) {
  std::vector<double> w(static_cast<size_t>(L.paramSize), names.empty() ? 1.0 : 0.0);
  for (const std::string& name : names)
    for (const ir::Slot& s : L.params)
      if (s.name == name) std::fill(w.begin() + s.offset, w.begin() + s.offset + s.size, 1.0);
  return w;
}

void saveParams(const fs::path& dir, const ir::Layout& L, const std::vector<double>& params) {
  fs::create_directories(dir);
  for (const ir::Slot& s : L.params) {
    std::vector<int64_t> shape(s.shape.dims.begin(), s.shape.dims.end());
    npy::write((dir / (s.name + ".npy")).string(), shape, params.data() + s.offset);
  }
}

// The figures: experiments/plot.py beside the experiment, else the source tree's (run/Figures.h).
void drawFigures(const Experiment& e, const RunOptions& opt, const fs::path& run, std::ostream& log) {
  runtime::drawFigures({"plot.py", opt.plotScript, fs::path(e.path).parent_path(),
                        "not cellc's own plot.py; --no-plot skips it"},
                       {{{run.string()}, ""}}, log);
}

// The run's identity: an existing folder must hold the same experiment, or nothing is touched.
void checkSameExperiment(const RunFolder& folder, const Experiment& e) {
  fs::path old = folder / "experiment.toml";
  if (!fs::exists(old)) return;
  std::ifstream in(old);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string diff = experimentDifference(ss.str(), e.text);
  if (!diff.empty())
    throw ExperimentError(fs::absolute(folder.dir()).string() +
                          " holds a run of another experiment (" + diff +
                          "); resuming would mix the two. Choose another folder with --out, or "
                          "start over with --fresh (the folder is moved aside, not deleted)");
}

json testStage(const Experiment& e, Model& m, const std::vector<std::unique_ptr<Task>>& tasks,
               const std::vector<std::vector<double>>& phaseParams, std::ostream& log) {
  const int64_t trials = e.testTrials;
  const uint64_t seed = static_cast<uint64_t>(e.seed);
  auto one = [&](size_t after, size_t task) {
    TestResult r = testOnFreshTrials(*m.kernel, *tasks[task], phaseParams[after], trials,
                                     testSeed(seed, task), e.phases[task].train.noise);
    if (r.classification) {
      json c{{"loss", r.loss}, {"chance_loss", r.chanceLoss}, {"accuracy", r.accuracy},
             {"chance_accuracy", r.chanceAccuracy}};
      if (std::isfinite(r.idealAccuracy)) c["ideal_accuracy"] = r.idealAccuracy;
      return c;
    }
    return json{{"loss", r.loss}, {"rmse", std::sqrt(r.loss)}, {"chance_loss", r.chanceLoss}};
  };
  json j;
  if (e.phases.size() == 1) {
    j = one(0, 0);
  } else {
    // after_P.Q: phase Q's task after phase P trained (the forgetting matrix).
    for (size_t a = 0; a < e.phases.size(); ++a)
      for (size_t t = 0; t < e.phases.size(); ++t)
        j["after_" + e.phases[a].name][e.phases[t].name] = one(a, t);
    // Retention of each earlier task at the end: (E_chance - E_after) / (E_chance - E_before),
    // E_before its loss right after its own phase; 1: nothing forgotten, 0: back to chance.
    const std::string last = "after_" + e.phases.back().name;
    for (size_t t = 0; t + 1 < e.phases.size(); ++t) {
      const std::string name = e.phases[t].name;
      const json& before = j["after_" + name][name];
      const double chance = before["chance_loss"], b = before["loss"], a = j[last][name]["loss"];
      j["retention"][name] = chance - b > 0 ? (chance - a) / (chance - b) : NAN;
    }
  }
  j["trials"] = trials;
  log << "test: " << trials << " fresh trials: " << j.dump() << "\n";
  return j;
}

// A phase's training and the test stage's forward, each against the machine's memory
// (train/Memory.h), before anything is allocated: an error names the bytes and the keys.
void checkMemory(const Experiment& e, const PhaseSpec& ph, const Task& task, const Model& m) {
  const TrainConfig c = makeConfig(e, ph, "");
  const int64_t steps = task.steps();
  std::string keys = "train.batch = " + std::to_string(c.batch) + ", train.validation_batch = " +
                     std::to_string(c.validationBatch) + ", train.memory_budget_mb = " +
                     std::to_string(c.memoryBudgetMb) + ", T = " + std::to_string(steps) +
                     " steps (the [task] table)";
  for (const auto& [name, v] : e.dims) keys += ", cell.dims." + name + " = " + std::to_string(static_cast<int64_t>(v));
  const int64_t budget = c.memoryBudgetMb > (int64_t{1} << 40) ? int64_t{1} << 60 : c.memoryBudgetMb << 20;
  try {
    requireMemory(trainingMemory(*m.kernel, {steps, c.batch, c.validationBatch, budget, c.optimizer == "adam" ? 2 : 0}),
                  "training phase '" + ph.name + "'", keys);
  } catch (const OutOfMemoryError& err) {
    throw ExperimentOutOfMemory(keyWhere(e, ph, "train.batch") + ": error: " + err.what(), err.needed, err.available);
  }
  const int64_t trials = e.testTrials;
  try {
    requireMemory(evaluationMemory(*m.kernel, steps, trials), "the test stage (phase '" + ph.name + "')",
                  "test.trials = " + std::to_string(trials) + ", " + keys.substr(keys.find("T = ")));
  } catch (const OutOfMemoryError& err) {
    throw ExperimentOutOfMemory(keyWhere(e, ph, "test.trials") + ": error: " + err.what(), err.needed, err.available);
  }
}

// What runExperiment builds and checks before it touches a run folder: every phase's task
// (fitted to the cell), every analysis (its keys in range), the param settings.
struct Checked {
  std::vector<std::unique_ptr<Task>> tasks;
  std::vector<std::unique_ptr<Task>> training;  // what each phase trains on: its task, or a rehearsal
  std::vector<std::unique_ptr<Analysis>> analyses;
  std::vector<size_t> analysisPhase;  // which phase's params each analysis looks at
};

Checked checkAgainst(const Experiment& e, const Model& m, const fs::path& runPath, std::ostream& log) {
  Checked c;
  checkParamSettings(e, m.ir.layout);
  for (const PhaseSpec& ph : e.phases) {
    c.tasks.push_back(makeTask(e, ph));
    if (ph.train.metric == "error_rate" && !isClassification(c.tasks.back()->loss().kind))
      throw ExperimentError(keyWhere(e, ph, "train.metric") + ": error: key 'train.metric': error_rate " +
                            "scores choices; task " + ph.task.kind + " is trained with " +
                            lossKindName(c.tasks.back()->loss().kind) + " and makes none");
    checkTaskFits(e, ph, *c.tasks.back(), m.ir.layout,
                  std::max(ph.train.batch, ph.train.validationBatch));
    try {  // dropout fills the cell's `~ dropout()` noise: a cell without one has nowhere to put it
      checkDropoutFits(m.ir, {ph.train.dropout, false});
    } catch (const std::invalid_argument& err) {
      throw ExperimentError(keyWhere(e, ph, "train.dropout") + ": error: " + err.what());
    }
    checkMemory(e, ph, *c.tasks.back(), m);
    for (const std::string& name : ph.ewc.params)
      if (!m.ir.layout.find(ir::Role::Param, name)) {
        std::string names;
        for (const ir::Slot& s : m.ir.layout.params) names += (names.empty() ? "" : ", ") + s.name;
        throw ExperimentError(keyWhere(e, ph, "ewc.params") + ": error: key 'ewc.params': the cell has no param '" +
                              name + "' (its params: " + names + ")");
      }
    c.training.push_back(nullptr);
    if (!ph.train.rehearse.empty()) {  // an earlier phase (checked when the experiment was loaded)
      const size_t j = static_cast<size_t>(findPhase(e, ph.train.rehearse) - e.phases.data());
      try {
        c.training.back() = std::make_unique<RehearsalTask>(*c.tasks.back(), *c.tasks[j]);
      } catch (const std::invalid_argument& err) {
        throw ExperimentError(keyWhere(e, ph, "train.rehearse") + ": error: key 'train.rehearse': phase '" +
                              ph.name + "' cannot rehearse '" + ph.train.rehearse + "': " + err.what());
      }
    }
  }
  const std::vector<double> noParams;
  for (const AnalysisSpec& a : e.analyses) {
    // Names and `after` were checked when the experiment was loaded.
    const PhaseSpec* after = a.where.count("after") ? findPhase(e, a.after) : &e.phases.back();
    c.analysisPhase.push_back(static_cast<size_t>(after - e.phases.data()));
    c.analyses.push_back(makeAnalysis(a.kind));
    c.analyses.back()->check({e, a, m, noParams, runPath / "arrays", log});
  }
  return c;
}

}  // namespace

void checkExperiment(const Experiment& e, ModelCache& models) {
  std::ostringstream quiet;
  checkAgainst(e, models.get(e), fs::path("unused-run-folder"), quiet);
}

// --fresh: an existing run folder goes to DIR.old-N (the first N free), never deleted; a folder
// another process is running in is refused (its lock is taken first) and stays where it is.
static void moveAside(const fs::path& runPath, std::ostream& log) {
  if (!fs::exists(runPath)) return;
  if (!fs::is_directory(runPath))
    throw ExperimentError(runPath.string() + " is not a folder: --fresh moves a run folder aside, nothing else");
  fs::path aside;
  for (int k = 1;; ++k) {
    aside = runPath.string() + ".old-" + std::to_string(k);
    if (!fs::exists(aside)) break;
  }
  {
    RunFolder held(runPath);  // throws when another process holds it
    std::error_code ec;
    fs::rename(runPath, aside, ec);
    if (ec)
      throw ExperimentError("--fresh: cannot move " + runPath.string() + " to " + aside.string() + ": " +
                            ec.message());
  }
  log << "fresh start: the earlier run folder is now " << aside.string() << "\n";
}

std::string runExperiment(const Experiment& e, const RunOptions& opt, std::ostream& log) {
  std::string name = e.name.empty() ? fs::path(e.path).stem().string() : e.name;
  fs::path runPath = opt.outDir.empty() ? fs::path("runs") / name : fs::path(opt.outDir);
  auto t0 = std::chrono::steady_clock::now();

  // Everything is compiled and checked before the folder is touched.
  Model m = loadModel(e);
  throwIfInterrupted("compilation");
  Checked checked = checkAgainst(e, m, runPath, log);
  std::vector<std::unique_ptr<Task>>& tasks = checked.tasks;
  std::vector<std::unique_ptr<Analysis>>& analyses = checked.analyses;
  const std::vector<size_t>& analysisPhase = checked.analysisPhase;

  if (opt.fresh) moveAside(runPath, log);
  RunFolder run(runPath);
  checkSameExperiment(run, e);
  run.write("experiment.toml", e.text);
  run.write("cell.cell", m.source);
  log << "run folder: " << runPath.string() << "\n";

  // Training, phase by phase; a finished phase (done-PHASE.ckpt) is not trained again.
  ModelInfo info{m.cellPath, m.source, m.overrides, e.text};
  std::vector<double> params;
  std::vector<std::vector<double>> phaseParams;  // the params after each phase
  json training = json::array();
  Ewc ewc;
  for (size_t i = 0; i < e.phases.size(); ++i) {
    const PhaseSpec& ph = e.phases[i];
    const Task& task = checked.training[i] ? *checked.training[i] : *tasks[i];
    TrainConfig cfg = makeConfig(e, ph, runPath);
    setThreads(cfg.threads);
    fs::path done = run / ("done-" + ph.name + ".ckpt");
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
      phaseParams.push_back(params);
      log << "phase " << ph.name << ": already trained (" << done.string() << ")\n";
      continue;
    }
    if (i == 0 && !fs::exists(cfg.checkpointPath)) {
      trainer.initialize();
      std::vector<double> p = trainer.params();
      applyParamSettings(e, m.ir.layout, p);
      trainer.setParams(p);
      run.write("metrics.csv", "");  // a fresh run starts a fresh curve
    } else if (i > 0) {
      trainer.setParams(params);
    }
    trainer.ewc() = ewc;
    log << "phase " << ph.name << ": training " << m.prog->ast.name << " (" << m.ir.layout.paramSize
        << " params) on " << ph.task.kind << "\n";
    TrainResult r;
    try {
      r = trainer.run(task);
    } catch (const Diverged& d) {
      throw ExperimentError(d.what());
    }
    if (r.stopReason == StopReason::Interrupted)
      throw ExperimentError("interrupted: run the same command again to resume from " + cfg.checkpointPath);
    if (r.stopReason == StopReason::Diverged)
      throw ExperimentError("phase " + ph.name + " diverged (" + r.diverged + "); it is not marked done. " +
                            cfg.checkpointPath + " keeps its last good parameters");
    params = r.params;
    json summary = {{"phase", ph.name},          {"steps", r.steps},
                    {"stop_reason", stopReasonName(r.stopReason)}, {"best_validation_error", r.bestError},
                    {"target_error", cfg.targetError >= 0 ? json(cfg.targetError) : json()},
                    {"seconds", r.seconds},      {"resumed", r.resumed},
                    {"samples", r.steps * cfg.batch},
                    {"last_loss", r.lastLoss}};
    if (!cfg.lossMilestones.empty()) {
      json ms = json::object(), secs = json::object();
      for (double lm : cfg.lossMilestones) {
        auto it = r.milestones.find(milestoneKey(lm));
        ms["below_" + milestoneKey(lm)] = it == r.milestones.end() ? json() : json(it->second);
        auto st = r.milestoneSeconds.find(milestoneKey(lm));
        secs["below_" + milestoneKey(lm)] = st == r.milestoneSeconds.end() ? json() : json(st->second);
      }
      summary["first_step_loss"] = ms;
      summary["first_seconds_loss"] = secs;
    }
    if (cfg.lossWindow > 1) summary["loss_window"] = cfg.lossWindow;
    // Consolidate this phase for the ones after it.
    double lambda = ph.ewc.lambda;
    if (lambda > 0) {
      const std::vector<double> covered = ewcSelector(m.ir.layout, ph.ewc.params);
      const bool course = ph.ewc.form == "course";
      std::vector<double> fisher = covered;  // the course form's: each param's weight
      if (!course) {
        trainer.setParams(params);
        try {
          fisher = trainer.fisher(task, ph.ewc.fisherTrials);
        } catch (const Interrupted& err) {
          throw ExperimentError(std::string(err.what()) + ": run the same command again to resume");
        }
        for (size_t k = 0; k < fisher.size(); ++k) fisher[k] *= covered[k];
        saveParams(run / ("fisher-" + ph.name), m.ir.layout, fisher);  // what EWC protects, per param
      }
      ewc.add({params, fisher, lambda, ph.name, course ? EwcForm::Course : EwcForm::Fisher});
      summary["ewc_lambda"] = lambda;
      summary["ewc_form"] = ph.ewc.form;
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
    phaseParams.push_back(params);
    // Each phase's params, so what a later phase changed can be read (silent units, moved weights).
    if (e.phases.size() > 1) saveParams(run / ("params-" + ph.name), m.ir.layout, params);
  }
  saveParams(run / "params", m.ir.layout, params);

  json test;
  if (e.testTrials > 0) {
    try {
      test = testStage(e, m, tasks, phaseParams, log);
    } catch (const Interrupted& err) {
      throw ExperimentError(std::string(err.what()) + ": run the same command again to finish");
    }
  }
  json analysisResults = json::object();
  for (size_t k = 0; k < e.analyses.size(); ++k) {
    throwIfInterrupted("the analyses");
    json r = analyses[k]->run({e, e.analyses[k], m, phaseParams[analysisPhase[k]], run / "arrays", log});
    r["kind"] = e.analyses[k].kind;
    analysisResults[analysisName(e.analyses[k])] = r;
  }
  json summary = {
      {"experiment", {{"name", name}, {"file", e.path}, {"description", e.description}, {"seed", e.seed}}},
      {"cell", {{"file", m.cellPath}, {"name", m.prog->ast.name}, {"dims", modelDims(m)}, {"params", m.ir.layout.paramSize}}},
      {"training", training.size() == 1 ? training[0] : json{{"phases", training}}},
      {"analyses", analysisResults},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
      // The JIT compiles for this CPU: another CPU may round differently and, over a long run,
      // train to other numbers. Which one made these is part of the result.
      {"machine", {{"cpu", hostCpuName()}, {"isa", hostIsaNames()}}}};
  if (!test.is_null()) summary["test"] = test;
  run.write("summary.json", summary.dump(2) + "\n");

  if (opt.plot && e.plot) drawFigures(e, opt, runPath, log);
  log << "done: " << (run / "summary.json").string() << ", figures in " << (run / "figures").string() << "\n";
  return runPath.string();
}

}  // namespace cellc::runtime
