// JIT compilation of a lowered step through LLVM ORC (LLJIT), in float32 or float64, tuned to the
// host CPU. No LLVM header leaks out of here.
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

template <class T>
class CompiledCell final : public StepKernel<T> {
 public:
  using Fn = void (*)(T* const* bufs, int64_t batch);
  // The generated functions; prologue and epilogue are null when the plan hoists nothing.
  struct Fns {
    Fn forward = nullptr, backward = nullptr, omega = nullptr, prologue = nullptr, epilogue = nullptr;
  };
  // ir: the hoisted step the plan was made from, kept for the segment plan.
  CompiledCell(std::shared_ptr<JitSession> session, Fns fns, StepIR ir, codegen::Plan plan);
  ~CompiledCell() override;

  const ir::Layout& layout() const override { return layout_; }
  // The generated entry points (a profiler's map, tests).
  const Fns& functions() const { return fns_; }
  // Calls on disjoint buffers may run at once on the pool's threads (each has its own scratch);
  // the self-contained forward and backward excepted (they share hoisted_).
  bool concurrentCalls() const override { return true; }
  int64_t productWorkPerTrial() const override { return productWork_; }
  int64_t weightGradientElements() const override { return weightGradient_; }
  int64_t tapeSize(int64_t batch) const override { return plan_.tape.at(batch); }
  void forward(const T* params, const T* state, const T* input, const T* noise, T* stateNext,
               T* output, T* tape, int64_t batch) override;
  void backward(const T* params, const T* state, const T* input, const T* noise, const T* tape,
                const T* dStateNext, const T* dOutput, T* dState, T* dInput, T* dParams,
                int64_t batch) override;
  void omega(const T* params, const T* state, const T* input, const T* noise, const T* v,
             const T* cotangent, T* dParams, int64_t batch) override;

  int64_t hoistedSize() const override { return hoistedSize_; }
  bool inputAdjointOptional() const override;
  bool adjointInPlace() const override;
  void prologue(const T* params, T* hoisted) override;
  void forwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                      const T* noise, T* stateNext, T* output, T* tape, int64_t batch) override;
  void backwardHoisted(const T* params, const T* hoisted, const T* state, const T* input,
                       const T* noise, const T* tape, const T* dStateNext, const T* dOutput,
                       T* dState, T* dInput, T* dParams, T* dHoisted, int64_t batch) override;
  void epilogue(const T* params, const T* hoisted, const T* dHoisted, T* dParams) override;

  // The segment plan (pipeline/SegmentGemm.h): the same step with its weight gradients deferred
  // to one GEMM per BPTT segment. It pays only where a per-step product is a thin update (small
  // batches, runtime/train/Bptt.h), so nothing of it is made until asked for: segmentSize plans it
  // (no LLVM), and the first backwardSegment or segmentEpilogue compiles its backward and segment
  // functions, once, whichever threads ask. segmentSize is 0, and backwardSegment the per-step
  // backward, when the step defers no product (or, never seen so far, when the deferred plan would
  // read a different tape).
  int64_t segmentSize(int64_t batch) const override;
  void backwardSegment(const T* params, const T* hoisted, const T* state, const T* input,
                       const T* noise, const T* tape, const T* dStateNext, const T* dOutput,
                       T* dState, T* dInput, T* dParams, T* dHoisted, T* segment, int64_t k,
                       int64_t batch) override;
  void segmentEpilogue(const T* params, const T* hoisted, const T* segment, int64_t steps,
                       T* dParams, T* dHoisted, int64_t batch) override;

  // The per-step plan, compiled with the cell: forward, backward and the hoisted stages.
  const codegen::Plan& plan() const { return plan_; }
  // The segment plan (planned now if it was not), or null when it is not used (segmentSize 0).
  const codegen::Plan* segmentPlan() const;
  const StepIR* segmentStep() const;  // its step, or null likewise
  // Compiles the segment plan now if it was not (thread-safe; the segment stages call it).
  void compileSegmentPlan() { segmentCompiled(); }
  // How many times the segment plan's code was compiled: 0 until a segment stage ran, then 1.
  int segmentCompiles() const { return segmentCompiles_.load(); }

 private:
  struct Segment;  // the deferred step, its plan, and once compiled its code
  const Segment& segmentPlanned() const;
  const Segment& segmentCompiled();
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
  int64_t hoistedSize_ = 0;
  int64_t productWork_ = 0;
  int64_t weightGradient_ = 0;  // weightGradientElements()
  mutable std::once_flag planOnce_;
  std::once_flag compileOnce_;
  mutable std::unique_ptr<Segment> segment_;
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

// Compiles both steps, and the Omega term's gradient when asked for, hoisting the step's
// sequence-invariant part (pipeline/Hoist.h) into a prologue and an epilogue. The segment plan
// (above) is compiled later, if ever. Throws JitError.
template <class T>
std::unique_ptr<CompiledCell<T>> compileCell(const StepIR& ir, bool withOmega = false);

// The module as LLVM IR text, optimized (O3, host CPU) or as emitted, of the hoisted step.
std::string emitLLVM(const StepIR& ir, codegen::Precision precision, bool optimize);

}  // namespace cellc
