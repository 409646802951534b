// Reverse-mode differentiation of a step: the backward step as more nodes in the same graph.
// Given the adjoints of state' and of the outputs (AdjState, AdjOutput leaves), it yields the
// adjoints of the state at the start of the step, of the inputs, and this step's contribution to
// each param's gradient (the runtime accumulates those across time).
#pragma once

#include <vector>

#include "ir/Step.h"

namespace cellc::autodiff {

struct Backward {
  std::vector<ir::NodeId> dState;  // per state slot; shape of the state
  std::vector<ir::NodeId> dInput;  // per input slot
  std::vector<ir::NodeId> dParam;  // per param slot; unbatched

  std::vector<ir::NodeId> roots() const;
};

// Builds the backward nodes into step.g. Param gradients are summed over the batch.
Backward differentiate(ir::Step& step);

// Reverse accumulation from `roots` seeded with `seeds` (one per root, same shapes): the adjoint
// of each node in `wrt`, zeros where nothing flows.
std::vector<ir::NodeId> reverse(ir::Graph& g, const std::vector<ir::NodeId>& roots,
                                const std::vector<ir::NodeId>& seeds,
                                const std::vector<ir::NodeId>& wrt);

// The vanishing-gradient regularizer's param gradient (Pascanu et al. 2013; pycog's Omega): with
// w_s = v^T dx_s'/dx (v: the AdjState leaves, the transition alone), the gradient of
// sum_s c_s . w_s with respect to every param, c_s being Cotangent leaves; v and x are constants.
std::vector<ir::NodeId> omegaGradient(ir::Step& step);

// True when the rules table has an entry for `op` (every op must: a test checks it).
bool hasRule(ir::Op op);

}  // namespace cellc::autodiff
