// cellc.train: the Trainer (runtime/train/Trainer.h) on a built-in task (runtime/tasks/Tasks.h)
// or on a Python callable returning (inputs, targets, mask) numpy batches. Ctrl-C: the tasks poll
// Python's signal handlers (PyErr_CheckSignals) before each batch and set
// Trainer::interruptFlag(); the trainer saves its checkpoint and stops, and the call raises
// KeyboardInterrupt.
#include "Train.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "Arrays.h"
#include "PyLog.h"
#include "diag/Text.h"
#include "experiment/PhaseTraining.h"
#include "experiment/RunFolder.h"
#include "experiment/TaskTable.h"
#include "tasks/Tasks.h"
#include "train/Checkpoint.h"
#include "train/Memory.h"
#include "train/Trainer.h"

namespace cellc::python {

namespace {

using runtime::LossKind;
using runtime::LossSpec;
using runtime::Task;
using runtime::TrialBatch;

std::string nearest(const std::string& key, const std::vector<std::string>& names) {
  std::string best;
  size_t bestDist = std::numeric_limits<size_t>::max();
  for (const std::string& n : names) {
    size_t d = editDistance(key, n);
    if (d < bestDist) bestDist = d, best = n;
  }
  if (best.empty() || bestDist > std::max<size_t>(2, key.size() / 4)) return "";
  return " (did you mean '" + best + "'?)";
}

// A call's options by name, each parsed from a Python value (most into experiment edits): an
// unknown or mistyped name is an error naming it and listing the names there are.
class Settings {
 public:
  explicit Settings(std::string what) : what_(std::move(what)) {}
  void boolean(const std::string& key, bool* p) {
    add(key, [=, this](py::handle v) { flagInto(key, v, p); });
  }
  // A key of the experiment format (its schema type): its value becomes the edit PATH=VALUE in
  // `edits`, in TOML, which the experiment format's binder then checks and decodes.
  void edit(const std::string& key, const std::string& type, const std::string& path,
            std::vector<std::string>* edits) {
    if (type == "int") {
      add(key, [=, this](py::handle v) {
        int64_t i = 0;
        integerInto(key, v, &i);
        edits->push_back(path + "=" + std::to_string(i));
      });
    } else if (type == "bool") {
      add(key, [=, this](py::handle v) {
        bool b = false;
        flagInto(key, v, &b);
        edits->push_back(path + "=" + (b ? "true" : "false"));
      });
    } else if (type == "string") {
      add(key, [=, this](py::handle v) {
        if (!py::isinstance<py::str>(v))
          throw py::value_error(what_ + " '" + key + "' must be a string, got " + repr(v));
        edits->push_back(path + "=" + tomlString(v.cast<std::string>()));
      });
    } else if (type == "strings") {
      add(key, [=, this](py::handle v) {  // a name, or a list of names
        std::vector<std::string> names;
        if (py::isinstance<py::str>(v)) {
          names.push_back(v.cast<std::string>());
        } else {
          try {
            names = v.cast<std::vector<std::string>>();
          } catch (const py::cast_error&) {
            throw py::value_error(what_ + " '" + key + "' must be a list of names, got " + repr(v));
          }
        }
        std::string t;
        for (const std::string& n : names) t += (t.empty() ? "" : ", ") + tomlString(n);
        edits->push_back(path + "=[" + t + "]");
      });
    } else if (type == "floats") {
      add(key, [=, this](py::handle v) {
        if (!py::isinstance<py::sequence>(v) || py::isinstance<py::str>(v))
          throw py::value_error(what_ + " '" + key + "' must be a list of numbers, got " + repr(v));
        std::string t;
        for (py::handle x : v) t += (t.empty() ? "" : ", ") + tomlFloat(toNum(key, x));
        edits->push_back(path + "=[" + t + "]");
      });
    } else {
      add(key, [=, this](py::handle v) { edits->push_back(path + "=" + tomlFloat(toNum(key, v))); });
    }
  }
  static std::string tomlFloat(double x) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
    std::string t(buf, end);
    if (t.find_first_of(".eEn") == std::string::npos) t += ".0";  // a TOML float (not nan, inf)
    return t;
  }
  // A TOML basic string: quotes, backslashes and control characters escaped.
  static std::string tomlString(const std::string& s) {
    std::string t = "\"";
    for (char ch : s) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        t += '\\';
        t += ch;
      } else if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        t += buf;
      } else {
        t += ch;
      }
    }
    return t + "\"";
  }
  void text(const std::string& key, std::string* p) {
    add(key, [=, this](py::handle v) {
      if (!py::isinstance<py::str>(v))
        throw py::value_error(what_ + " '" + key + "' must be a string, got " + repr(v));
      *p = v.cast<std::string>();
    });
  }
  void apply(py::handle options) {
    if (options.is_none()) return;
    for (auto kv : py::reinterpret_borrow<py::dict>(options)) {
      std::string key = py::str(kv.first).cast<std::string>();
      auto it = setters_.find(key);
      if (it == setters_.end()) {
        std::string all;
        for (const std::string& k : keys_) all += (all.empty() ? "" : ", ") + k;
        throw py::value_error("unknown " + what_ + " '" + key + "'" + nearest(key, keys_) +
                              "; the " + what_ + "s: " + all);
      }
      it->second(kv.second);
    }
  }

 private:
  void add(const std::string& key, std::function<void(py::handle)> f) {
    keys_.push_back(key);
    setters_[key] = std::move(f);
  }
  static std::string repr(py::handle v) { return py::repr(v).cast<std::string>(); }
  void integerInto(const std::string& key, py::handle v, int64_t* p) const {
    double d = toNum(key, v);
    // Beyond 2^63 the cast below is undefined: such a value is no integer setting.
    if (!(std::fabs(d) < 9.2e18) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw py::value_error(what_ + " '" + key + "' must be an integer, got " + repr(v));
    *p = static_cast<int64_t>(d);
  }
  void flagInto(const std::string& key, py::handle v, bool* p) const {
    if (!py::isinstance<py::bool_>(v))
      throw py::value_error(what_ + " '" + key + "' must be True or False, got " + repr(v));
    *p = v.cast<bool>();
  }
  double toNum(const std::string& key, py::handle v) const {
    if (py::isinstance<py::bool_>(v) || !(py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v) ||
                                          py::hasattr(v, "__float__")))
      throw py::value_error(what_ + " '" + key + "' must be a number, got " + repr(v));
    return v.cast<double>();
  }

  std::string what_;
  std::vector<std::string> keys_;
  std::map<std::string, std::function<void(py::handle)>> setters_;
};

