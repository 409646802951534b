#include "experiment/TaskTable.h"

#include <sstream>

#include "tasks/PerceptualDecision.h"
#include "tasks/Tasks.h"

namespace cellc::runtime {

namespace {

[[noreturn]] void fail(const Experiment& e, const PhaseSpec& p, const std::string& key,
                       const std::string& msg) {
  throw ExperimentError(keyWhere(e, p, key) + ": error: key '" + key + "': " + msg);
}

// pycog's input and trial timing, shared by the sequence tasks.
PycogInput pycogInput(const Experiment& e, const PhaseSpec& p) {
  const TaskSettings& t = p.task;
  PycogInput in{t.dt, t.baseline, t.tauIn, t.sigmaIn, t.duration, t.onsetMin, t.onsetMax};
  if (in.onsetMin > in.onsetMax) {
    std::ostringstream os;
    os << "task.onset_min = " << in.onsetMin << " is after task.onset_max = " << in.onsetMax;
    fail(e, p, "task.onset_min", os.str());
  }
  if (in.onsetMax > in.duration) {
    std::ostringstream os;
    os << "task.onset_max = " << in.onsetMax << " is after the end of the trial (task.duration = "
       << in.duration << ")";
    fail(e, p, "task.onset_max", os.str());
  }
  const double steps = in.duration / in.dt;
  if (steps < 1 || steps > static_cast<double>(kMaxTrialSteps)) {
    std::ostringstream os;
    os << "task.duration / task.dt = " << in.duration << " / " << in.dt << " = " << steps
       << " steps: a trial takes 1 to " << kMaxTrialSteps << " steps";
    fail(e, p, steps < 1 ? "task.duration" : "task.dt", os.str());
  }
  return in;
}

std::unique_ptr<Task> sequence(const Experiment& e, const PhaseSpec& p) {
  const TaskSettings& t = p.task;
  SequenceSpec s;
  s.in = pycogInput(e, p);
  s.inputAmp = t.inputAmp, s.inputDecay = t.inputDecay;
  s.inputSign = t.inputSign, s.period = t.period;
  s.outputs = t.outputs;
  s.height = t.height, s.offset = t.offset, s.spacing = t.spacing;
  s.width = t.width, s.reverse = t.reverse;
  return std::make_unique<SequenceTask>(s);
}

std::unique_ptr<Task> multiSequence(const Experiment& e, const PhaseSpec& p) {
  const TaskSettings& t = p.task;
  MultiSequenceSpec s;
  s.in = pycogInput(e, p);
  s.tasks = t.tasks, s.perTask = t.perTask;
  s.inputDecay = t.inputDecay, s.height = t.height;
  s.offset = t.offset, s.spacing = t.spacing, s.width = t.width;
  return std::make_unique<MultiSequenceTask>(s);
}

std::unique_ptr<Task> copyFirst(const Experiment& e, const PhaseSpec& p) {
  const int64_t steps = p.task.steps;
  if (steps > kMaxTrialSteps)
    fail(e, p, "task.steps", "task.steps = " + std::to_string(steps) + ": a trial takes at most " +
                                 std::to_string(kMaxTrialSteps) + " steps");
  return std::make_unique<CopyFirstTask>(CopyFirstSpec{steps, p.task.dim});
}

std::unique_ptr<Task> perceptualDecision(const Experiment& e, const PhaseSpec& p) {
  const TaskSettings& t = p.task;
  PerceptualDecisionSpec s;
  s.in.dt = t.dt, s.in.baseline = t.baseline;
  s.in.tauIn = t.tauIn, s.in.sigmaIn = t.sigmaIn;
  s.fixation = t.fixation, s.stimulus = t.stimulus, s.decision = t.decision;
  s.coherences = t.coherences;
  if (s.coherences.empty()) fail(e, p, "task.coherences", "the list is empty: give at least one coherence");
  for (double c : s.coherences)
    if (!(c >= 0 && c <= 100)) {
      std::ostringstream os;
      os << "coherence " << c << " is out of range: a percentage, 0 to 100";
      fail(e, p, "task.coherences", os.str());
    }
  // Every epoch with evidence or a target has a step, and the trial is not too long.
  for (auto [key, ms] : {std::pair{"task.stimulus", s.stimulus}, {"task.decision", s.decision}})
    if (s.stepsOf(ms) < 1) {
      std::ostringstream os;
      os << key << " = " << ms << " ms is shorter than half a step (task.dt = " << s.in.dt << " ms)";
      fail(e, p, key, os.str());
    }
  if (s.stimulusSteps() < 1 || s.steps() - s.stimulusSteps() - s.fixationSteps() < 1)
    fail(e, p, "task.dt", "task.dt is too long for the epochs: the stimulus and the decision need a step each");
  if (s.steps() > kMaxTrialSteps)
    fail(e, p, "task.dt", "a trial of " + std::to_string(s.steps()) + " steps: a trial takes at most " +
                              std::to_string(kMaxTrialSteps) + " steps");
  return std::make_unique<PerceptualDecisionTask>(s);
}

const std::vector<TaskDef> kTasks = {
    {"sequence", sequence, true},
    {"multi_sequence", multiSequence, true},
    {"copy_first", copyFirst},
    {"perceptual_decision", perceptualDecision, true},
};

}  // namespace

const std::vector<TaskDef>& taskTable() { return kTasks; }

double taskTimeStep(const PhaseSpec& p) {
  for (const TaskDef& d : kTasks)
    if (p.task.kind == d.kind) return d.hasTimeStep ? p.task.dt : 0.0;
  return 0.0;
}

std::unique_ptr<Task> makeTask(const Experiment& e, const PhaseSpec& p) {
  const std::string& kind = p.task.kind;
  for (const TaskDef& d : kTasks)
    if (kind == d.kind) return d.make(e, p);
  fail(e, p, "task.kind", "no task '" + kind + "'");
}

void checkTaskFits(const Experiment& e, const PhaseSpec& p, const Task& task, const ir::Layout& L,
                   int64_t batch) {
  const std::string& kind = p.task.kind;
  const std::string ph = e.phases.size() > 1 ? " (phase " + p.name + ")" : "";
  if (L.inputs.empty() || L.outputs.empty())
    fail(e, p, "task.kind", "task " + kind + " needs a cell with an input and an output" + ph);
  // The size of a key's owner in this task, for the message.
  const char* outKey = kind == "copy_first"       ? "task.dim"
                       : kind == "multi_sequence" ? "task.tasks"
                       : kind == "sequence"       ? "task.outputs"
                                                  : "task.kind";
  const char* inKey = kind == "copy_first" ? "task.dim" : "task.kind";
  if (task.outputDim() >= 0 && task.outputDim() != L.outputs[0].size)
    fail(e, p, outKey, "task " + kind + " has " + std::to_string(task.outputDim()) +
                           " outputs per step, the cell's output " + L.outputs[0].name + " has " +
                           std::to_string(L.outputs[0].size) + ph);
  if (task.inputDim() >= 0 && task.inputDim() != L.inputSize)
    fail(e, p, inKey, "task " + kind + " has " + std::to_string(task.inputDim()) +
                          " inputs per step, the cell takes " + std::to_string(L.inputSize) + ph);
  const double bytes = static_cast<double>(task.steps()) * static_cast<double>(batch) *
                       static_cast<double>(L.inputSize + 2 * L.outputs[0].size) * sizeof(double);
  if (bytes > kMaxBatchBytes) {
    std::ostringstream os;
    os << "a batch of " << batch << " trials of " << task.steps() << " steps takes " << bytes / 1e9
       << " GB, more than " << kMaxBatchBytes / 1e9 << " GB: shorten the trial or the batch" << ph;
    fail(e, p, "train.batch", os.str());
  }
}

std::unique_ptr<Task> taskFromEdits(const std::vector<std::string>& edits, const std::string& origin,
                                    const ir::Layout& L, int64_t batch) {
  Experiment e = experimentFromEdits(edits, origin);
  std::unique_ptr<Task> task = makeTask(e, e.phases.at(0));
  checkTaskFits(e, e.phases.at(0), *task, L, batch);
  return task;
}

}  // namespace cellc::runtime
