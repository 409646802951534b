// E1's analysis as an experiment step: the column_shift keys, checked against the model before
// training; the edits (ColumnShift.h) on the trained effective matrix; the arrays and the claims
// measured for summary.json.
#include <chrono>
#include <cmath>
#include <sstream>

#include "analysis/Analysis.h"
#include "analysis/ColumnShift.h"
#include "driver/Compile.h"
#include "experiment/TaskTable.h"
#include "params/Init.h"
#include "sema/Bind.h"
#include "train/Bptt.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The analysis settings, read and range-checked.
struct Settings {
  ColumnShiftSpec spec;
  std::string matrix, alpha;
  std::vector<double> plotValues, plotColumns;
};

int64_t integral(const AnalysisContext& c, const std::string& key, double v) {
  if (v != std::floor(v)) {
    std::ostringstream os;
    os << key << " holds " << v << ": an index must be a whole number";
    c.fail(key, os.str());
  }
  return static_cast<int64_t>(v);
}

// The trained effective matrix's shape: the param whose spectral_radius initializer names it.
std::pair<int64_t, int64_t> matrixShape(const AnalysisContext& c, const std::string& matrix) {
  const StepIR& ir = c.model.ir;
  for (size_t p = 0; p < ir.layout.params.size(); ++p)
    if (ir.effective[p] >= 0 && ir.layout.params[p].shape.rank() == 2)
      return {ir.layout.params[p].shape.dims[0], ir.layout.params[p].shape.dims[1]};
  c.fail("matrix", "the cell must name " + matrix +
                       " as the effective matrix of a param (spectral_radius(..., " + matrix + "))");
}

Settings read(const AnalysisContext& c) {
  Settings s;
  ColumnShiftSpec& spec = s.spec;
  const AnalysisSpec& a = c.spec;
  spec.dt = a.dt, spec.tau = a.tau;
  const std::vector<double>& cols = a.columns, &rows = a.rows, &vals = a.values;
  if (cols.size() != 2) c.fail("columns", "takes [first, last]");
  if (rows.size() != 2) c.fail("rows", "takes [first, last]");
  if (vals.size() != 3) c.fail("values", "takes [lo, hi, count]");
  s.matrix = a.matrix, s.alpha = a.alpha;
  auto [nrows, ncols] = matrixShape(c, s.matrix);
  auto range = [&](const char* key, const std::vector<double>& v, int64_t n, int64_t& first, int64_t& last) {
    first = integral(c, key, v[0]), last = integral(c, key, v[1]);
    if (first < 0 || last >= n || first > last)
      c.fail(key, "[" + std::to_string(first) + ", " + std::to_string(last) + "] is not a range within 0.." +
                      std::to_string(n - 1) + " of " + s.matrix + " [" + std::to_string(nrows) + ", " +
                      std::to_string(ncols) + "]");
  };
  range("columns", cols, ncols, spec.colFirst, spec.colLast);
  range("rows", rows, nrows, spec.rowFirst, spec.rowLast);
  const int64_t count = integral(c, "values", vals[2]);
  if (count < 1 || count > 10000) c.fail("values", "the count (third entry) must be 1 to 10000");
  for (int64_t i = 0; i < count; ++i)
    spec.values.push_back(count == 1 ? vals[0]
                                     : vals[0] + (vals[1] - vals[0]) * static_cast<double>(i) /
                                                     static_cast<double>(count - 1));
  spec.onset = a.onset;
  spec.exampleColumn = a.exampleColumn;
  // The example is one of the analysed edits: a column outside them would be edited unmeasured.
  if (spec.exampleColumn < spec.colFirst || spec.exampleColumn > spec.colLast)
    c.fail("example_column", std::to_string(spec.exampleColumn) + " is not one of the edited columns " +
                                 std::to_string(spec.colFirst) + ".." + std::to_string(spec.colLast));
  spec.exampleValue = a.exampleValue;
  s.plotValues = a.plotValues;
  s.plotColumns = a.plotColumns;
  const double lo = std::min(vals[0], vals[1]), hi = std::max(vals[0], vals[1]);
  for (double v : s.plotValues)
    if (v < lo - 1e-12 || v > hi + 1e-12) {
      std::ostringstream os;
      os << "plot_values holds " << v << ", outside the edits' range [" << lo << ", " << hi << "]";
      c.fail("plot_values", os.str());
    }
  for (double col : s.plotColumns) {
    int64_t k = integral(c, "plot_columns", col);
    if (k < spec.colFirst || k > spec.colLast)
      c.fail("plot_columns", "holds " + std::to_string(k) + ", outside the edited columns " +
                                 std::to_string(spec.colFirst) + ".." + std::to_string(spec.colLast));
  }
  return s;
}

