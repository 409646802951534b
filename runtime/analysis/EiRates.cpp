// `ei_rates` (E2): the ratio of the mean excitatory to the mean inhibitory rate, r = relu(state),
// per time step and over the trial, on fresh trials of the first phase's task without noise.
// The paper's claim: the ratio falls as the number of sequences K grows.
#include <cmath>

#include "analysis/Analysis.h"
#include "analysis/Trace.h"
#include "experiment/TaskTable.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The trials when analysis.trials is not set (the schema leaves its default to each kind).
constexpr int64_t kTrials = 100;

const ir::Slot& rateState(const AnalysisContext& c) {
  const std::string& name = c.spec.state;
  const ir::Slot* s = c.model.ir.layout.find(ir::Role::State, name);
  if (!s || s->shape.rank() != 1) c.fail("state", "the cell has no vector state '" + name + "'");
  return *s;
}

class EiRates : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    const ir::Slot& s = rateState(c);
    const double f = c.spec.excitatory;
    const int64_t nE = static_cast<int64_t>(std::floor(f * static_cast<double>(s.size)));
    if (nE < 1 || nE >= s.size) c.fail("excitatory", "leaves no excitatory or no inhibitory unit");
    const int64_t trials = c.spec.trials.value_or(kTrials);
    if (trials < 1 || trials > 10000) c.fail("trials", "takes 1 to 10000 trials");
  }

  json run(const AnalysisContext& c) const override {
    const ir::Slot& s = rateState(c);
    const int64_t n = s.size, nE = static_cast<int64_t>(std::floor(c.spec.excitatory * static_cast<double>(n)));
    std::unique_ptr<Task> task = makeTask(c.experiment, c.experiment.phases.front());
    std::mt19937_64 rng(static_cast<uint64_t>(c.experiment.seed) + 0xe1);
    Trace tr = traceTrials(c.model, c.params, task->sample(c.spec.trials.value_or(kTrials), rng));
    const int64_t T = tr.trials.steps, B = tr.trials.batch;
    std::vector<double> e(T), i(T), ratio(T), time(T);
    double sumE = 0, sumI = 0;
    for (int64_t t = 0; t < T; ++t) {
      double se = 0, si = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < n; ++k) {
          double r = std::max(0.0f, slotValue(tr.states[t], s, B, b, k));
          (k < nE ? se : si) += r;
        }
      e[t] = se / static_cast<double>(B * nE), i[t] = si / static_cast<double>(B * (n - nE));
      ratio[t] = i[t] > 0 ? e[t] / i[t] : NAN;
      time[t] = static_cast<double>(t);
      sumE += e[t], sumI += i[t];
    }
    c.save("ei_step", {T}, time);
    c.save("ei_rate_e", {T}, e);
    c.save("ei_rate_i", {T}, i);
    c.save("ei_ratio", {T}, ratio);
    double meanRatio = 0;
    int64_t k = 0;
    for (double r : ratio)
      if (std::isfinite(r)) meanRatio += r, ++k;
    json j;
    j["measured"] = {{"mean_rate_e", sumE / static_cast<double>(T)},
                     {"mean_rate_i", sumI / static_cast<double>(T)},
                     {"ratio_of_means", sumI > 0 ? sumE / sumI : NAN},
                     {"mean_of_step_ratios", k ? meanRatio / static_cast<double>(k) : NAN}};
    j["trials"] = B;
    j["state"] = s.name;
    j["paper_claim"] = "The ratio of mean excitatory to mean inhibitory rate falls as the number of sequences K grows (seed 000, section 3.2).";
    c.log << "ei_rates: E/I rate ratio " << j["measured"]["ratio_of_means"] << "\n";
    return j;
  }
};

}  // namespace

std::unique_ptr<Analysis> makeEiRates() { return std::make_unique<EiRates>(); }

}  // namespace cellc::runtime
