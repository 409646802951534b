// The tasks an experiment can name (`task.kind`), one row each: the kind and a factory that reads
// the phase's keys and checks the ones that are valid alone but impossible together. Adding a
// task is a class in runtime/tasks/, its keys in the schema (Spec.cpp) and one row here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experiment/Spec.h"
#include "ir/Step.h"
#include "train/Trainer.h"

namespace cellc::runtime {

struct TaskDef {
  const char* kind;
  std::unique_ptr<Task> (*make)(const Experiment& e, const PhaseSpec& p);
  bool hasTimeStep = false;  // its trials are sampled every task.dt ms
};
const std::vector<TaskDef>& taskTable();

// The phase's time step (task.dt) when its task has one, else 0. A cell written with d(x)/dt
// takes its dt from here (experiment/Model.h).
double taskTimeStep(const PhaseSpec& p);

// The task of a phase. Throws ExperimentError naming the key and where it was set.
std::unique_ptr<Task> makeTask(const Experiment& e, const PhaseSpec& p);

// The longest trial any task may have, in steps, and the most memory one batch of trials may take.
inline constexpr int64_t kMaxTrialSteps = 1'000'000;
inline constexpr double kMaxBatchBytes = 4e9;

// Before any training: the task's input and target sizes match the cell's first input and first
// output, and a batch of `batch` trials fits in memory. Throws ExperimentError naming the key.
void checkTaskFits(const Experiment& e, const PhaseSpec& p, const Task& task, const ir::Layout& L,
                   int64_t batch);

// A built-in task from `task.KEY=VALUE` edits alone (cellc.train's task_options), through the
// same schema ranges and checks as an experiment's [task] table (makeTask, checkTaskFits): one
// checking path whatever the options' source. Throws ExperimentError located at "ORIGIN: EDIT".
std::unique_ptr<Task> taskFromEdits(const std::vector<std::string>& edits, const std::string& origin,
                                    const ir::Layout& L, int64_t batch);

}  // namespace cellc::runtime
