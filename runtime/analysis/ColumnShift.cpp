#include "analysis/ColumnShift.h"

#include "analysis/Analysis.h"

#include <cmath>
#include <stdexcept>

#include "train/Bptt.h"

namespace cellc::runtime {

namespace {

// Outputs [T, n_out] of one noise-free trial with these params.
std::vector<double> runTrial(StepKernel<double>& k, const std::vector<double>& params,
                             const TrialBatch& trial) {
  Bptt<double> bptt(k, 1, trial.steps, trial.steps);
  std::vector<std::vector<double>> outs;
  bptt.forward(params, trial, {}, {}, outs);
  const ir::Slot& out = k.layout().outputs.at(0);
  std::vector<double> y(trial.steps * out.size);
  for (int64_t t = 0; t < trial.steps; ++t)
    for (int64_t i = 0; i < out.size; ++i) y[t * out.size + i] = outs[t][out.offset + i];
  return y;
}

int64_t peak(const std::vector<double>& y, int64_t T, int64_t n, int64_t i) {
  int64_t best = 0;
  for (int64_t t = 1; t < T; ++t)
    if (y[t * n + i] > y[best * n + i]) best = t;
  return best;
}

double centroid(const std::vector<double>& y, int64_t T, int64_t n, int64_t i, double dt) {
  double num = 0, den = 0;
  for (int64_t t = 0; t < T; ++t) {
    double w = std::max(0.0, y[t * n + i]);
    num += w * static_cast<double>(t) * dt;
    den += w;
  }
  return den > 0 ? num / den : NAN;
}

}  // namespace

ColumnShiftResult columnShift(StepKernel<double>& kernel, const std::vector<double>& params,
                              const ir::Slot& matrix, const SequenceTask& trialTask,
                              const ColumnShiftSpec& spec) {
  if (matrix.shape.rank() != 2) throw std::invalid_argument("column_shift: " + matrix.name + " is not a matrix");
  const int64_t rows = matrix.shape.dims[0], cols = matrix.shape.dims[1];
  if (spec.colFirst < 0 || spec.colLast >= cols || spec.colFirst > spec.colLast || spec.rowFirst < 0 ||
      spec.rowLast >= rows || spec.rowFirst > spec.rowLast)
    throw std::invalid_argument("column_shift: columns " + std::to_string(spec.colFirst) + ".." +
                                std::to_string(spec.colLast) + " or rows out of range for " +
                                matrix.name + " " + matrix.shape.str());
  if (spec.exampleColumn < 0 || spec.exampleColumn >= cols)
    throw std::invalid_argument("column_shift: example column " + std::to_string(spec.exampleColumn) +
                                " out of range for " + matrix.name + " " + matrix.shape.str());
  ColumnShiftResult r;
  TrialBatch trial = trialTask.trial(spec.onset);
  const int64_t T = trial.steps;
  const int64_t n = kernel.layout().outputs.at(0).size;
  r.steps = T, r.outputs = n;
  for (int64_t t = 0; t < T; ++t) {
    r.time.push_back(static_cast<double>(t) * spec.dt);
    r.input.push_back(trial.inputs[t][0]);
    for (int64_t i = 0; i < n; ++i) r.target.push_back(trial.targets[t][i]);
  }
  r.output = runTrial(kernel, params, trial);
  std::vector<int64_t> peak0(n);
  std::vector<double> centroid0(n);
  for (int64_t i = 0; i < n; ++i) {
    peak0[i] = peak(r.output, T, n, i);
    centroid0[i] = centroid(r.output, T, n, i, spec.dt);
  }
  auto edited = [&](int64_t c, double v) {
    std::vector<double> p = params;
    for (int64_t row = spec.rowFirst; row <= spec.rowLast; ++row) p[matrix.offset + row * cols + c] -= v;
    return runTrial(kernel, p, trial);
  };
  r.example = edited(spec.exampleColumn, spec.exampleValue);
  r.values = spec.values;
  for (int64_t c = spec.colFirst; c <= spec.colLast; ++c) {
    throwIfInterrupted("the column_shift analysis");
    r.columns.push_back(static_cast<double>(c));
    for (double v : spec.values) {
      std::vector<double> y = edited(c, v);
      double sumPeak = 0, sumCentroid = 0;
      int ok = 0, failed = 0;
      for (int64_t i = 0; i < n; ++i) {
        double shift = static_cast<double>(peak0[i] - peak(y, T, n, i)) * spec.dt;
        r.peakPerOutput.push_back(shift);
        // pycog dropped shifts beyond half a time constant as failures: count them instead.
        if (std::fabs(shift) > 0.5 * spec.tau) {
          ++failed;
          continue;
        }
        sumPeak += shift;
        sumCentroid += centroid0[i] - centroid(y, T, n, i, spec.dt);
        ++ok;
      }
      r.peakShift.push_back(ok ? sumPeak / ok : NAN);
      r.centroidShift.push_back(ok ? sumCentroid / ok : NAN);
      r.failures.push_back(failed);
    }
  }
  return r;
}

}  // namespace cellc::runtime
