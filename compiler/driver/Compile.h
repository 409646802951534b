// The compile driver: the one way from a checked program to a compiled step, every pass in one
// visible order (compileCell below lists them). Halide's Lower.cpp is the model: a newcomer adding
// a pass finds the order here, and nowhere else runs it. The callers (the experiment model, the
// analyses that rebind a cell, the Python bindings, `cellc unroll`, `cellc compile`) all come here.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "diag/Diagnostics.h"
#include "jit/Jit.h"
#include "sema/Program.h"

namespace cellc {

struct CompileOptions {
  bool omega = false;  // also the Omega term's gradient (a phase with train.omega > 0)
};

// A source that does not parse or check: the diagnostics, rendered with their source lines.
struct CellSourceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parse and check: the program, or CellSourceError (warnings of a program that checks are dropped;
// the command line renders them itself).
Program loadProgram(const SourceFile& file, const Overrides& overrides);

// The passes after lowering (pipeline/Lower.h: build the step, differentiate, simplify): hoist the
// sequence-invariant part, plan the kernels, and plan the segment form. No LLVM.
PlannedStep planStep(const StepIR& lowered, const CompileOptions& options = {});

// lower -> planStep -> link (jit/Jit.h). Throws JitError.
template <class T>
std::unique_ptr<CompiledCell<T>> compileCell(const StepIR& lowered,
                                             const CompileOptions& options = {});

template <class T>
struct CompiledProgram {
  StepIR ir;  // the lowered step (its layout names every buffer)
  std::unique_ptr<CompiledCell<T>> kernel;
};

// The whole way from a checked program.
template <class T>
CompiledProgram<T> compileProgram(const Program& prog, const CompileOptions& options = {});

// `cellc compile --emit-llvm`: the module of the planned step (without the Omega term), optimized
// for the host or as emitted.
std::string printLLVM(const StepIR& lowered, codegen::Precision precision, bool optimize);

}  // namespace cellc
