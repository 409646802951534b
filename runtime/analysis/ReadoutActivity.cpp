// `readout_activity` (E4): which output units never activate on fresh trials: an output whose
// largest value over every step and trial stays below `threshold` times the largest target.
// Appendix D's claim: with a fixed readout, some peaks stay at 0.
#include <cmath>

#include "analysis/Analysis.h"
#include "analysis/Trace.h"
#include "experiment/TaskTable.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The trials when analysis.trials is not set (the schema leaves its default to each kind).
constexpr int64_t kTrials = 100;

class ReadoutActivity : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    const int64_t trials = c.spec.trials.value_or(kTrials);
    if (trials < 1 || trials > 10000) c.fail("trials", "takes 1 to 10000 trials");
    const double th = c.spec.threshold;
    if (th <= 0 || th >= 1) c.fail("threshold", "is a fraction of the largest target, between 0 and 1");
  }

  json run(const AnalysisContext& c) const override {
    std::unique_ptr<Task> task = makeTask(c.experiment, c.experiment.phases.front());
    std::mt19937_64 rng(static_cast<uint64_t>(c.experiment.seed) + 0xd0);
    Trace tr = traceTrials(c.model, c.params, task->sample(c.spec.trials.value_or(kTrials), rng));
    const ir::Slot& out = c.model.ir.layout.outputs.at(0);
    const int64_t T = tr.trials.steps, B = tr.trials.batch, n = out.size;
    std::vector<double> peak(n, -INFINITY), targetPeak(n, -INFINITY);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < n; ++i) {
          peak[i] = std::max(peak[i], static_cast<double>(slotValue(tr.outputs[t], out, B, b, i)));
          if (!tr.trials.targets[t].empty())
            targetPeak[i] = std::max(targetPeak[i], tr.trials.targets[t][b * n + i]);
        }
    double top = 0;
    for (double x : targetPeak) top = std::max(top, x);
    const double threshold = c.spec.threshold * top;
    int64_t silent = 0;
    json silentList = json::array();
    for (int64_t i = 0; i < n; ++i)
      if (peak[i] < threshold) ++silent, silentList.push_back(i);
    c.save("readout_peak", {n}, peak);
    c.save("readout_target_peak", {n}, targetPeak);
    json j;
    j["measured"] = {{"silent_outputs", silent}, {"outputs", n}, {"threshold", threshold}};
    j["silent"] = silentList;
    j["trials"] = B;
    j["paper_claim"] = "With the readout fixed to a partial identity, some outputs' peaks stay at 0 (seed 000, Appendix D).";
    c.log << "readout_activity: " << silent << " of " << n << " outputs never exceed " << threshold << "\n";
    return j;
  }
};

}  // namespace

std::unique_ptr<Analysis> makeReadoutActivity() { return std::make_unique<ReadoutActivity>(); }

}  // namespace cellc::runtime
