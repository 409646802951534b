// The training loop: any compiled cell, any task. Fresh trials every step, validation every k
// steps on fresh trials, early stop on a target error, a loss target or patience, the best
// parameters kept; a progress line; a NaN or Inf stops the run and keeps the last good state;
// checkpoints written atomically, resumed bit-identically, and on Ctrl-C.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pipeline/Lower.h"
#include "random/Streams.h"
#include "train/Bptt.h"
#include "train/Ewc.h"
#include "train/NoiseDraw.h"
#include "train/Optimizer.h"

namespace cellc::runtime {

class MetricsLog;

// A task makes batches of trials; the trainer never looks inside them.
class Task {
 public:
  virtual ~Task() = default;
  virtual int64_t steps() const = 0;
  virtual TrialBatch sample(int64_t batch, std::mt19937_64& rng) const = 0;
  virtual LossSpec loss() const { return {}; }
  // Sizes of one trial's input and target per step (per trial of the batch); -1: not known, and
  // not checked against the cell.
  virtual int64_t inputDim() const { return -1; }
  virtual int64_t outputDim() const { return -1; }
  // A classification task's ideal observer: the share of choices it gets right on this task's
  // trials (the test stage reports it beside the network's); NaN: none is known.
  virtual double idealAccuracy() const { return std::nan(""); }
};

// What identifies the model in checkpoints (a resumed run must be the same cell and sizes).
struct ModelInfo {
  std::string cellPath;
  std::string cellSource;
  std::map<std::string, double> overrides;
  std::string experiment;  // the resolved experiment text, when run from one
};

struct TrainConfig {
  std::string optimizer = "sgd";   // sgd | adam
  double learningRate = 1e-3;
  double clipNorm = 1.0;           // global gradient norm clip; <= 0: none
  int64_t batch = 20;
  int64_t maxSteps = 100000;
  int64_t validateEvery = 500;
  int64_t validationBatch = 100;
  std::string metric = "rmse";     // what "error" means: rmse (sqrt of the loss), loss, or error_rate (1 - accuracy)
  double targetError = -1;         // stop when the validation error reaches it; < 0: off
  double targetLoss = -1;          // stop when a minibatch loss is below it; < 0: off
  int64_t patience = 0;            // stop after this many validations without improvement; 0: off
  uint64_t seed = 1;
  bool noise = true;               // draw the cell's normal noise (N(0, 1)); off: zeros
  RecurrentDropout dropout;        // fills the cell's `~ dropout()` noise while training; needs one
  std::vector<std::string> frozen; // params that do not train
  int64_t segment = 0;             // BPTT segment length; 0: automatic (within memoryBudgetMb)
  int64_t memoryBudgetMb = kDefaultMemoryBudgetMb;  // BPTT keeps every step's tape within it
  int threads = 0;                 // threads of the matrix products (blas/Threads.h); 0: all cores
  int64_t batchShards = 0;         // BPTT's batch shards (train/Bptt.h); 0: automatic, 1: none
  bool inputStage = false;         // BPTT runs the kernel's input stage (train/Bptt.h)
  bool flushDenormals = true;      // denormals flushed to zero while training (blas/FloatMode.h)
  double omega = 0;                // weight of pycog's vanishing-gradient regularizer; 0: off
  std::string omegaState;          // the state it regularizes; empty: the first
  std::string checkpointPath;      // empty: no checkpoints
  int64_t checkpointEvery = 1000;  // steps
  std::string metricsPath;         // learning curve CSV; empty: none
  bool progress = true;
  // A name for this training phase (multi-phase runs), in the learning curve's first column:
  // never empty, as the curve's reader drops a row without one (the experiment format's default
  // phase is "train" too).
  std::string phase = "train";
  std::vector<double> lossMilestones;  // record the first step whose minibatch loss is below each
  // target_loss and the milestones read the mean of the last lossWindow minibatch losses, so one
  // lucky minibatch cannot end a run or mark a milestone; 1: each minibatch alone
  int64_t lossWindow = 1;
};

// The key of a loss milestone in TrainResult::milestones ("0.5", "0.1").
std::string milestoneKey(double loss);

// Thrown when Ctrl-C or SIGTERM stops work that cannot checkpoint midway (the Fisher).
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown on resuming a phase that diverged: training it again would diverge again.
struct Diverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Why a phase's training stopped. Compared as an enum; written as its name (stopReasonName) only
// at the edges: summary.json's training.stop_reason and the Python result's "stop_reason".
enum class StopReason { Target, LossTarget, Patience, MaxSteps, Diverged, Interrupted };
inline const char* stopReasonName(StopReason r) {
  switch (r) {
    case StopReason::Target: return "target";
    case StopReason::LossTarget: return "loss-target";
    case StopReason::Patience: return "patience";
    case StopReason::MaxSteps: return "max-steps";
    case StopReason::Diverged: return "diverged";
    case StopReason::Interrupted: return "interrupted";
  }
  return "unknown";
}

struct TrainResult {
  int64_t steps = 0;
  double bestError = INFINITY;
  double lastLoss = NAN;
  StopReason stopReason = StopReason::MaxSteps;
  bool resumed = false;
  std::string diverged;            // how it diverged (StopReason::Diverged)
  double seconds = 0;              // training time over every sitting of this phase
  std::map<std::string, int64_t> milestones;  // milestoneKey(loss) -> first step below it
  std::map<std::string, double> milestoneSeconds;  // milestoneKey(loss) -> training seconds then
  std::vector<double> params;      // the best parameters (or the last good ones)
};

class Trainer {
 public:
  Trainer(const StepIR& ir, StepKernel<float>& kernel, ModelInfo info, TrainConfig cfg,
          std::ostream& log);