// The built-in tasks and the keys of the experiment format's [task] table each takes
// (docs/experiments.md). Their values pass the format's own ranges and checks (taskFromEdits), as
// a [task] table's do: here only the names and the Python types are checked.
const std::map<std::string, std::vector<std::string>> kTaskKeys = {
    {"sequence", {"dt", "baseline", "tau_in", "sigma_in", "duration", "onset_min", "onset_max", "input_amp",
                  "input_decay", "input_sign", "period", "outputs", "height", "offset", "spacing", "width",
                  "reverse"}},
    {"multi_sequence", {"dt", "baseline", "tau_in", "sigma_in", "duration", "onset_min", "onset_max", "tasks",
                        "per_task", "input_decay", "height", "offset", "spacing", "width"}},
    {"copy_first", {"steps", "dim"}},
    {"perceptual_decision", {"dt", "baseline", "tau_in", "sigma_in", "fixation", "stimulus", "decision",
                             "coherences"}},
};

// `edits` receives the task's edits (its part of the run's identity).
std::unique_ptr<Task> builtinTask(const std::string& kind, py::handle options, const ir::Layout& L,
                                  int64_t batch, std::vector<std::string>& edits) {
  auto keys = kTaskKeys.find(kind);
  if (keys == kTaskKeys.end()) {
    std::vector<std::string> kinds;
    std::string list;
    for (const auto& [k, unused] : kTaskKeys) kinds.push_back(k), list += (list.empty() ? "" : ", ") + k;
    throw py::value_error("unknown task '" + kind + "'" + nearest(kind, kinds) + "; the built-in tasks: " + list +
                          " (or pass a Python callable)");
  }
  Settings s("option of task " + kind);
  edits = {"task.kind=\"" + kind + "\""};
  const std::vector<runtime::KeySpec>& schema = runtime::experimentKeys();
  for (const std::string& key : keys->second) {
    const std::string path = "task." + key;
    auto spec = std::find_if(schema.begin(), schema.end(), [&](const runtime::KeySpec& k) { return k.path == path; });
    if (spec == schema.end()) throw std::logic_error("no schema entry for " + path);
    s.edit(key, spec->type, path, &edits);
  }
  s.apply(options);
  try {
    return runtime::taskFromEdits(edits, "task_options", L, batch);
  } catch (const runtime::ExperimentError& e) {
    throw py::value_error(e.what());
  }
}

