// The reference evaluator: a plain interpreter of the step graph in double precision, written
// for obviousness rather than speed, and independent of any code generator. Tests hold the JIT
// against it, and its backward (with the unroller) against finite differences.
//
// Values: a node of shape [dims...] is a dense row-major array; a batched node holds B of them
// back to back ([B, dims...]). Elementwise ops broadcast like numpy per batch element, and an
// unbatched operand is the same for every batch element. Every op follows the semantics written
// next to it in ir/Graph.h.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/Graph.h"
#include "ir/Step.h"
#include "pipeline/Lower.h"
#include "pipeline/StepKernel.h"

namespace cellc::eval {

// Where the leaves read from, laid out as ir::Layout says: params at slot.offset; states, inputs
// and noise at B * slot.offset ([B, dims...]); AdjState with the layout of the states, AdjOutput
// with the layout of the outputs. A pointer may be null when the graph has no leaf of its role.
struct Leaves {
  const double* params = nullptr;
  const double* state = nullptr;
  const double* input = nullptr;
  const double* noise = nullptr;
  const double* adjState = nullptr;
  const double* adjOutput = nullptr;
  const double* cotangent = nullptr;  // state layout (the Omega term)
  // Hoisted values and their adjoints (StepIR::hoistedSlots layout, unbatched).
  const double* hoisted = nullptr;
  const double* adjHoisted = nullptr;
  const std::vector<ir::Slot>* hoistedSlots = nullptr;
  // The input stage's values and their adjoints (StepIR::stagedSlots): batch element b's value i
  // at b * stagedWidth + stagedSlots[i].offset.
  const double* staged = nullptr;
  const double* adjStaged = nullptr;
  const std::vector<ir::Slot>* stagedSlots = nullptr;
  int64_t stagedWidth = 0;
};

// The value of each root: g[root].shape.numel() elements, times `batch` when the root is batched
// ([B, dims...], row-major). Throws ir::InternalError on a malformed graph (operand shapes that
// do not fit the op, a leaf whose slot or shape disagrees with the layout, a missing buffer).
std::vector<std::vector<double>> evaluate(const ir::Graph& g, const std::vector<ir::NodeId>& roots,
                                          const ir::Layout& layout, const Leaves& leaves,
                                          int64_t batch);

// A StepKernel that interprets the StepIR. It saves nothing (tapeSize 0): backward recomputes the
// forward values it needs from (params, state, input, noise). Given a hoisted StepIR
// (pipeline/Hoist.h), it runs the same stages as the generated code: prologue, steps, epilogue;
// given one with deferred weight gradients (pipeline/SegmentGemm.h), the segment stage too.
class Evaluator : public StepKernel<double> {
 public:
  explicit Evaluator(const StepIR& ir) : ir_(ir) {}

  const ir::Layout& layout() const override { return ir_.layout; }
  // Omega when the StepIR has its gradient; nothing runs concurrently (one evaluator, plain loops).
  KernelTraits traits() const override;
  int64_t tapeSize(int64_t) const override { return 0; }
  // Given a StepIR with deferred weight gradients (pipeline/SegmentGemm.h), the segment stages.
  int64_t segmentSize(int64_t batch) const override { return ir_.segmentSize * batch; }
  void run(Stage stage, const StepArgs<double>& args) override;

  const StepIR& stepIR() const { return ir_; }

 private:
  template <class K, class U>
  friend void cellc::runStage(K& k, Stage stage, const StepArgs<U>& a);
  void forward(const StepArgs<double>& a);
  void backward(const StepArgs<double>& a);
  void prologue(const double* params, double* hoisted);
  void forwardHoisted(const StepArgs<double>& a);
  void backwardHoisted(const StepArgs<double>& a);
  void backwardSegment(const StepArgs<double>& a);
  void segmentEpilogue(const StepArgs<double>& a);
  void epilogue(const StepArgs<double>& a);
  void omega(const StepArgs<double>& a);
  // Given a staged StepIR (pipeline/InputStage.h), the input stage.
  void inputPrologue(const StepArgs<double>& a);
  void forwardStaged(const StepArgs<double>& a);
  void backwardStaged(const StepArgs<double>& a);
  void inputEpilogue(const StepArgs<double>& a);

  StepIR ir_;
};

}  // namespace cellc::eval
