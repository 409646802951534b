#include "train/Trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "blas/FloatMode.h"
#include "params/Init.h"
#include "train/Checkpoint.h"
#include "train/Metrics.h"

namespace cellc::runtime {

namespace {

using Clock = std::chrono::steady_clock;

bool allFinite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

std::vector<float> toFloat(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// A double as text that reads back to the same bits (checkpoint extras).
std::string exactText(double x) {
  std::ostringstream os;
  os << std::setprecision(17) << x;
  return os.str();
}

}  // namespace

std::string milestoneKey(double loss) {
  std::ostringstream os;
  os << loss;
  return os.str();
}

namespace {

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  std::ostringstream os;
  int64_t s = static_cast<int64_t>(seconds);
  if (s >= 3600) os << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60) os << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else os << s << "s";
  return os.str();
}

// A validation stream of its own, derived from the seed and the step: how often the run validates
// never changes the training data.
std::mt19937_64 validationRng(uint64_t seed, int64_t step) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(step), 0x7a11dU};
  return std::mt19937_64(seq);
}

std::unique_ptr<Optimizer> makeOptimizer(const TrainConfig& cfg, const ir::Layout& L) {
  FreezeMask mask = FreezeMask::none(L.paramSize);
  for (const std::string& name : cfg.frozen) mask.freeze(L, name);
  if (cfg.optimizer == "sgd") return std::make_unique<Sgd>(cfg.learningRate, cfg.clipNorm, mask);
  if (cfg.optimizer == "adam")
    return std::make_unique<Adam>(cfg.learningRate, 0.9, 0.999, 1e-8, mask, cfg.clipNorm);
  throw std::invalid_argument("unknown optimizer '" + cfg.optimizer + "' (sgd or adam)");
}

// Ctrl-C and SIGTERM (what a cluster scheduler sends before it kills a job) only raise the flag;
// the loop checkpoints and stops. A second signal ends the process at once.
std::atomic<int> gStopSignal{0};  // lock-free: set from the handler

void handleStop(int sig) {
  gStopSignal = sig;
  if (Trainer::interruptFlag().exchange(true)) std::_Exit(128 + sig);
}

}  // namespace

std::atomic<bool>& Trainer::interruptFlag() {
  static std::atomic<bool> flag{false};
  return flag;
}

void installInterruptHandler() {
  std::signal(SIGINT, handleStop);
  std::signal(SIGTERM, handleStop);
}

int interruptedExitCode() { return 128 + (gStopSignal ? gStopSignal.load() : SIGINT); }

Trainer::Trainer(const StepIR& ir, StepKernel<float>& kernel, ModelInfo info, TrainConfig cfg,
                 std::ostream& log)
    : ir_(ir), kernel_(kernel), info_(std::move(info)), cfg_(std::move(cfg)), log_(log),
      params_(ir.layout.paramSize, 0.0), streams_(cfg_.seed) {}

void checkDropoutFits(const StepIR& ir, const RecurrentDropout& dropout) {
  if (dropout.p <= 0 || ir.layout.hasDropout()) return;
  std::ostringstream os;
  os << "train.dropout = " << dropout.p << ", but cell " << ir.cellName
     << " declares no dropout mask. Declare one and multiply what the recurrence reads by it, e.g. "
        "`noise keep[n] ~ dropout()` and `r = relu(x) * keep` (masking a state itself would rescale "
        "a leaky or gated state at every step)";
  throw std::invalid_argument(os.str());
}

void Trainer::initialize() { initParams(ir_, params_, streams_[Stream::Init]); }

void Trainer::setParams(std::vector<double> params) {
  if (static_cast<int64_t>(params.size()) != ir_.layout.paramSize)
    throw std::invalid_argument("setParams: " + std::to_string(params.size()) + " values for " +
                                std::to_string(ir_.layout.paramSize) + " params");
  params_ = std::move(params);
}

std::vector<std::vector<float>> Trainer::noiseFor(int64_t batch, int64_t steps,
                                                  std::mt19937_64& rng, bool train) {
  return drawNoise<float>(ir_.layout, batch, steps, cfg_.noise ? &rng : nullptr, cfg_.dropout,
                          train ? &streams_[Stream::Dropout] : nullptr);
}

