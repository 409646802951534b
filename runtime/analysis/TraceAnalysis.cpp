// `trace`: fixed example trials through the trained model, every step kept: inputs, targets,
// outputs and the chosen states (E2's trained trial per sequence; E5's Hebbian trace and hidden
// state over one test sequence).
#include <cmath>

#include "analysis/Analysis.h"
#include "analysis/Trace.h"
#include "experiment/TaskTable.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The example trials when analysis.trials is not set (the schema leaves its default to each kind).
constexpr int64_t kTrials = 1;

std::vector<const ir::Slot*> chosenStates(const AnalysisContext& c) {
  const ir::Layout& L = c.model.ir.layout;
  std::vector<const ir::Slot*> out;
  if (!c.spec.states) {
    for (const ir::Slot& s : L.states) out.push_back(&s);
    return out;
  }
  for (const std::string& name : *c.spec.states) {
    const ir::Slot* s = L.find(ir::Role::State, name);
    if (!s) {
      std::string names;
      for (const ir::Slot& st : L.states) names += (names.empty() ? "" : ", ") + st.name;
      c.fail("states", "the cell has no state '" + name + "' (it has: " + names + ")");
    }
    out.push_back(s);
  }
  return out;
}

class TraceAnalysis : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    chosenStates(c);
    const int64_t trials = c.spec.trials.value_or(kTrials);
    if (trials < 1 || trials > 1000) c.fail("trials", "takes 1 to 1000 trials");
    phaseOfTask(c);
  }

  // The phase whose task the trials come from: analysis.task names it; default the first.
  static const PhaseSpec& phaseOfTask(const AnalysisContext& c) {
    const std::string& name = c.spec.task;
    if (name.empty()) return c.experiment.phases.front();
    if (const PhaseSpec* p = findPhase(c.experiment, name)) return *p;
    c.fail("task", "no phase named '" + name + "'");
  }

  json run(const AnalysisContext& c) const override {
    std::unique_ptr<Task> task = makeTask(c.experiment, phaseOfTask(c));
    const uint64_t seed = static_cast<uint64_t>(c.experiment.seed) + 0x7ace;
    Trace tr = traceTrials(c.model, c.params,
                           exampleTrials(*task, c.spec.trials.value_or(kTrials), c.spec.onset, seed));
    const ir::Layout& L = c.model.ir.layout;
    const int64_t T = tr.trials.steps, B = tr.trials.batch;
    const ir::Slot& out = L.outputs.at(0);
    auto save = [&](const std::string& name, const ir::Slot& s, const std::vector<std::vector<float>>& per) {
      std::vector<double> v;
      v.reserve(static_cast<size_t>(B * T * s.size));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < s.size; ++i) v.push_back(slotValue(per[t], s, B, b, i));
      std::vector<int64_t> shape{B, T};
      for (int64_t d : s.shape.dims) shape.push_back(d);
      c.save(name, shape, v);
    };
    std::vector<double> in, target;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < L.inputSize; ++i) in.push_back(tr.trials.inputs[t][b * L.inputSize + i]);
        const std::vector<double>& tt = tr.trials.targets[t];  // empty where the task asks nothing: 0, as before
        for (int64_t i = 0; i < out.size; ++i) target.push_back(tt.empty() ? 0.0 : tt[b * out.size + i]);
      }
    c.save("trace_input", {B, T, L.inputSize}, in);
    c.save("trace_target", {B, T, out.size}, target);
    save("trace_output", out, tr.outputs);
    json states = json::array();
    for (const ir::Slot* s : chosenStates(c)) {
      save("trace_state_" + s->name, *s, tr.states);
      states.push_back(s->name);
    }
    c.log << "trace: " << B << " trial(s) of " << T << " steps\n";
    return {{"trials", B}, {"steps", T}, {"states", states}, {"output", out.name}};
  }
};

}  // namespace

std::unique_ptr<Analysis> makeTrace() { return std::make_unique<TraceAnalysis>(); }

}  // namespace cellc::runtime
