// The middle of the pipeline: a checked program to the simplified forward and backward step
// graphs, which the code generator, the reference evaluator and `cellc grad` all consume.
#pragma once

#include "autodiff/Vjp.h"
#include "ir/Step.h"

namespace cellc {

struct StepIR {
  ir::Graph g;
  ir::Layout layout;
  std::string cellName;
  // Forward roots.
  std::vector<ir::NodeId> stateNext, outputs;
  // Backward roots: adjoints of the state at the start of the step and of the inputs, and this
  // step's param gradient contributions (summed over the batch).
  std::vector<ir::NodeId> dState, dInput, dParam;
  // The vanishing-gradient regularizer's param gradient (autodiff::omegaGradient), per param.
  std::vector<ir::NodeId> omegaParam;
  // Per param: the effective matrix that spectral_radius(.., of = W) measures, or -1.
  std::vector<ir::NodeId> effective;
  // Names of forward values (intermediates, h', outputs), for printing derivatives.
  std::vector<std::pair<std::string, ir::NodeId>> named;

  std::vector<ir::NodeId> forwardRoots() const;
  std::vector<ir::NodeId> backwardRoots() const;
};

StepIR lower(const Program& prog);

}  // namespace cellc