double Trainer::evaluate(const Task& task, const std::vector<double>& params, int64_t trials,
                         std::mt19937_64& rng) {
  TrialBatch b = task.sample(trials, rng);
  Bptt<float> bptt(kernel_, trials, b.steps, cfg_.segment, cfg_.memoryBudgetMb << 20,
                   SegmentGemms::Auto, cfg_.batchShards, cfg_.inputStage);
  std::vector<std::vector<float>> outputs;
  bptt.forward(toFloat(params), b, noiseFor(trials, b.steps, rng, false), {}, outputs);
  std::vector<std::vector<double>> out64;
  for (auto& o : outputs) out64.emplace_back(o.begin(), o.end());
  if (cfg_.metric == "error_rate") {
    if (!isClassification(task.loss().kind))
      throw std::invalid_argument(std::string("metric error_rate scores choices, and loss ") +
                                  lossKindName(task.loss().kind) + " makes none");
    return 1 - accuracyOf(task.loss(), ir_.layout, b, out64).value();
  }
  double loss = lossValue(task.loss(), ir_.layout, b, out64);
  return cfg_.metric == "rmse" ? std::sqrt(loss) : loss;
}

std::vector<double> Trainer::fisher(const Task& task, int64_t trials) {
  FisherAccumulator acc(params_.size());
  std::mt19937_64& rng = streams_[Stream::Data];
  std::vector<float> p = toFloat(params_);
  for (int64_t i = 0; i < trials; ++i) {
    if (interruptFlag()) throw Interrupted("interrupted while computing the Fisher information");
    TrialBatch b = task.sample(1, rng);
    Bptt<float> bptt(kernel_, 1, b.steps, cfg_.segment, cfg_.memoryBudgetMb << 20);
    BpttResult<float> r = bptt.lossAndGradient(p, b, task.loss(), noiseFor(1, b.steps, streams_[Stream::Noise], false), {});
    acc.addTrialGradient(r.dParams);
  }
  return acc.fisher();
}

