// JIT compilation through LLVM ORC (LLJIT), in float32 or float64, tuned to the host CPU, of a
// step the compile driver (driver/Compile.h) has lowered and planned: this layer only emits,
// optimizes and links what it is given. No LLVM header leaks out of here.
#pragma once

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
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

// What the JIT is given: the hoisted step (pipeline/Hoist.h) and its plan, and the same step with
// its weight gradients deferred to one product per BPTT segment (pipeline/SegmentGemm.h) and that
// plan, with the segment buffer's row width (0: the segment form is not used).
struct PlannedStep {
  StepIR ir;
  codegen::Plan plan;
  struct Segment {
    StepIR ir;
    codegen::Plan plan;
    int64_t row = 0;  // elements per batch element and step
  } segment;
  // The staged form (pipeline/InputStage.h), with the same prologue; row 0: nothing is staged.
  struct Staged {
    StepIR ir;
    codegen::Plan plan;
    int64_t row = 0;  // elements per batch element and step of the staged buffers
  } staged;
};

template <class T>
class CompiledCell final : public StepKernel<T> {
 public:
  using Fn = void (*)(T* const* bufs, int64_t batch);
  // The generated functions; prologue and epilogue are null when the plan hoists nothing.
  struct Fns {
    Fn forward = nullptr, backward = nullptr, omega = nullptr, prologue = nullptr, epilogue = nullptr;
  };
  CompiledCell(std::shared_ptr<JitSession> session, Fns fns, PlannedStep step);
  ~CompiledCell() override;

  const ir::Layout& layout() const override { return layout_; }
  // The generated entry points (a profiler's map, tests).
  const Fns& functions() const { return fns_; }
  // Stages on disjoint buffers may run at once on the pool's threads (each has its own scratch);
  // the self-contained Forward and Backward excepted (they share hoisted_). The adjoint flags
  // hold for both backward plans (BPTT may run either), so they plan the segment form (no LLVM).
  KernelTraits traits() const override;
  int64_t tapeSize(int64_t batch) const override { return plan_.tape.at(batch); }
  // The segment form (PlannedStep::Segment) pays only where a per-step product is a thin update
  // (small batches, runtime/train/Bptt.h), so its code is not made until asked for: the first
  // BackwardSegment or SegmentEpilogue compiles its backward and segment functions, once,
  // whichever threads ask. segmentSize is 0, and BackwardSegment the per-step backward, when the
  // step defers no product (or, never seen so far, when the deferred plan would read a different
  // tape).
  int64_t segmentSize(int64_t batch) const override;
  // The staged form likewise (PlannedStep::Staged) is compiled by the first staged stage.
  int64_t stagedTapeSize(int64_t batch) const override;
  void run(Stage stage, const StepArgs<T>& args) override;

  // The per-step plan, compiled with the cell: forward, backward and the hoisted stages.
  const codegen::Plan& plan() const { return plan_; }
  // The segment plan, or null when it is not used (segmentSize 0).
  const codegen::Plan* segmentPlan() const;
  const StepIR* segmentStep() const;  // its step, or null likewise
  // Compiles the segment plan now if it was not (thread-safe; the segment stages call it).
  void compileSegmentPlan() { segmentCompiled(); }
  // How many times the segment plan's code was compiled: 0 until a segment stage ran, then 1.
  int segmentCompiles() const { return segmentCompiles_.load(); }
  // The staged plan and step, or null when nothing is staged.
  const codegen::Plan* stagedPlan() const { return staged_.row ? &staged_.plan : nullptr; }
  const StepIR* stagedStep() const { return staged_.row ? &staged_.ir : nullptr; }

 private:
  template <class K, class U>
  friend void runStage(K& k, Stage stage, const StepArgs<U>& a);
  void forward(const StepArgs<T>& a);
  void backward(const StepArgs<T>& a);
  void prologue(const T* params, T* hoisted);
  void forwardHoisted(const StepArgs<T>& a);
  void backwardHoisted(const StepArgs<T>& a);
  void backwardSegment(const StepArgs<T>& a);
  void segmentEpilogue(const StepArgs<T>& a);
  void epilogue(const StepArgs<T>& a);
  void omega(const StepArgs<T>& a);
  void inputPrologue(const StepArgs<T>& a);
  void forwardStaged(const StepArgs<T>& a);
  void backwardStaged(const StepArgs<T>& a);
  void inputEpilogue(const StepArgs<T>& a);

  struct SegmentCode;  // the segment form's code, once compiled
  const SegmentCode& segmentCompiled();
  struct StagedCode;  // the staged form's code, once compiled
  const StagedCode& stagedCompiled();
  T* scratch(int64_t need);
  // The table of buffer pointers a generated function takes (codegen::Buf order): the step's
  // params, state, input, noise and scratch set, the rest null until a caller sets them.
  using Bufs = std::array<T*, static_cast<size_t>(codegen::Buf::kCount)>;
  Bufs bufs(const T* params, const T* state, const T* input, const T* noise, int64_t batch);
  static void set(Bufs& b, codegen::Buf which, const T* p) {
    b[static_cast<size_t>(which)] = const_cast<T*>(p);  // the generated code only reads inputs
  }

  std::shared_ptr<JitSession> session_;
  Fns fns_;  // omega is null unless compiled with it
  StepIR ir_;
  ir::Layout layout_;
  codegen::Plan plan_;
  PlannedStep::Segment seg_;
  PlannedStep::Staged staged_;
  int64_t hoistedSize_ = 0;
  int64_t productWork_ = 0;
  int64_t weightGradient_ = 0;  // weightGradientElements()
  std::once_flag compileOnce_;
  std::unique_ptr<SegmentCode> segCode_;
  std::once_flag stagedOnce_;
  std::unique_ptr<StagedCode> stagedCode_;
  std::atomic<int> segmentCompiles_{0};
  // The self-contained forward and backward's own hoisted values and adjoints (per instance).
  std::vector<T> hoisted_, dHoisted_;
  // Per instance and per worker of the pool (blas/WorkPool.h): the pool's threads may run steps of
  // disjoint batch shards at once (concurrentCalls). 64-byte aligned for vector loads.
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  struct Scratch {
    std::unique_ptr<T[], Free> data;
    size_t size = 0;
  };
  std::unique_ptr<Scratch[]> scratch_;
};

// Emits, optimizes and links the step's functions (the Omega term's when its plan has it, the
// prologue and epilogue when it hoists anything). The segment form is linked later, if ever.
// Throws JitError.
template <class T>
std::unique_ptr<CompiledCell<T>> linkStep(PlannedStep step);

// The module as LLVM IR text, optimized (O3, host CPU) or as emitted.
std::string emitLLVM(const PlannedStep& step, codegen::Precision precision, bool optimize);

}  // namespace cellc
