// `cellc grad`, `cellc emit-llvm`: what the compiler derives and generates for a cell.
#include "driver/Compile.h"

#include <iostream>

#include "Cli.h"
#include "autodiff/PrintGrad.h"
#include "codegen/Plan.h"
#include "pipeline/Lower.h"

namespace cellc::cli {

int runGrad(const Args& a) {
  std::optional<Program> prog = loadOrReport(a.positional[0], a.overrides);
  if (!prog) return 1;
  StepIR ir = lower(*prog);
  if (a.flag("graph")) {
    std::cout << "# forward\n" << ir::printGraph(ir.g, ir.forwardRoots());
    std::cout << "# backward\n" << ir::printGraph(ir.g, ir.backwardRoots());
    return 0;
  }
  std::cout << autodiff::printGradient(*prog, ir);
  return 0;
}

int runEmitLLVM(const Args& a) {
  std::optional<Program> prog = loadOrReport(a.positional[0], a.overrides);
  if (!prog) return 1;
  StepIR ir = lower(*prog);
  std::string precision = a.get("precision", "f32");
  if (precision != "f32" && precision != "f64") throw UsageError("--precision is f32 or f64");
  if (a.flag("plan")) {
    // The plan the JIT compiles: the hoisted step (prologue, per step, epilogue), then the staged
    // form that training runs with train.input_stage, when the step has one.
    PlannedStep s = planStep(ir);
    std::cout << codegen::printPlan(s.ir, s.plan);
    if (s.staged.row > 0)
      std::cout << "\n# ---- with the input stage (train.input_stage = true) ----\n"
                << codegen::printPlan(s.staged.ir, s.staged.plan);
    return 0;
  }
  std::cout << printLLVM(ir, precision == "f64" ? codegen::Precision::F64 : codegen::Precision::F32,
                         !a.flag("O0"));
  return 0;
}

}  // namespace cellc::cli
