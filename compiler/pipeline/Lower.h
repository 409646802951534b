// The middle of the pipeline: a checked program to the simplified forward and backward step
// graphs, which the code generator, the reference evaluator and `cellc grad` all consume.
#pragma once

#include "autodiff/Vjp.h"
#include "ir/Step.h"
#include "ir/StepIR.h"

namespace cellc {

StepIR lower(const Program& prog);

}  // namespace cellc
