// Does a cell's matrix state (a Hebbian trace) carry what the task needs, or does it only mirror
// the vector state? (issue 30, item 4; any cell with a matrix state.) On fresh test sequences of
// the first phase's task, the trained cell runs four ways, and the loss of each is measured:
//   intact     as trained (the test stage's loss, on its first trials);
//   frozen     the matrix state put back to its initial value after every step (no trace at all);
//   no_rate    the trace's rate param (eta) set to 0: the trace never leaves its initial value
//              through the rule, whatever else the rule does (clipping);
//   shuffled   after every step the matrix state is handed to another sequence of the batch (one
//              fixed derangement), so each sequence reads a trace of the right size and statistics
//              but built from another sequence's history.
// And how much of the trace is a function of the vector state h (the first vector state): per entry
// (i, j), over sequences, the squared correlation at the last step between the trace and
// outer(h_{T-1}, h_T)[i, j] (pre = the old state, post = the new one; sliced to the trace's shape)
// and between the trace and the same outer product's running average with the trained rate
// (M_t = (1 - eta) M_{t-1} + eta outer(h_{t-1}, h_t)); the mean over entries is reported.
// A cell without a matrix state is skipped, unless `trace` names one (then it is an error).
// A trace that carries information the state does not: frozen, no_rate and shuffled lose much more
// than chance allows, and its R^2 against the state's products stays well below 1.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "analysis/Analysis.h"
#include "analysis/Trace.h"
#include "experiment/TaskTable.h"
#include "experiment/TestStage.h"
#include "tasks/Tasks.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The trials when analysis.trials is not set (the schema leaves its default to each kind).
constexpr int64_t kTrials = 1000;

const ir::Slot* matrixState(const AnalysisContext& c) {
  const ir::Layout& L = c.model.ir.layout;
  const std::string& name = c.spec.trace;
  for (const ir::Slot& s : L.states)
    if (name.empty() ? s.shape.dims.size() == 2 : s.name == name) return &s;
  return nullptr;
}

const ir::Slot* vectorState(const ir::Layout& L) {
  for (const ir::Slot& s : L.states)
    if (s.shape.dims.size() == 1) return &s;
  return nullptr;
}

enum class Mode { Intact, Frozen, NoRate, Shuffled };

struct Walk {
  double loss = NAN;
  std::vector<float> lastState, prevState;  // [stateSize * B] after the last and the one before
  std::vector<double> runningOuter;         // [B, a, b]: the running average of outer(h_{t-1}, h_t)
};

Walk walk(const AnalysisContext& c, const Task& task, const TrialBatch& b, std::vector<float> params, Mode mode,
          const ir::Slot& M, const ir::Slot* h, double rate, const std::vector<int64_t>& perm) {
  StepKernel<float>& k = *c.model.kernel;
  const ir::Layout& L = k.layout();
  const int64_t B = b.batch;
  Bptt<float> bptt(k, B, b.steps, b.steps);
  std::vector<float> state = bptt.initialState(params), next(state.size());
  const std::vector<float> init = state;
  std::vector<float> noise = L.defaultNoise<float>(B), input(static_cast<size_t>(L.inputSize * B));
  std::vector<float> tape(static_cast<size_t>(std::max<int64_t>(1, k.tapeSize(B))));
  std::vector<std::vector<float>> outputs(static_cast<size_t>(b.steps),
                                          std::vector<float>(static_cast<size_t>(L.outputSize * B)));
  const int64_t rows = M.shape.dims[0], cols = M.shape.dims[1];
  Walk w;
  if (h) w.runningOuter.assign(static_cast<size_t>(B * rows * cols), 0.0);
  for (int64_t t = 0; t < b.steps; ++t) {
    throwIfInterrupted("trace_ablation");
    std::copy(b.inputs[t].begin(), b.inputs[t].end(), input.begin());
    k.run(Stage::Forward, {.params = params.data(),
                           .state = state.data(),
                           .input = input.data(),
                           .noise = noise.data(),
                           .tape = tape.data(),
                           .stateNext = next.data(),
                           .output = outputs[t].data(),
                           .batch = B});
    float* m = next.data() + B * M.offset;
    if (mode == Mode::Frozen) std::copy_n(init.data() + B * M.offset, B * M.size, m);
    if (mode == Mode::Shuffled) {
      std::vector<float> copy(m, m + B * M.size);
      for (int64_t s = 0; s < B; ++s) std::copy_n(copy.data() + perm[s] * M.size, M.size, m + s * M.size);
    }
    if (h) {
      for (int64_t s = 0; s < B; ++s)
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) {
            double pre = slotValue(state, *h, B, s, i), post = slotValue(next, *h, B, s, j);
            double& r = w.runningOuter[static_cast<size_t>((s * rows + i) * cols + j)];
            r = (1 - rate) * r + rate * pre * post;
          }
    }
    if (t + 1 == b.steps) w.prevState = state;
    std::swap(state, next);
  }
  w.lastState = state;
  std::vector<std::vector<double>> out64;
  for (const auto& o : outputs) out64.emplace_back(o.begin(), o.end());
  w.loss = lossValue(task.loss(), L, b, out64);
  return w;
}

