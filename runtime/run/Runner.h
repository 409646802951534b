// `cellc run`: an experiment file to a run folder.
//
//   RUN/experiment.toml   the resolved experiment (profile and --set applied)
//   RUN/cell.cell         the cell's source
//   RUN/metrics.csv       the learning curve (phase, step, loss, val_error, grad_norm, seconds)
//   RUN/train-PHASE.ckpt  checkpoints while a phase trains (resumed on the next run)
//   RUN/done-PHASE.ckpt   a finished phase: its best params (a rerun skips it)
//   RUN/params/NAME.npy   the trained params
//   RUN/arrays/*.npy      what the analyses measured
//   RUN/summary.json      the numbers, beside the paper's claims
//   RUN/figures/*.png     drawn by experiments/plot.py (python3 + matplotlib), if available
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "experiment/Spec.h"

namespace cellc::runtime {

class ModelCache;

struct RunOptions {
  std::string outDir;        // empty: runs/<experiment name>
  bool plot = true;          // run the figure script at the end
  std::string plotScript;    // empty: experiments/plot.py beside the experiment, or the source tree's
  bool fresh = false;        // move an existing run folder aside (DIR.old-N) and start over
};

// A run whose buffers would exceed the machine's memory (train/Memory.h), refused before anything
// is allocated: the located message says the bytes and the keys.
struct ExperimentOutOfMemory : ExperimentError {
  ExperimentOutOfMemory(const std::string& message, int64_t neededBytes, int64_t availableBytes)
      : ExperimentError(message), needed(neededBytes), available(availableBytes) {}
  int64_t needed, available;
};

// Runs (or resumes) the experiment; returns the run folder. Throws on errors, with a message
// that says what and where.
std::string runExperiment(const Experiment& e, const RunOptions& options, std::ostream& log);

// Everything runExperiment checks before it touches a run folder, without running anything: the
// cell compiles with the experiment's dims and consts, every phase's task fits it, every analysis's
// keys are in range. Throws ExperimentError with the located message. `models` keeps the compiled
// cells for the next experiment (a sweep checks all its runs this way before it starts one).
void checkExperiment(const Experiment& e, ModelCache& models);

}  // namespace cellc::runtime
