// E1's analysis (Song, Yang & Wang 2016, Figs 2-3): on one fixed trial at a fine time step, edit
// one inhibitory column of the effective recurrent matrix (W_eff[rows, c] -= v, no
// re-rectification), rerun, and measure how far each output's peak and centroid move.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/Step.h"
#include "tasks/Tasks.h"

namespace cellc {
template <class T>
class StepKernel;
}

namespace cellc::runtime {

struct ColumnShiftSpec {
  double dt = 0.5, tau = 50;
  int64_t colFirst = 80, colLast = 99, rowFirst = 0, rowLast = 79;
  std::vector<double> values;  // the edits v
  double onset = 150;
  int64_t exampleColumn = 86;
  double exampleValue = 0.04;
};

struct ColumnShiftResult {
  std::vector<double> time, input;               // [T]
  std::vector<double> target, output, example;   // [T, n_out] row-major
  std::vector<double> columns, values;           // [C], [V]
  std::vector<double> peakShift, centroidShift;  // [C, V] mean over outputs, failures excluded
  std::vector<double> failures;                  // [C, V] outputs with |peak shift| > tau / 2
  std::vector<double> peakPerOutput;             // [C, V, n_out]
  int64_t steps = 0, outputs = 0;
};

// `kernel` is the cell with the effective matrix bound as a param (sema/Bind.h) at the analysis
// time step; `params` its params with `matrix` (slot) holding the trained effective matrix.
ColumnShiftResult columnShift(StepKernel<double>& kernel, const std::vector<double>& params,
                              const ir::Slot& matrix, const SequenceTask& trialTask,
                              const ColumnShiftSpec& spec);

}  // namespace cellc::runtime
