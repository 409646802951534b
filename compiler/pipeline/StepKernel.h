// The interface every executable form of a step implements: the reference evaluator
// (eval/Evaluate.h) and the JIT-compiled kernels. The runtime (unrolling, training) only talks to
// this interface, so a test can swap one implementation for another.
//
// One call entry: run(stage, args). A kernel that wraps another (a timer, a counter, a test
// double) forwards run(), traits() and the sizes, and so keeps every fast path of what it wraps;
// there is no per-stage virtual with a silent slower default to forget.
//
// Buffers are flat and follow the Layout (ir/Step.h): params unbatched at slot.offset; states,
// inputs, noise and outputs batched, slot i holding [B, dims...] at B * slot.offset.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "ir/Step.h"

namespace cellc {

// The stages of a step, and what each reads (r) and writes (w) of StepArgs.
//   Forward          r params state input noise           w stateNext output tape
//   Backward         r params state input noise tape dStateNext dOutput
//                    w dState dInput, dParams +=                        (the step's whole gradient)
// Hoisting (pipeline/Hoist.h): a kernel may compute the sequence-invariant part of a step once per
// sequence. Forward and Backward are self-contained (they compute that part themselves); a
// runtime that walks a sequence runs instead
//   Prologue         r params                             w hoisted (traits().hoistedSize elements)
//   ForwardHoisted   as Forward, also r hoisted
//   BackwardHoisted  as Backward, also r hoisted, dHoisted += (zeroed by the caller before the
//   walk) Epilogue         r params hoisted dHoisted            dParams +=     (once after the
//   walk)
// Weight gradients over a segment (pipeline/SegmentGemm.h): a kernel may defer the per-step
// products dW += dY_t^T X_t to one product per segment of the backward walk; a runtime that walks
// segments runs, for a segment of `steps` steps, before the Epilogue,
//   BackwardSegment  as BackwardHoisted, but the deferred products' operands go to row block k of
//                    `segment` (segmentSize(batch) elements per step) instead of being added
//   SegmentEpilogue  r params hoisted segment steps       dParams, dHoisted += the deferred
//   products
// A kernel that defers nothing has segmentSize 0 and runs BackwardSegment as BackwardHoisted.
// The input stage (pipeline/InputStage.h; traits().stagedWidth > 0): a runtime that walks a whole
// sequence, its inputs at hand, may instead run (never mixed with the segment stages)
//   InputPrologue    r params hoisted input (all steps: batch = steps x B)   w staged
//   ForwardStaged    as ForwardHoisted, also r staged (this step's B rows)
//   BackwardStaged   as BackwardHoisted, also w dStaged (this step's B rows); no dInput
//   InputEpilogue    r params hoisted input staged dStaged (batch = steps x B)
//                    dParams, dHoisted +=  (after the walk, before the Epilogue)
// staged and dStaged are [steps * B, stagedWidth] row-major, step t's rows from t * B; the input
// over steps x B rows is laid out as any batch of that size (slot i at (steps * B) * offset).
//   Omega            r params state input noise v cotangent   dParams +=  d/dtheta sum_s
//                    cotangent_s . (v^T dstate_s'/dstate), v given per state
//                    (autodiff::omegaGradient)
// dParams always ACCUMULATES; dState and dInput are overwritten.
enum class Stage : uint8_t {
  Forward,
  Backward,
  Prologue,
  ForwardHoisted,
  BackwardHoisted,
  BackwardSegment,
  SegmentEpilogue,
  Epilogue,
  Omega,
  InputPrologue,
  ForwardStaged,
  BackwardStaged,
  InputEpilogue,
  kCount
};

inline const char* stageName(Stage s) {
  static const char* const names[] = {"forward",          "backward",         "prologue",
                                      "forward_hoisted",  "backward_hoisted", "backward_segment",
                                      "segment_epilogue", "epilogue",         "omega",
                                      "input_prologue",   "forward_staged",   "backward_staged",
                                      "input_epilogue"};
  return names[static_cast<int>(s)];
}

// Every buffer a stage may touch (see Stage for which); the others stay null. Written with
// designated initializers at the call, so each pointer is named where it is passed.
template <class T>
struct StepArgs {
  const T* params = nullptr;
  T* hoisted = nullptr;  // written by Prologue, read by the others
  const T* state = nullptr;
  const T* input = nullptr;
  const T* noise = nullptr;
  T* tape = nullptr;  // written by the forward stages, only read by the backward ones
  T* stateNext = nullptr;
  T* output = nullptr;
  const T* dStateNext = nullptr;
  const T* dOutput = nullptr;
  T* dState = nullptr;
  T* dInput = nullptr;
  T* dParams = nullptr;
  T* dHoisted = nullptr;
  T* segment = nullptr;
  T* staged = nullptr;   // the input stage's values (see Stage)
  T* dStaged = nullptr;  // their adjoints
  const T* v = nullptr;          // Omega
  const T* cotangent = nullptr;  // Omega
  int64_t k = 0;                 // BackwardSegment: the step's row block in the segment
  int64_t steps = 0;             // SegmentEpilogue: the segment's steps
  int64_t batch = 1;
};

// What a kernel can do; the runtime chooses its path from these (runtime/train/Bptt.h).
struct KernelTraits {
  // Whether stages other than the self-contained Forward and Backward may run at once on
  // different threads of the work pool (blas/WorkPool.h), on disjoint buffers: BPTT then runs a
  // batch's shards side by side.
  bool concurrentCalls = false;
  // Whether the backward stages accept dInput = nullptr, and then skip the work only the input
  // adjoint needs (training never reads it).
  bool inputAdjointOptional = false;
  // Whether the backward stages accept dState == dStateNext: the state adjoint overwritten in
  // place, each element read before it is written. BPTT then keeps one state-adjoint buffer
  // instead of two (a plastic cell's trace adjoint stays in cache).
  bool adjointInPlace = false;
  // Whether Omega can run.
  bool omega = false;
  // Elements of the hoisted buffer (0: the kernel hoists nothing).
  int64_t hoistedSize = 0;
  // Elements per batch element and step of the input stage's buffers (0: no input stage), and
  // whether BackwardStaged or InputEpilogue read the staged values (else a caller may pass them
  // null there).
  int64_t stagedWidth = 0;
  bool stagedReadBack = true;
  // The multiply-adds of the step's largest matrix product (forward or backward), per trial of
  // the batch; 0 when not known.
  int64_t productWorkPerTrial = 0;
  // The elements of the largest weight gradient the backward forms as a product summed over the
  // batch (a GEMM with K = B per step); 0 when not known.
  int64_t weightGradientElements = 0;
};

template <class T>
class StepKernel {
 public:
  virtual ~StepKernel() = default;
  virtual const ir::Layout& layout() const = 0;
  virtual KernelTraits traits() const = 0;
  // Elements the forward saves for the backward (per step, for this batch size).
  virtual int64_t tapeSize(int64_t batch) const = 0;
  // Elements of the segment buffer per step (0: the kernel defers no product). A kernel may plan
  // its segment form on the first call, so it is asked only where segments pay.
  virtual int64_t segmentSize(int64_t batch) const = 0;
  // Elements the staged forward saves for the staged backward (per step); 0 without an input stage.
  virtual int64_t stagedTapeSize(int64_t) const { return 0; }
  virtual void run(Stage stage, const StepArgs<T>& args) = 0;
};

// The dispatch of a kernel that implements every stage as a member (the JIT's CompiledCell, the
// reference Evaluator): one switch for both. Such a kernel befriends this function.
template <class K, class T>
void runStage(K& k, Stage stage, const StepArgs<T>& a) {
  switch (stage) {
    case Stage::Forward: k.forward(a); return;
    case Stage::Backward: k.backward(a); return;
    case Stage::Prologue: k.prologue(a.params, a.hoisted); return;
    case Stage::ForwardHoisted: k.forwardHoisted(a); return;
    case Stage::BackwardHoisted: k.backwardHoisted(a); return;
    case Stage::BackwardSegment: k.backwardSegment(a); return;
    case Stage::SegmentEpilogue: k.segmentEpilogue(a); return;
    case Stage::Epilogue: k.epilogue(a); return;
    case Stage::Omega: k.omega(a); return;
    case Stage::InputPrologue: k.inputPrologue(a); return;
    case Stage::ForwardStaged: k.forwardStaged(a); return;
    case Stage::BackwardStaged: k.backwardStaged(a); return;
    case Stage::InputEpilogue: k.inputEpilogue(a); return;
    case Stage::kCount: break;
  }
  throw std::logic_error("unknown step stage");
}

// A kernel with only the self-contained steps (a test double, an adapter): it hoists and defers
// nothing, so the hoisted and segment stages are its Forward and Backward and the rest are empty.
template <class T>
class SelfContainedKernel : public StepKernel<T> {
 public:
  KernelTraits traits() const override { return {}; }
  int64_t segmentSize(int64_t) const override { return 0; }
  void run(Stage stage, const StepArgs<T>& a) override {
    switch (stage) {
      case Stage::Forward:
      case Stage::ForwardHoisted: forward(a); return;
      case Stage::Backward:
      case Stage::BackwardHoisted:
      case Stage::BackwardSegment: backward(a); return;
      case Stage::Prologue:
      case Stage::Epilogue:
      case Stage::SegmentEpilogue: return;
      case Stage::Omega: throw std::logic_error("this step kernel has no Omega function");
      case Stage::InputPrologue: case Stage::ForwardStaged: case Stage::BackwardStaged:
      case Stage::InputEpilogue:
        throw std::logic_error("this step kernel has no input stage");
      case Stage::kCount: break;
    }
    throw std::logic_error("unknown step stage");
  }

 protected:
  virtual void forward(const StepArgs<T>& a) = 0;
  virtual void backward(const StepArgs<T>& a) = 0;
};

// A kernel that wraps another (a timer, a counter, a fault injector): it forwards everything, so a
// subclass overrides run() to add its part and still gets every stage and trait of the inner one.
template <class T>
class ForwardingKernel : public StepKernel<T> {
 public:
  explicit ForwardingKernel(StepKernel<T>& inner) : inner_(inner) {}
  const ir::Layout& layout() const override { return inner_.layout(); }
  KernelTraits traits() const override { return inner_.traits(); }
  int64_t tapeSize(int64_t batch) const override { return inner_.tapeSize(batch); }
  int64_t segmentSize(int64_t batch) const override { return inner_.segmentSize(batch); }
  int64_t stagedTapeSize(int64_t batch) const override { return inner_.stagedTapeSize(batch); }
  void run(Stage stage, const StepArgs<T>& args) override { inner_.run(stage, args); }

 protected:
  StepKernel<T>& inner_;
};

}  // namespace cellc