// A task written in Python: fn(batch, rng) -> (inputs, targets[, mask]), rng a numpy Generator
// seeded from the trainer's data stream (so a seed gives the same run, and a resumed run continues
// with the same trials).
class CallableTask : public Task {
 public:
  CallableTask(py::object fn, const ir::Layout& L, LossSpec loss)
      : fn_(std::move(fn)), L_(L), loss_(loss), out_(L.outputs.at(static_cast<size_t>(loss.outputSlot))) {
    // One probe trial tells the number of steps and checks the shapes before training starts.
    TrialBatch b = call(1, 0);
    steps_ = b.steps;
  }
  int64_t steps() const override { return steps_; }
  LossSpec loss() const override { return loss_; }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override {
    uint64_t seed = rng();
    py::gil_scoped_acquire gil;
    TrialBatch b = call(batch, seed);
    if (b.steps != steps_)
      throw py::value_error("the task returned " + std::to_string(b.steps) +
                            " steps, but its first batch had " + std::to_string(steps_) +
                            "; every batch needs the same number of steps");
    return b;
  }

 private:
  TrialBatch call(int64_t batch, uint64_t seed) const {
    py::object rng = py::module_::import("numpy").attr("random").attr("default_rng")(seed);
    py::object r = fn_(batch, rng);
    if (!py::isinstance<py::tuple>(r) && !py::isinstance<py::list>(r))
      throw py::value_error("the task must return (inputs, targets) or (inputs, targets, mask), "
                            "got " + py::repr(r).cast<std::string>());
    py::sequence seq = r;
    if (seq.size() != 2 && seq.size() != 3)
      throw py::value_error("the task must return (inputs, targets) or (inputs, targets, mask), "
                            "got a tuple of " + std::to_string(seq.size()));
    py::object inputs = seq[0];
    // inputs: an array for a one-input cell, else a dict name -> array.
    py::dict byName;
    if (py::isinstance<py::dict>(inputs)) {
      byName = inputs;
      checkNames(byName, L_.inputs, "input");
    } else if (L_.inputs.size() == 1) {
      byName[py::str(L_.inputs[0].name)] = inputs;
    } else {
      throw py::value_error("the task's inputs must be a dict name -> [T, B, ...] array: the cell "
                            "has " + std::to_string(L_.inputs.size()) + " inputs");
    }
    if (L_.inputs.empty()) throw py::value_error("train: the cell has no inputs");
    const ir::Slot& first = L_.inputs[0];
    if (!byName.contains(first.name))
      throw py::value_error("the task's inputs miss input " + first.name);
    auto a0 = floatArray<double>(byName[py::str(first.name)], "the task's input " + first.name);
    if (a0.ndim() != static_cast<py::ssize_t>(first.shape.dims.size()) + 2)
      throw py::value_error("the task's input " + first.name + " has shape " +
                            shapeStr(Shape(a0.shape(), a0.shape() + a0.ndim())) + " but needs " +
                            needStr({"T", "B"}, {}, first));
    const int64_t T = a0.shape(0), B = batch;
    if (T < 1)  // no step to run, and no last step for mse_last
      throw py::value_error("the task's input " + first.name + " has T = 0 steps: a trial needs at least one");
    TrialBatch b;
    b.batch = B;
    b.steps = T;
    const std::string tb = " (B = " + std::to_string(B) + " asked for, T = " + std::to_string(T) +
                           " from input " + first.name + ")";
    b.inputs.assign(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(L_.inputSize * B)));
    for (const ir::Slot& s : L_.inputs) {
      if (!byName.contains(s.name)) throw py::value_error("the task's inputs miss input " + s.name);
      auto a = shapedArray<double>(byName[py::str(s.name)], "the task's input " + s.name,
                                   withLeading({T, B}, s), needStr({"T", "B"}, {T, B}, s) + tb);
      for (int64_t t = 0; t < T; ++t)
        std::memcpy(b.inputs[t].data() + B * s.offset, a.data() + t * B * s.size,
                    sizeof(double) * static_cast<size_t>(B * s.size));
    }
    const bool last = loss_.kind == LossKind::MseLast || loss_.kind == LossKind::CrossEntropyLast;
    py::object targets = seq[1];
    auto ta = floatArray<double>(targets, "the task's targets");
    const size_t per = static_cast<size_t>(B * out_.size);
    b.targets.assign(static_cast<size_t>(T), std::vector<double>(per, 0.0));
    if (last && ta.ndim() == static_cast<py::ssize_t>(out_.shape.dims.size()) + 1) {
      auto t1 = shapedArray<double>(targets, "the task's targets", withLeading({B}, out_),
                                    needStr({"B"}, {B}, out_) + " or " +
                                        needStr({"T", "B"}, {T, B}, out_) + tb);
      std::memcpy(b.targets.back().data(), t1.data(), sizeof(double) * per);
    } else {
      auto tt = shapedArray<double>(targets, "the task's targets", withLeading({T, B}, out_),
                                    needStr({"T", "B"}, {T, B}, out_) + " for output " +
                                        out_.name + tb);
      for (int64_t t = 0; t < T; ++t)
        std::memcpy(b.targets[t].data(), tt.data() + t * per, sizeof(double) * per);
    }
    if (seq.size() == 3 && !py::object(seq[2]).is_none()) {
      if (last)
        throw py::value_error(std::string("the task returned a mask, but loss '") + runtime::lossKindName(loss_.kind) +
                              "' takes none");
      auto m = shapedArray<double>(seq[2], "the task's mask", withLeading({T, B}, out_),
                                   needStr({"T", "B"}, {T, B}, out_) + tb);
      b.masks.assign(static_cast<size_t>(T), std::vector<double>(per));
      for (int64_t t = 0; t < T; ++t)
        std::memcpy(b.masks[t].data(), m.data() + t * per, sizeof(double) * per);
    }
    return b;
  }

  py::object fn_;
  const ir::Layout& L_;
  LossSpec loss_;
  const ir::Slot& out_;
  int64_t steps_ = 0;
};