// pycog's course trainer's F (train/Ewc.h): the squared gradient of sum_{t,b,i} log softmax(z)_i
// over the minibatch, divided by its M = T B N_out terms. That sum is -M times the cross-entropy
// of softmax(z) against a target of ones on every unit at every step, whose loss cellc divides by
// M: F = (M grad CE)^2 / M = M (grad CE)^2.
std::vector<double> Trainer::courseFisher(Bptt<float>& bptt, const TrialBatch& b, const LossSpec& loss,
                                          const std::vector<std::vector<float>>& noise) {
  const ir::Slot& out = lossOutput(ir_.layout, loss);
  TrialBatch ones = b;
  ones.masks.clear();
  for (auto& t : ones.targets) t.assign(static_cast<size_t>(out.size * b.batch), 1.0);
  const LossSpec ce{LossKind::CrossEntropy, loss.outputSlot};
  const BpttResult<float> r = bptt.lossAndGradient(toFloat(params_), ones, ce, noise, {});
  const double m = static_cast<double>(b.steps * b.batch * out.size);
  std::vector<double> f(r.dParams.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = m * r.dParams[i] * r.dParams[i];
  return f;
}

void Trainer::saveCheckpoint(int64_t step, const Optimizer& opt, double best,
                             const std::vector<double>& bestParams, double seconds,
                             const std::string& diverged) {
  // The curve reaches the disk first: the file never holds less than the checkpoint says.
  if (metrics_) metrics_->flush();
  if (cfg_.checkpointPath.empty()) return;
  Checkpoint c;
  c.cellSource = info_.cellSource;
  c.cellPath = info_.cellPath;
  c.overrides = info_.overrides;
  c.experiment = info_.experiment;
  c.step = step;
  c.params = params_;
  c.bestParams = bestParams;
  c.bestValidation = best;
  c.optimizerKind = opt.kind();
  std::ostringstream os;
  opt.save(os);
  c.optimizerState = os.str();
  c.randomState = streams_.save();
  std::ostringstream es;
  ewc_.save(es);
  c.ewcState = es.str();
  c.extra["phase"] = cfg_.phase;
  c.extra["since_best"] = std::to_string(sinceBest_);
  c.extra["seconds"] = std::to_string(seconds);
  for (auto& [k, v] : milestones_) c.extra["milestone " + k] = std::to_string(v);
  for (auto& [k, v] : milestoneSeconds_) c.extra["milestone_seconds " + k] = exactText(v);
  if (cfg_.lossWindow > 1) {
    std::string w;
    for (double l : lossWindow_) w += (w.empty() ? "" : " ") + exactText(l);
    c.extra["loss_window"] = w;
  }
  if (!diverged.empty()) c.extra["diverged"] = diverged;
  writeCheckpoint(cfg_.checkpointPath, c);
}

bool Trainer::tryResume(int64_t& step, Optimizer& opt, double& best, std::vector<double>& bestParams,
                        double& seconds) {
  if (cfg_.checkpointPath.empty() || !std::filesystem::exists(cfg_.checkpointPath)) return false;
  Checkpoint c = readCheckpoint(cfg_.checkpointPath);
  checkCompatible(c, info_.cellSource, info_.overrides, ir_.layout.paramSize);
  // A checkpoint of cellc.train from before phases had a default name says "".
  const bool unnamed = c.extra.count("phase") && c.extra.at("phase").empty() && cfg_.phase == "train";
  if (c.extra.count("phase") && c.extra.at("phase") != cfg_.phase && !unnamed)
    throw CheckpointError(cfg_.checkpointPath + ": belongs to training phase '" + c.extra.at("phase") +
                          "', not '" + cfg_.phase + "'; each phase needs its own checkpoint path");
  if (c.optimizerKind != opt.kind())
    throw CheckpointError(cfg_.checkpointPath + ": written by optimizer " + c.optimizerKind +
                          ", this run uses " + opt.kind());
  params_ = c.params;
  bestParams = c.bestParams;
  best = c.bestValidation;
  step = c.step;
  if (auto it = c.extra.find("diverged"); it != c.extra.end())
    throw Diverged("training phase '" + cfg_.phase + "' diverged in an earlier run: " + it->second +
                   " (" + cfg_.checkpointPath + " keeps its last good parameters). Lower the "
                   "learning rate or clip the gradient, and start again in a fresh folder");
  if (auto it = c.extra.find("since_best"); it != c.extra.end()) sinceBest_ = std::stoll(it->second);
  if (auto it = c.extra.find("seconds"); it != c.extra.end()) seconds = std::stod(it->second);
  for (auto& [k, v] : c.extra) {
    if (k.rfind("milestone ", 0) == 0) milestones_[k.substr(10)] = std::stoll(v);
    if (k.rfind("milestone_seconds ", 0) == 0) milestoneSeconds_[k.substr(18)] = std::stod(v);
  }
  lossWindow_.clear();
  if (auto it = c.extra.find("loss_window"); it != c.extra.end()) {
    std::istringstream ws(it->second);
    for (double l; ws >> l;) lossWindow_.push_back(l);
  }
  std::istringstream os(c.optimizerState);
  opt.load(os);
  streams_.load(c.randomState);
  std::istringstream es(c.ewcState);
  if (!c.ewcState.empty()) ewc_.load(es);
  return true;
}

TrainResult Trainer::run(const Task& task) {
  const FlushDenormals flush(cfg_.flushDenormals);  // this thread, and the pool's chunks it hands out
  const ir::Layout& L = ir_.layout;
  checkDropoutFits(ir_, cfg_.dropout);
  std::unique_ptr<Optimizer> opt = makeOptimizer(cfg_, L);
  TrainResult res;
  int64_t step = 0;
  double best = INFINITY;
  std::vector<double> bestParams;
  sinceBest_ = 0;
  milestones_.clear();
  milestoneSeconds_.clear();
  lossWindow_.clear();
  if (cfg_.lossWindow < 1) throw std::invalid_argument("train.loss_window must be at least 1");
  if (cfg_.dropout.fixed && cfg_.dropout.p > 0) {
    if (cfg_.dropout.perStep)
      throw std::invalid_argument("train.dropout_fixed and train.dropout_per_step exclude each other");
    // Its own generator, seeded by the run's seed and the phase, so a resumed phase (and only
    // this phase) gets the same mask.
    std::seed_seq seq{cfg_.seed, static_cast<uint64_t>(std::hash<std::string>{}(cfg_.phase)), uint64_t{0xf1ed}};
    std::mt19937_64 g(seq);
    cfg_.dropout.fixedMask = drawFixedMask(L, cfg_.dropout.p, g);
    int64_t kept = 0;
    for (double k : cfg_.dropout.fixedMask) kept += k > 0;
    log_ << "dropout: one fixed mask for the phase, " << kept << " of " << cfg_.dropout.fixedMask.size()
         << " units kept, not rescaled (pycog's course trainer)\n";
  }
  double secondsBefore = 0;  // training time of earlier sittings (the curve's clock continues)
  res.resumed = tryResume(step, *opt, best, bestParams, secondsBefore);
  if (res.resumed)
    log_ << "resuming " << (cfg_.phase.empty() ? "" : cfg_.phase + " ") << "from step " << step
         << " (" << cfg_.checkpointPath << ")\n";

  // Phases of one run share a curve: this phase's rows after the checkpoint go (a crash may have
  // left some, or torn ones); other phases' rows stay.
  std::optional<MetricsLog> metricsLog;
  if (!cfg_.metricsPath.empty()) {
    metricsLog.emplace(cfg_.metricsPath, cfg_.phase);
    metricsLog->keepUpTo(step);
  }
  metrics_ = metricsLog ? &*metricsLog : nullptr;
  struct Reset {
    MetricsLog*& m;
    ~Reset() { m = nullptr; }
  } reset{metrics_};
  const bool tty = cfg_.progress && isatty(fileno(stderr));
  const int64_t steps = task.steps();
  Bptt<float> bptt(kernel_, cfg_.batch, steps, cfg_.segment, cfg_.memoryBudgetMb << 20,
                   SegmentGemms::Auto, cfg_.batchShards, cfg_.inputStage);
  if (cfg_.omega > 0) {
    int slot = 0;
    if (!cfg_.omegaState.empty()) {
      const ir::Slot* s = L.find(ir::Role::State, cfg_.omegaState);
      if (!s) throw std::invalid_argument("omega: the cell has no state '" + cfg_.omegaState + "'");
      slot = static_cast<int>(s - L.states.data());
    }
    bptt.setOmega({cfg_.omega, slot});
  }
  auto t0 = Clock::now();
  int64_t startStep = step;
  double lastVal = NAN;
  std::vector<double> lastGood = params_;
  // A Ctrl-C that came before (during compilation or initialization) is honoured here.
  auto elapsed = [&] { return secondsBefore + std::chrono::duration<double>(Clock::now() - t0).count(); };

  auto progress = [&](bool final) {
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    double rate = secs > 0 ? static_cast<double>(step - startStep) / secs : 0;
    std::ostringstream os;
    os << (cfg_.phase.empty() ? "" : cfg_.phase + " ") << "step " << step << "/" << cfg_.maxSteps
       << "  loss " << std::setprecision(4) << res.lastLoss << "  val " << lastVal << " (best "
       << best << ")  " << std::setprecision(3) << rate << " steps/s  ETA "
       << duration(rate > 0 ? static_cast<double>(cfg_.maxSteps - step) / rate : NAN);
    if (tty) std::cerr << "\r" << os.str() << "\033[K" << (final ? "\n" : "") << std::flush;
    else log_ << os.str() << "\n" << std::flush;
  };

  while (true) {
    if (step >= cfg_.maxSteps) {
      res.stopReason = StopReason::MaxSteps;
      break;
    }
    if (interruptFlag()) {
      res.stopReason = StopReason::Interrupted;
      saveCheckpoint(step, *opt, best, bestParams, elapsed());
      break;
    }
    TrialBatch b = task.sample(cfg_.batch, streams_[Stream::Data]);
    auto noise = noiseFor(cfg_.batch, steps, streams_[Stream::Noise], true);
    BpttResult<float> r = bptt.lossAndGradient(toFloat(params_), b, task.loss(), noise, {});
    std::vector<double> stepFisher;  // EWC's course form: this step's F, from this minibatch
    if (ewc_.needsStepFisher()) stepFisher = courseFisher(bptt, b, task.loss(), noise);
    const std::vector<double>* stepF = stepFisher.empty() ? nullptr : &stepFisher;
    double loss = r.loss + ewc_.penalty(params_, stepF);
    ewc_.addGradient(params_, r.dParams, stepF);
    if (!std::isfinite(loss) || !allFinite(r.dParams)) {
      res.stopReason = StopReason::Diverged;
      res.diverged = "at step " + std::to_string(step + 1) + ": the " +
                     (std::isfinite(loss) ? "gradient" : "loss") + " was not finite";
      log_ << (tty ? "\n" : "") << "training diverged " << res.diverged << "; keeping the "
           << "parameters of step " << step;
      if (!cfg_.checkpointPath.empty()) log_ << " (saved in " << cfg_.checkpointPath << ")";
      log_ << "\n";
      saveCheckpoint(step, *opt, best, bestParams, elapsed(), res.diverged);
      break;
    }
    double gradNorm = 0;
    for (double g : r.dParams) gradNorm += g * g;
    gradNorm = std::sqrt(gradNorm);
    lastGood = params_;
    opt->step(params_, r.dParams);
    if (!allFinite(params_)) {
      params_ = lastGood;
      res.stopReason = StopReason::Diverged;
      res.diverged = "at step " + std::to_string(step + 1) + ": an update made parameters non-finite";
      log_ << "training diverged " << res.diverged << "; keeping the parameters of step " << step << "\n";
      saveCheckpoint(step, *opt, best, bestParams, elapsed(), res.diverged);
      break;
    }
    ++step;
    res.lastLoss = loss;
    // The loss that targets and milestones read: this minibatch's, or the window's mean once it
    // holds lossWindow losses (NaN before: nothing fires).
    double judged = loss;
    if (cfg_.lossWindow > 1) {
      lossWindow_.push_back(loss);
      if (static_cast<int64_t>(lossWindow_.size()) > cfg_.lossWindow) lossWindow_.erase(lossWindow_.begin());
      judged = NAN;
      if (static_cast<int64_t>(lossWindow_.size()) == cfg_.lossWindow) {
        double sum = 0;
        for (double l : lossWindow_) sum += l;
        judged = sum / static_cast<double>(cfg_.lossWindow);
      }
    }
    for (double m : cfg_.lossMilestones) {
      std::string key = milestoneKey(m);
      if (judged < m && !milestones_.count(key)) milestones_[key] = step, milestoneSeconds_[key] = elapsed();
    }
    const bool validate = cfg_.validateEvery > 0 && step % cfg_.validateEvery == 0;
    if (validate) {
      std::mt19937_64 vr = validationRng(cfg_.seed, step);
      lastVal = evaluate(task, params_, cfg_.validationBatch, vr);
      if (lastVal < best) {
        best = lastVal;
        bestParams = params_;
        sinceBest_ = 0;
      } else {
        ++sinceBest_;
      }
    }
    if (metrics_ && (validate || step % 10 == 0 || step == 1))
      metrics_->add({cfg_.phase, step, loss, validate ? lastVal : NAN, gradNorm, elapsed()});
    // A log (not a terminal) gets a line per validation, or per checkpoint when nothing validates.
    const bool checkpointStep = cfg_.checkpointEvery > 0 && step % cfg_.checkpointEvery == 0;
    if (cfg_.progress && (tty ? step % 10 == 0 || validate : validate || (cfg_.validateEvery <= 0 && checkpointStep)))
      progress(false);
    if (!cfg_.checkpointPath.empty() && cfg_.checkpointEvery > 0 && step % cfg_.checkpointEvery == 0)
      saveCheckpoint(step, *opt, best, bestParams, elapsed());
    if (validate && cfg_.targetError >= 0 && lastVal <= cfg_.targetError) {
      res.stopReason = StopReason::Target;
      break;
    }
    if (cfg_.targetLoss >= 0 && judged < cfg_.targetLoss) {
      res.stopReason = StopReason::LossTarget;
      break;
    }
    if (validate && cfg_.patience > 0 && sinceBest_ >= cfg_.patience) {
      res.stopReason = StopReason::Patience;
      break;
    }
  }
  // The last line, unless a validation just printed this very step (a log, not a terminal).
  if (cfg_.progress && (tty || cfg_.validateEvery <= 0 || step % cfg_.validateEvery != 0)) progress(true);
  if (res.stopReason != StopReason::Interrupted && res.stopReason != StopReason::Diverged)
    saveCheckpoint(step, *opt, best, bestParams, elapsed());
  res.steps = step;
  res.seconds = elapsed();
  res.milestones = milestones_;
  res.milestoneSeconds = milestoneSeconds_;
  res.bestError = best;
  res.params = bestParams.empty() ? params_ : bestParams;
  return res;
}

}  // namespace cellc::runtime
