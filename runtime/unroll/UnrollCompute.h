// Running `cellc unroll` (UnrollFiles.h) on arrays already read: the forward over the T steps
// and, with a loss, its value, its adjoints and the backward.
#pragma once

#include <optional>

#include "unroll/Unroll.h"
#include "unroll/UnrollInputs.h"

namespace cellc::runtime {

template <class T>
struct UnrollResult {
  Trajectory<T> trajectory;
  SequenceGradients<T> gradients;  // empty without a loss
  std::optional<double> loss;      // the loss's value; none: forward only
};

// Runs `kernel` (whose layout `layout` is) over the inputs. A param that a state starts from (when
// no <state>.npy overrides it) gets the batch-summed gradient of that initial state added to its
// own. Throws UnrollError.
template <class T>
UnrollResult<T> computeUnroll(StepKernel<T>& kernel, const ir::Layout& layout,
                              const UnrollInputs<T>& in);

extern template UnrollResult<float> computeUnroll(StepKernel<float>&, const ir::Layout&,
                                                  const UnrollInputs<float>&);
extern template UnrollResult<double> computeUnroll(StepKernel<double>&, const ir::Layout&,
                                                   const UnrollInputs<double>&);

}  // namespace cellc::runtime
