// d(x)/dt = f as a discrete step, by the cell's integrator (`integrator NAME`, default euler;
// docs/language.md, "Continuous time"). Every later stage sees only the step.
//
//   euler              x' = x + dt * (f)                                   (pycog's discretization)
//   exponential_euler  f split as f = A * x + N, A the terms linear in the bare state x:
//                      x' = x * exp(A * dt) + (exp(A * dt) - 1) / A * N    (N held at step start)
//
// exponential_euler is exact for a linear leak with constant input over the step (Brian2's
// `exponential_euler`; ETD1 in Hochbruck & Ostermann 2010), and first-order like euler otherwise.
#pragma once

#include "diag/Diagnostics.h"
#include "syntax/Ast.h"

namespace cellc {

// Names every integrator, for messages and docs.
inline constexpr const char* kIntegrators = "euler or exponential_euler";

// Rewrites each derivative equation's value (f, kept in Stmt::rate) into its step. Reports E217
// for an unknown integrator, E218 for an f with no term linear in its state under
// exponential_euler, W502 for an integrator chosen without any d(x)/dt. False on an error.
bool integrate(CellAst& ast, DiagnosticSink& diags);

}  // namespace cellc