// Any task, polling Python's signal handlers before each batch: a Ctrl-C (KeyboardInterrupt, or
// whatever a handler raised) sets the trainer's interrupt flag; the trainer then checkpoints and
// stops after this step, and train() raises it. A KeyboardInterrupt raised inside a Python task
// (where Ctrl-C usually lands: the trainer runs without the GIL) is caught the same way, and the
// batch is drawn again from the same generator state, so the step the trainer still takes, and
// the checkpoint after it, are those of an uninterrupted run: the resumed run is bit-identical
// (for a task that is a function of (batch, rng), as the docs ask). A second interrupt during that
// draw ends the call at once; the last checkpoint stays consistent.
// `kernelLock` (the training kernel's, held by the trainer) is let go while a batch is drawn: no
// kernel work is under way then, and a Python task may unroll that very cell.
class Interruptible : public Task {
 public:
  Interruptible(const Task& inner, std::unique_lock<std::mutex>& kernelLock)
      : inner_(inner), kernelLock_(kernelLock) {}
  ~Interruptible() override {
    py::gil_scoped_acquire gil;
    pending_.reset();
  }
  int64_t steps() const override { return inner_.steps(); }
  LossSpec loss() const override { return inner_.loss(); }
  TrialBatch sample(int64_t batch, std::mt19937_64& rng) const override {
    struct Unlocked {  // taken again before the trainer's next kernel call, also on an error
      std::unique_lock<std::mutex>& l;
      ~Unlocked() { l.lock(); }
    } unlocked{kernelLock_};
    kernelLock_.unlock();  // before the GIL: the mutex is never waited for with the GIL held
    {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) stash();
    }
    const std::mt19937_64 before = rng;  // the generator as this batch found it
    try {
      return inner_.sample(batch, rng);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_KeyboardInterrupt) || interrupted()) throw;
      {
        py::gil_scoped_acquire gil;
        e.restore();
        stash();
      }
      rng = before;
      return inner_.sample(batch, rng);
    }
  }
  bool interrupted() const { return pending_.has_value(); }

 private:
  void stash() const {  // with the GIL held and a Python error set
    pending_.emplace();
    runtime::Trainer::interruptFlag() = true;
  }

  const Task& inner_;
  std::unique_lock<std::mutex>& kernelLock_;
  mutable std::optional<py::error_already_set> pending_;
};

