// `cellc grad`: the backward step as readable .cell-style equations, each referring to the
// source line it differentiates, so a user can read the derivative of a new cell and believe it.
#pragma once

#include <string>

#include "ir/StepIR.h"
#include "sema/Program.h"

namespace cellc::autodiff {

std::string printGradient(const Program& prog, const StepIR& ir);

}  // namespace cellc::autodiff