// The mean over entries (i, j) of the squared correlation, over sequences, of x and y ([B, a*b]).
double meanR2(const std::vector<double>& x, const std::vector<double>& y, int64_t B, int64_t entries) {
  double total = 0;
  int64_t counted = 0;
  for (int64_t e = 0; e < entries; ++e) {
    double mx = 0, my = 0;
    for (int64_t s = 0; s < B; ++s) mx += x[s * entries + e], my += y[s * entries + e];
    mx /= static_cast<double>(B), my /= static_cast<double>(B);
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t s = 0; s < B; ++s) {
      double dx = x[s * entries + e] - mx, dy = y[s * entries + e] - my;
      sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
    }
    if (sxx <= 0 || syy <= 0) continue;  // an entry that never varies explains nothing either way
    total += sxy * sxy / (sxx * syy), ++counted;
  }
  return counted ? total / static_cast<double>(counted) : NAN;
}

class TraceAblation : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    const ir::Slot* M = matrixState(c);
    // Without `trace`, a cell that has no matrix state is skipped (one experiment file serves the
    // plastic cells and their controls); a named one must exist.
    if (!M && c.spec.trace.empty()) return;
    if (!M) c.fail("trace", "the cell has no state named '" + c.spec.trace + "'");
    if (M->shape.dims.size() != 2) c.fail("trace", "state '" + M->name + "' is not a matrix state");
    const std::string& rate = c.spec.rate;
    const ir::Slot* p = c.model.ir.layout.find(ir::Role::Param, rate);
    if (!p) c.fail("rate", "the cell has no param '" + rate + "' (the trace's rate)");
    if (p->size != 1) c.fail("rate", "param '" + rate + "' is not a scalar");
    const int64_t trials = c.spec.trials.value_or(kTrials);
    if (trials < 2 || trials > 100000) c.fail("trials", "takes 2 to 100000 trials");
  }

  json run(const AnalysisContext& c) const override {
    const ir::Layout& L = c.model.ir.layout;
    if (!matrixState(c)) {
      c.log << "trace_ablation: the cell has no matrix state; skipped\n";
      return json{{"skipped", "the cell has no matrix state"}, {"measured", json::object()}};
    }
    const ir::Slot& M = *matrixState(c);
    const ir::Slot* h = vectorState(L);
    const ir::Slot& eta = *L.find(ir::Role::Param, c.spec.rate);
    std::unique_ptr<Task> task = makeTask(c.experiment, c.experiment.phases.front());
    const int64_t trials = c.spec.trials.value_or(kTrials);
    // The test stage's first trials (the same sequences when trials <= its chunk and the cell
    // draws no noise), so the intact loss is the test loss.
    std::mt19937_64 rng = testStream(testSeed(static_cast<uint64_t>(c.experiment.seed), 0));
    TrialBatch b = task->sample(trials, rng);
    // One fixed derangement: the sequences in a random cycle, each reading the next one's trace.
    std::vector<int64_t> order(static_cast<size_t>(trials)), perm(order.size());
    std::iota(order.begin(), order.end(), int64_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t i = 0; i < trials; ++i) perm[order[i]] = order[(i + 1) % trials];

    std::vector<float> params(c.params.begin(), c.params.end());
    const double rate = params[static_cast<size_t>(eta.offset)];
    Walk intact = walk(c, *task, b, params, Mode::Intact, M, h, rate, perm);
    Walk frozen = walk(c, *task, b, params, Mode::Frozen, M, nullptr, rate, perm);
    Walk shuffled = walk(c, *task, b, params, Mode::Shuffled, M, nullptr, rate, perm);
    std::vector<float> still = params;
    still[static_cast<size_t>(eta.offset)] = 0;
    Walk noRate = walk(c, *task, b, still, Mode::NoRate, M, nullptr, rate, perm);

    json measured = {{"loss_intact", intact.loss},   {"loss_frozen", frozen.loss},
                     {"loss_no_rate", noRate.loss},  {"loss_shuffled", shuffled.loss},
                     {"rate", rate},                 {"trials", trials}};
    if (h) {
      const int64_t rows = M.shape.dims[0], cols = M.shape.dims[1], E = rows * cols;
      if (rows <= h->size && cols <= h->size) {
        std::vector<double> trace(static_cast<size_t>(trials * E)), outer(trace.size());
        for (int64_t s = 0; s < trials; ++s)
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) {
              size_t at = static_cast<size_t>(s * E + i * cols + j);
              trace[at] = slotValue(intact.lastState, M, trials, s, i * cols + j);
              outer[at] = slotValue(intact.prevState, *h, trials, s, i) * slotValue(intact.lastState, *h, trials, s, j);
            }
        measured["r2_outer_last"] = meanR2(trace, outer, trials, E);
        measured["r2_running_outer"] = meanR2(trace, intact.runningOuter, trials, E);
        measured["vector_state"] = h->name;
      }
    }
    c.log << "trace_ablation: loss intact " << intact.loss << ", frozen " << frozen.loss << ", eta = 0 "
          << noRate.loss << ", shuffled " << shuffled.loss << "\n";
    json j;
    j["state"] = M.name;
    j["measured"] = measured;
    j["paper_claim"] =
        "Plasticity helps: the trained trace carries information the state does not (seed 003). "
        "Tested by removing it (frozen, eta = 0) or giving each sequence another's (shuffled).";
    return j;
  }
};

}  // namespace

std::unique_ptr<Analysis> makeTraceAblation() { return std::make_unique<TraceAblation>(); }

}  // namespace cellc::runtime
