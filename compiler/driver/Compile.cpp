#include "driver/Compile.h"

#include <sstream>

#include "pipeline/Hoist.h"
#include "pipeline/InputStage.h"
#include "pipeline/Lower.h"
#include "pipeline/SegmentGemm.h"

namespace cellc {

Program loadProgram(const SourceFile& file, const Overrides& overrides) {
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, overrides, diags);
  if (prog) return std::move(*prog);
  std::ostringstream os;
  diags.render(os, file);
  std::string text = os.str();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  throw CellSourceError(text);
}

PlannedStep planStep(const StepIR& lowered, const CompileOptions& options) {
  PlannedStep s;
  // 1. The sequence-invariant part (products of params alone) to a prologue and an epilogue.
  s.ir = hoist(lowered);
  // 2. The kernels of every function: loop groups, GEMMs, packed operands, tape, scratch.
  s.plan = codegen::makePlan(s.ir, options.omega);
  // 3. The segment form: weight gradients deferred to one product per BPTT segment, with the same
  //    prologue; used only when its backward reads the tape the per-step forward wrote.
  s.segment.ir = deferWeightGradients(s.ir);
  if (!s.segment.ir.deferred.empty()) {
    s.segment.plan = codegen::makePlan(s.segment.ir, false, &s.plan.packed);
    if (codegen::sameTape(s.plan, s.segment.plan)) s.segment.row = s.segment.ir.segmentSize;
  }
  // 4. The staged form: products of inputs and params alone run once over a sequence's steps x B
  //    rows (train.input_stage), with the same prologue; products codegen sums inline are left.
  s.staged.ir = stageInputs(s.ir, codegen::kInlineContraction);
  if (!s.staged.ir.staged.empty()) {
    s.staged.plan = codegen::makePlan(s.staged.ir, false, &s.plan.packed);
    s.staged.row = s.staged.ir.stagedSize;
  }
  return s;
}

template <class T>
std::unique_ptr<CompiledCell<T>> compileCell(const StepIR& lowered, const CompileOptions& options) {
  return linkStep<T>(planStep(lowered, options));
}

template <class T>
CompiledProgram<T> compileProgram(const Program& prog, const CompileOptions& options) {
  CompiledProgram<T> c;
  c.ir = lower(prog);  // build the step, differentiate, simplify
  c.kernel = compileCell<T>(c.ir, options);
  return c;
}

std::string printLLVM(const StepIR& lowered, codegen::Precision precision, bool optimize) {
  return emitLLVM(planStep(lowered), precision, optimize);
}

template std::unique_ptr<CompiledCell<float>> compileCell<float>(const StepIR&,
                                                                 const CompileOptions&);
template std::unique_ptr<CompiledCell<double>> compileCell<double>(const StepIR&,
                                                                   const CompileOptions&);
template CompiledProgram<float> compileProgram<float>(const Program&, const CompileOptions&);
template CompiledProgram<double> compileProgram<double>(const Program&, const CompileOptions&);

}  // namespace cellc