// The train options: each a key of the experiment format ("seed" is experiment.seed, NAME
// train.NAME), through the same binder, defaults and ranges as an experiment file's, plus the
// files and the progress line, which are this call's own.
struct TrainOptions {
  runtime::TrainConfig config;
  std::vector<std::string> edits;  // the settings as experiment edits: the run's identity
};

TrainOptions makeConfig(py::handle options) {
  Settings s("train option");
  TrainOptions o;
  for (const runtime::KeySpec& k : runtime::experimentKeys()) {
    // train.threads is the process's setting in Python (cellc.set_threads), not a call's.
    if (k.path == "experiment.seed") s.edit("seed", k.type, k.path, &o.edits);
    else if (k.path.rfind("train.", 0) == 0 && k.path != "train.threads")
      s.edit(k.path.substr(6), k.type, k.path, &o.edits);
  }
  std::string checkpoint, metrics;
  bool progress = true;
  s.text("checkpoint", &checkpoint), s.text("metrics", &metrics), s.boolean("progress", &progress);
  s.apply(options);
  try {
    runtime::Experiment e = runtime::experimentFromEdits(o.edits, "train options");
    o.config = runtime::trainConfig(e, e.phases.at(0));
  } catch (const runtime::ExperimentError& err) {
    throw py::value_error(err.what());
  }
  o.config.checkpointPath = checkpoint, o.config.metricsPath = metrics, o.config.progress = progress;
  return o;
}

// A checkpoint to resume must be of these settings: the check `cellc run` makes of its run folder
// (experimentDifference), naming the first setting that changed. Checkpoints that recorded no
// settings (before they did) resume as they always have.
void checkSameSettings(const std::string& checkpointPath, const std::string& settings) {
  if (checkpointPath.empty() || !std::filesystem::exists(checkpointPath)) return;
  const runtime::Checkpoint c = runtime::readCheckpoint(checkpointPath);
  if (c.experiment.empty()) return;
  const std::string diff = runtime::experimentDifference(c.experiment, settings);
  if (!diff.empty())
    throw py::value_error(checkpointPath + " holds a training with other settings (" + diff +
                          "); resuming would mix the two. Choose another checkpoint path, or "
                          "remove it to start over");
}

}  // namespace