  // Fresh parameters from the cell's initializers (the Init random stream).
  void initialize();
  // Parameters given by the caller (e.g. a previous phase's result).
  void setParams(std::vector<double> params);
  const std::vector<double>& params() const { return params_; }

  // Trains; resumes from cfg.checkpointPath when it exists and matches this model.
  TrainResult run(const Task& task);

  // Validation error of the current parameters on `trials` fresh trials drawn from `rng`.
  double evaluate(const Task& task, const std::vector<double>& params, int64_t trials,
                  std::mt19937_64& rng);

  // EWC: the diagonal Fisher of `task`'s loss at the current parameters from per-trial gradients
  // (batch 1), without dropout (every unit kept), and its consolidation with strength lambda.
  std::vector<double> fisher(const Task& task, int64_t trials);
  Ewc& ewc() { return ewc_; }
  // EWC's course form (train/Ewc.h): F at the current params on the minibatch b (its noise),
  // whose loss names the output read as logits.
  std::vector<double> courseFisher(Bptt<float>& bptt, const TrialBatch& b, const LossSpec& loss,
                                   const std::vector<std::vector<float>>& noise);
  RandomStreams& streams() { return streams_; }

  // Set by the SIGINT handler; the loop saves a checkpoint and stops.
  static std::atomic<bool>& interruptFlag();

 private:
  // A batch's noise: normal slots from `rng` (when cfg.noise); dropout slots get masks from the
  // Dropout stream when `train` (training steps), else ones.
  std::vector<std::vector<float>> noiseFor(int64_t batch, int64_t steps, std::mt19937_64& rng,
                                           bool train);
  void saveCheckpoint(int64_t step, const Optimizer& opt, double best,
                      const std::vector<double>& bestParams, double seconds,
                      const std::string& diverged = "");
  bool tryResume(int64_t& step, Optimizer& opt, double& best, std::vector<double>& bestParams,
                 double& seconds);

  const StepIR& ir_;
  StepKernel<float>& kernel_;
  ModelInfo info_;
  TrainConfig cfg_;
  std::ostream& log_;
  std::vector<double> params_;
  RandomStreams streams_;
  Ewc ewc_;
  int64_t sinceBest_ = 0;  // validations since the best one (patience)
  std::map<std::string, int64_t> milestones_;
  std::map<std::string, double> milestoneSeconds_;
  std::vector<double> lossWindow_;  // the last cfg_.lossWindow minibatch losses, oldest first
  MetricsLog* metrics_ = nullptr;  // the curve of the phase in training
};

// Throws std::invalid_argument, naming train.dropout, when dropout is on and the cell has no
// `~ dropout()` noise for it to fill.
void checkDropoutFits(const StepIR& ir, const RecurrentDropout& dropout);

// Installs SIGINT and SIGTERM handlers that set Trainer::interruptFlag() (a second signal ends
// the process at once).
void installInterruptHandler();
// The exit status of a process those handlers stopped: 128 + the last signal they caught (130
// for SIGINT, 143 for SIGTERM, as a shell reports a process the signal killed); 130 if none did.
int interruptedExitCode();

}  // namespace cellc::runtime