// The first phase's task, which must be a sequence task, at time step dt (0: as trained).
SequenceTask sequenceTask(const AnalysisContext& c, double dt) {
  std::unique_ptr<Task> t = makeTask(c.experiment, c.experiment.phases.front());
  auto* seq = dynamic_cast<SequenceTask*>(t.get());
  if (!seq) c.fail("kind", "needs a sequence task in the first phase");
  SequenceSpec s = seq->spec();
  if (dt > 0) s.in.dt = dt;
  return SequenceTask(s);
}

class ColumnShiftAnalysis : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    Settings s = read(c);
    SequenceTask task = sequenceTask(c, 0);
    const double duration = task.spec().in.duration;
    const double steps = duration / s.spec.dt;
    if (steps > static_cast<double>(kMaxTrialSteps)) {
      std::ostringstream os;
      os << "dt = " << s.spec.dt << " makes a trial of " << duration << " ms " << steps
         << " steps; at most " << kMaxTrialSteps;
      c.fail("dt", os.str());
    }
    if (s.spec.onset < 0 || s.spec.onset > duration) {
      std::ostringstream os;
      os << "onset = " << s.spec.onset << " is outside the trial (0 to " << duration << " ms)";
      c.fail("onset", os.str());
    }
  }

  json run(const AnalysisContext& c) const override {
    Settings s = read(c);
    const ColumnShiftSpec& spec = s.spec;
    const Model& m = c.model;
    // The cell at the analysis time step, with the effective matrix as a param.
    Overrides o = m.overrides;
    o[s.alpha] = spec.dt / spec.tau;
    std::string err;
    SourceFile file = SourceFile::load(m.cellPath, &err);
    DiagnosticSink diags;
    std::optional<Program> bound = bindAsParam(file, o, s.matrix, diags);
    if (!bound) {
      std::ostringstream os;
      diags.render(os, file);
      c.fail("matrix", os.str());
    }
    CompiledProgram<double> compiled = compileProgram<double>(*bound);
    const StepIR& bir = compiled.ir;
    CompiledCell<double>& kernel = *compiled.kernel;
    // Params by name; the bound matrix from the trained model's effective matrix.
    std::vector<double> bp(bir.layout.paramSize, 0.0);
    for (const ir::Slot& slot : bir.layout.params)
      if (const ir::Slot* src = m.ir.layout.find(ir::Role::Param, slot.name))
        std::copy(c.params.begin() + src->offset, c.params.begin() + src->offset + src->size,
                  bp.begin() + slot.offset);
    const ir::Slot* mslot = bir.layout.find(ir::Role::Param, s.matrix);
    std::vector<double> eff;
    for (size_t p = 0; p < m.ir.layout.params.size(); ++p)
      if (m.ir.effective[p] >= 0) eff = effectiveMatrix(m.ir, c.params, p);
    if (!mslot || eff.empty() || static_cast<int64_t>(eff.size()) != mslot->size)
      c.fail("matrix", "the cell must name " + s.matrix +
                           " as the effective matrix of a param (spectral_radius(..., " + s.matrix + "))");
    std::copy(eff.begin(), eff.end(), bp.begin() + mslot->offset);

    saveTrainedTrial(c, spec.onset);
    SequenceTask trialTask = sequenceTask(c, spec.dt);
    c.log << "column_shift: " << (spec.colLast - spec.colFirst + 1) << " columns x " << spec.values.size()
          << " edits on one trial of " << trialTask.steps() << " steps at dt = " << spec.dt << " ms\n";
    auto t0 = std::chrono::steady_clock::now();
    ColumnShiftResult r = columnShift(kernel, bp, *mslot, trialTask, spec);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const int64_t T = r.steps, n = r.outputs, C = static_cast<int64_t>(r.columns.size()),
                  V = static_cast<int64_t>(r.values.size());
    c.save("trial_time", {T}, r.time);
    c.save("trial_input", {T}, r.input);
    c.save("trial_target", {T, n}, r.target);
    c.save("trial_output", {T, n}, r.output);
    c.save("edit_example_output", {T, n}, r.example);
    c.save("shift_columns", {C}, r.columns);
    c.save("shift_values", {V}, r.values);
    c.save("peak_shift", {C, V}, r.peakShift);
    c.save("centroid_shift", {C, V}, r.centroidShift);
    c.save("failures", {C, V}, r.failures);
    c.save("peak_shift_per_output", {C, V, n}, r.peakPerOutput);
    json j = measure(r, spec);
    j["dt"] = spec.dt;
    j["tau"] = spec.tau;
    j["columns"] = {spec.colFirst, spec.colLast};
    j["values"] = r.values;
    j["example"] = {{"column", spec.exampleColumn}, {"value", spec.exampleValue}};
    j["plot_values"] = s.plotValues;
    j["plot_columns"] = s.plotColumns;
    j["seconds"] = secs;
    const json& mj = j["measured"];
    c.log << "column_shift: sign consistency " << mj["sign_consistency"] << " ("
          << mj["sign_direction"].get<std::string>() << "), coherent " << mj["coherent_fraction"]
          << ", mean |shift| per column " << mj["mean_abs_shift_range_ms"][0] << " to "
          << mj["mean_abs_shift_range_ms"][1] << " ms, " << mj["failures"] << " failures (" << secs
          << " s)\n";
    return j;
  }

 private:
  // The same trial at the training time step, through the trained model as trained: the
  // sequence it learned, before the change of time step that the analysis makes.
  static void saveTrainedTrial(const AnalysisContext& c, double onset) {
    SequenceTask seq = sequenceTask(c, 0);
    TrialBatch tb = seq.trial(onset);
    Bptt<float> bptt(*c.model.kernel, 1, tb.steps, tb.steps);
    std::vector<std::vector<float>> outs;
    bptt.forward(std::vector<float>(c.params.begin(), c.params.end()), tb, {}, {}, outs);
    const ir::Slot& out = c.model.ir.layout.outputs.at(0);
    std::vector<double> time, input, target, output;
    for (int64_t t = 0; t < tb.steps; ++t) {
      time.push_back(static_cast<double>(t) * seq.spec().in.dt);
      input.push_back(tb.inputs[t][0]);
      for (int64_t i = 0; i < out.size; ++i) {
        target.push_back(tb.targets[t][i]);
        output.push_back(outs[t][out.offset + i]);
      }
    }
    c.save("trained_time", {tb.steps}, time);
    c.save("trained_input", {tb.steps}, input);
    c.save("trained_target", {tb.steps, out.size}, target);
    c.save("trained_output", {tb.steps, out.size}, output);
  }

  // The paper's claims, measured: the sign of the shift follows the sign of v; the whole
  // sequence moves together; the size depends on the column.
  static json measure(const ColumnShiftResult& r, const ColumnShiftSpec& spec) {
    const int64_t n = r.outputs, C = static_cast<int64_t>(r.columns.size()),
                  V = static_cast<int64_t>(r.values.size());
    // Edits that move the sequence by less than one analysis step (silent columns) carry no sign.
    int same = 0, opposite = 0, coherent = 0, cells = 0, failures = 0;
    for (int64_t col = 0; col < C; ++col)
      for (int64_t v = 0; v < V; ++v) {
        double val = r.values[v], s = r.peakShift[col * V + v];
        failures += static_cast<int>(r.failures[col * V + v]);
        if (val == 0 || !std::isfinite(s) || std::fabs(s) < spec.dt) continue;
        ((s > 0) == (val > 0) ? same : opposite) += 1;
        int pos = 0, neg = 0;
        for (int64_t i = 0; i < n; ++i) {
          double si = r.peakPerOutput[(col * V + v) * n + i];
          pos += si > 0, neg += si < 0;
        }
        ++cells;
        coherent += pos == 0 || neg == 0;
      }
    std::vector<double> perColumn;  // mean |peak shift| per column over v
    for (int64_t col = 0; col < C; ++col) {
      double sum = 0;
      int k = 0;
      for (int64_t v = 0; v < V; ++v)
        if (std::isfinite(r.peakShift[col * V + v])) sum += std::fabs(r.peakShift[col * V + v]), ++k;
      perColumn.push_back(k ? sum / k : NAN);
    }
    double lo = INFINITY, hi = -INFINITY;
    for (double x : perColumn)
      if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    json j;
    j["measured"] = {
        {"sign_consistency", same + opposite ? static_cast<double>(std::max(same, opposite)) / (same + opposite) : NAN},
        {"sign_direction", same > opposite ? "v > 0 makes the sequence come earlier" : "v > 0 makes the sequence come later"},
        {"sign_consistency_note", "among edits (column, v != 0) that move the mean peak by at least one analysis step, the fraction whose shift has the majority's sign relation to v"},
        {"edits_that_moved", same + opposite},
        {"coherent_fraction", cells ? static_cast<double>(coherent) / cells : NAN},
        {"coherent_note", "fraction of edits in which every output shifted the same way (or not at all)"},
        {"mean_abs_shift_by_column_ms", perColumn},
        {"mean_abs_shift_range_ms", {lo, hi}},
        {"failures", failures},
        {"failures_note", "outputs whose peak moved by more than tau / 2 (pycog dropped these; counted here, excluded from the means)"}};
    j["paper_claim"] =
        "Editing one inhibitory column shifts the whole sequence in time; the sign of the shift "
        "follows the sign of v, and its size depends on the column (Song, Yang & Wang 2016, Figs 2-3).";
    return j;
  }
};

}  // namespace

std::unique_ptr<Analysis> makeColumnShift() { return std::make_unique<ColumnShiftAnalysis>(); }

}  // namespace cellc::runtime