py::dict train(Cell& cell, py::object task, py::object taskOptions, py::object params,
               const std::string& lossName, const std::string& output, py::object options,
               bool verbose) {
  const ir::Layout& L = cell.layout();
  TrainOptions opts = makeConfig(options);
  runtime::TrainConfig& cfg = opts.config;
  std::vector<std::string> settings = opts.edits;
  if (cfg.omega > 0)
    throw py::value_error("train option 'omega' needs the Omega kernel, which cellc.train does "
                          "not compile yet; use an experiment file (cellc.run)");

  std::unique_ptr<Task> owned;
  if (py::isinstance<py::str>(task)) {
    if (lossName != "auto" || !output.empty())
      throw py::value_error("loss and output belong to a Python task; a built-in task sets its own");
    std::vector<std::string> taskEdits;
    owned = builtinTask(task.cast<std::string>(), taskOptions, L, cfg.batch, taskEdits);
    settings.insert(settings.end(), taskEdits.begin(), taskEdits.end());
  } else if (PyCallable_Check(task.ptr())) {
    if (!taskOptions.is_none() && py::len(taskOptions) > 0)
      throw py::value_error("task_options are for built-in tasks; a Python task takes its own");
    LossSpec loss;
    if (std::optional<LossKind> k = runtime::parseLossKind(lossName)) loss.kind = *k;
    else if (lossName != "auto")
      throw py::value_error("loss '" + lossName + "': it must be mse, mse_last, cross_entropy or cross_entropy_last");
    if (L.outputs.empty()) throw py::value_error("train: the cell has no outputs to fit");
    if (!output.empty()) {
      const ir::Slot* s = L.find(ir::Role::Output, output);
      if (!s) {
        py::dict asked;
        asked[py::str(output)] = py::none();
        checkNames(asked, L.outputs, "output");  // raises, naming the outputs there are
      }
      loss.outputSlot = static_cast<int>(s - L.outputs.data());
    }
    owned = std::make_unique<CallableTask>(task, L, loss);
  } else {
    throw py::value_error("task must be a built-in task's name or a callable (batch, rng) -> "
                          "(inputs, targets[, mask]), got " + py::repr(task).cast<std::string>());
  }

  if (cfg.metric == "error_rate" && !runtime::isClassification(owned->loss().kind))
    throw py::value_error(std::string("train option metric='error_rate' scores choices, and loss '") +
                          runtime::lossKindName(owned->loss().kind) + "' makes none: use cross_entropy");

  const CellSource& src = cell.source();
  // The settings as TOML, recorded in each checkpoint and compared on a resume.
  const std::string settingsText = runtime::experimentFromEdits(settings, "train options").text;
  runtime::ModelInfo info{src.path, src.text, src.overrides, settingsText};
  Cell& trainer32 = cell.trainingCell();
  StepKernel<float>& kernel = trainer32.trainingKernel();
  std::vector<double> start;
  if (!params.is_none()) start = cell.flatParams<double>(params);

  // The buffers must fit before any is made (a MemoryError naming the bytes and the options).
  const int64_t steps = owned->steps();
  runtime::requireMemory(
      runtime::trainingMemory(kernel, {steps, cfg.batch, cfg.validationBatch, cfg.memoryBudgetMb << 20,
                                       cfg.optimizer == "adam" ? 2 : 0}),
      "train", "the train options batch = " + std::to_string(cfg.batch) + " and validation_batch = " +
                   std::to_string(cfg.validationBatch) + ", T = " + std::to_string(steps) +
                   " steps (from the task) and the cell's " + dimsText(src.dims));

  checkSameSettings(cfg.checkpointPath, settingsText);

  PyLog log(!verbose);
  runtime::TrainResult r;
  {
    runtime::Trainer trainer(src.ir, kernel, info, cfg, log);
    if (start.empty()) trainer.initialize();
    else trainer.setParams(start);
    py::gil_scoped_release release;
    // The kernel's mutex (its scratch memory is not shared between threads), held while the
    // trainer runs it; the task wrapper lets it go while the task runs.
    std::unique_lock<std::mutex> lock(trainer32.mutex());
    Interruptible wrapped(*owned, lock);
    runtime::Trainer::interruptFlag() = false;  // an interrupt of an earlier call is not this one's
    r = trainer.run(wrapped);
    lock.unlock();  // before the wrapper goes, which takes the GIL
  }
  log.flush();
  if (r.stopReason == runtime::StopReason::Interrupted) {
    runtime::Trainer::interruptFlag() = false;  // handled here: the next call trains again
    std::string msg = "training interrupted at step " + std::to_string(r.steps);
    msg += cfg.checkpointPath.empty()
               ? " (no checkpoint: pass checkpoint=PATH to resume)"
               : "; checkpoint saved in " + cfg.checkpointPath + " (train again to resume)";
    PyErr_SetString(PyExc_KeyboardInterrupt, msg.c_str());
    throw py::error_already_set();
  }
  py::dict result;
  result["params"] = cell.isDouble() ? cell.paramDict<double>(r.params)
                                     : cell.paramDict<float>(r.params);
  result["steps"] = r.steps;
  result["best_error"] = r.bestError;
  result["last_loss"] = r.lastLoss;
  result["stop_reason"] = runtime::stopReasonName(r.stopReason);
  result["resumed"] = r.resumed;
  return result;
}

void bindTrain(py::module_& m) {
  m.def("train", &train, py::arg("cell"), py::arg("task"), py::arg("task_options"),
        py::arg("params"), py::arg("loss"), py::arg("output"), py::arg("options"),
        py::arg("verbose"));
}

}  // namespace cellc::python
