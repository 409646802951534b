// JIT compilation of a lowered step through LLVM ORC (LLJIT), in float32 or float64, tuned to the
// host CPU. No LLVM header leaks out of here.
#pragma once

#include <array>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "codegen/EmitLLVM.h"
#include "codegen/Plan.h"
#include "pipeline/StepKernel.h"

namespace cellc {

// The JIT could not compile or link the generated code: a compiler bug or a broken LLVM install,
// reported as an error, never a crash.
struct JitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct JitSession;  // owns the LLJIT instance and the code

template <class T>
class CompiledCell final : public StepKernel<T> {
 public:
  using Fn = void (*)(T* const* bufs, int64_t batch);
  // The generated functions; prologue and epilogue are null when the plan hoists nothing.
  struct Fns {
    Fn forward = nullptr, backward = nullptr, omega = nullptr, prologue = nullptr, epilogue = nullptr;
    Fn segment = nullptr;  // null when no weight gradient is deferred
  };
  CompiledCell(std::shared_ptr<JitSession> session, Fns fns, ir::Layout layout, codegen::Plan plan,
               int64_t hoistedSize, int64_t segmentRow);
  ~CompiledCell() override;

  const ir::Layout& layout() const override { return layout_; }
  int64_t tapeSize(int64_t batch) const override { return plan_.tape.at(batch); }
  void forward(const T* params, const T* state, const T* input, const T* noise, T* stateNext,
               T* output, T* tape, int64_t batch) override;
  void backward(const T* params, const T* state, const T* input, const T* noise, const T* tape,
                const T* dStateNext, const T* dOutput, T* dState, T* dInput, T* dParams,
                int64_t batch) override;
  void omega(const T* params, const T* state, const T* input, const T* noise, const T* v,
             const T* cotangent, T* dParams, int64_t batch) override;

  int64_t hoistedSize() const override { return hoistedSize_; }
  void prologue(const T* params, T* hoisted) override;
  void forwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                      const T* noise, T* stateNext, T* output, T* tape, int64_t batch) override;
  void backwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                       const T* noise, const T* tape, const T* dStateNext, const T* dOutput,
                       T* dState, T* dInput, T* dParams, T* dHoisted, int64_t batch) override;
  void epilogue(const T* params, const T* hoisted, const T* dHoisted, T* dParams) override;

  int64_t segmentSize(int64_t batch) const override { return segmentRow_ * batch; }
  void backwardSegment(const T* params, const T* hoisted, const T* state, const T* input,
                       const T* noise, const T* tape, const T* dStateNext, const T* dOutput,
                       T* dState, T* dInput, T* dParams, T* dHoisted, T* segment, int64_t k,
                       int64_t batch) override;
  void segmentEpilogue(const T* params, const T* hoisted, const T* segment, int64_t steps,
                       T* dParams, T* dHoisted, int64_t batch) override;

  const codegen::Plan& plan() const { return plan_; }

 private:
  T* scratch(int64_t batch);
  // The table of buffer pointers a generated function takes (codegen::Buf order): the step's
  // params, state, input, noise and scratch set, the rest null until a caller sets them.
  using Bufs = std::array<T*, static_cast<size_t>(codegen::Buf::kCount)>;
  Bufs bufs(const T* params, const T* state, const T* input, const T* noise, int64_t batch);
  static void set(Bufs& b, codegen::Buf which, const T* p) {
    b[static_cast<size_t>(which)] = const_cast<T*>(p);  // the generated code only reads inputs
  }

  std::shared_ptr<JitSession> session_;
  Fns fns_;  // omega is null unless compiled with it
  ir::Layout layout_;
  codegen::Plan plan_;
  int64_t hoistedSize_ = 0;
  int64_t segmentRow_ = 0;  // the segment buffer's row width (elements per batch element and step)
  // The self-contained forward and backward's own hoisted values and adjoints, and the one-step
  // segment buffer of backwardHoisted (per instance).
  std::vector<T> hoisted_, dHoisted_, segmentOne_;
  // Per instance (a CompiledCell is not shared between threads), 64-byte aligned for vector loads.
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> scratch_;
  size_t scratchSize_ = 0;
};

// Compiles both steps, and the Omega term's gradient when asked for, hoisting the step's
// sequence-invariant part (pipeline/Hoist.h) into a prologue and an epilogue and deferring its
// weight gradients to a segment stage (pipeline/SegmentGemm.h). Throws JitError.
template <class T>
std::unique_ptr<CompiledCell<T>> compileCell(const StepIR& ir, bool withOmega = false);

// The module as LLVM IR text, optimized (O3, host CPU) or as emitted, of the hoisted step.
std::string emitLLVM(const StepIR& ir, codegen::Precision precision, bool optimize);

}  // namespace cellc
