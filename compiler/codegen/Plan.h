// Scheduling a step graph into kernels, before any LLVM: which nodes get a buffer of their own
// (materialized), which are fused into the loops of their users, where each buffer lives, and what
// the forward pass saves for the backward pass (the tape).
//
// Fusion: pointwise nodes (elementwise ops, and index remappings such as outer, transpose, slice,
// pad, concat, broadcast) are computed inline in the loop of the node that uses them. A node is
// materialized when it is a matrix product or reduction, an operand of a matrix product, used more
// than once (and not a mere view of a buffer), or a root.
//
// The tape: the backward pass reads forward values that the forward pass materialized anyway
// (matrix products, shared values) from the tape, and recomputes the single-use pointwise chains
// in between (cheaper than a store and a load). Transcendental values the backward pass needs
// (tanh, sigmoid, exp, ...) are always materialized and taped: their derivative rules reuse them,
// and recomputing them costs more than the memory traffic.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "pipeline/Lower.h"

namespace cellc::codegen {

// The buffers a step function sees, in the order of its `bufs` argument.
enum class Buf : uint8_t {
  Params, State, Input, Noise, AdjState, AdjOutput,   // read
  StateNext, Output, Tape, DState, DInput, DParams,   // written (Tape read by backward)
  Cotangent,                                          // read by the Omega function
  Hoisted, DHoisted,  // written by the prologue, read per step; written per step, read by the epilogue
  Segment,  // deferred products' operands: written per step (at its row block), read by the segment stage
  Staged, DStaged,  // the input stage's values (written by its prologue) and their adjoints (read by its epilogue)
  Scratch,
  kCount
};
const char* bufName(Buf b);

// Where a value lives: element 0 of batch element b is at bufs[buf] + fixed + B * perBatch + b *
// numel (batched values) or bufs[buf] + fixed + B * perBatch (unbatched ones).
// A batched value in the segment buffer has its rows batchStride apart (the buffer's row width)
// instead of numel: one column range of a [steps * B, segmentSize] matrix.
struct Place {
  Buf buf = Buf::kCount;
  int64_t fixed = 0;
  int64_t perBatch = 0;
  int64_t batchStride = 0;  // 0: numel
};

struct Kernel {
  enum class Kind { Pointwise, Reduce, Gemm, Copy };
  Kind kind;
  ir::NodeId node;
  Place out;
  bool accumulate = false;  // out += value (param gradients accumulate over time steps)
  bool fusedWithPrev = false;  // in the loop nest of the kernel before it (codegen/LoopGroups.h)
  int64_t packedAt = -1;  // a Gemm whose W is packed (PackedOperand): its region in the hoisted buffer
  bool inputAdjointOnly = false;  // backward: only the input adjoint needs it (Plan::inputAdjointOptional)
};

struct FunctionPlan {
  std::vector<Kernel> kernels;
  std::unordered_map<ir::NodeId, Place> placed;  // leaves, taped and materialized nodes
};

// Sizes in elements: fixed + B * perBatch.
struct Extent {
  int64_t fixed = 0, perBatch = 0;
  int64_t at(int64_t batch) const { return fixed + batch * perBatch; }
};

// A matrix product codegen emits as one GEMM over the batch: Y[B, n] = X[B, k] op(W), X a batched
// vector, W an unbatched matrix. x and w are the nodes that hold them (W's own node under a
// transposed read); wTrans: op(W) = W^T with W stored [n, k], else W stored [k, n]; ldw: W's row
// stride. Null for any other product (a batched matrix, a weight gradient, an unplaced operand).
struct BatchedProduct {
  ir::NodeId x, w;
  bool wTrans;
  int64_t n, k, ldw;
};
std::optional<BatchedProduct> batchedProduct(const ir::Graph& g, const FunctionPlan& fp, ir::NodeId node);

// A sequence-invariant matrix W (a param, or a hoisted value) that per-step products
// Y[B, n] = X[B, k] op(W) read: the prologue packs it into GEMM panels once per sequence, at
// `offset` in the hoisted buffer (after the IR's hoisted values), and those products use the
// panels (blas/PackedGemm.h). rowMajor: W stored [n, k] (Y = X W^T); else stored [k, n] (Y = X W).
struct PackedOperand {
  Place src;
  bool rowMajor = true;
  int64_t n = 0, k = 0, ld = 0;
  int64_t offset = 0;
  bool operator==(const PackedOperand& o) const {
    return src.buf == o.src.buf && src.fixed == o.src.fixed && rowMajor == o.rowMajor && n == o.n &&
           k == o.k && ld == o.ld;
  }
};
// Smaller W (below 128 x 128) are not packed: the gain was measured from n = 256 up.
inline constexpr int64_t kPackedMinElements = int64_t{1} << 14;

struct Plan {
  // prologue and epilogue: the sequence-invariant part (pipeline/Hoist.h), empty when nothing is
  // hoisted; forward and backward: one step.
  FunctionPlan prologue, forward, backward, epilogue;
  bool hasHoisted = false;
  // The segment stage (pipeline/SegmentGemm.h): one GEMM per deferred product over the segment
  // buffer's rows, its function called with batch = steps x B; empty when nothing is deferred.
  FunctionPlan segment;
  bool hasSegment = false;
  FunctionPlan omega;  // the Omega term's gradient, planned when asked for (no tape: recomputes)
  bool hasOmega = false;
  // The input stage (pipeline/InputStage.h): its prologue and epilogue, called with batch =
  // steps x B over the staged buffers' rows; empty when nothing is staged. Their scratch is
  // their own (inputScratch), sized for that batch.
  FunctionPlan inputPrologue, inputEpilogue;
  bool hasStaged = false;
  // Whether the backward or the input epilogue reads the staged values (a derivative rule of a
  // nonlinear staged value, a fused chain recomputed from one); else a walk need not stage a chunk
  // again for its backward.
  bool stagedReadBack = false;
  Extent inputScratch;
  Extent tape, scratch;
  std::vector<ir::NodeId> tapeNodes;
  // The backward runs its inputAdjointOnly kernels only when given a d_input buffer: a caller that
  // does not need the input adjoint (training) passes null and skips them. False when nothing is
  // skipped, or when another kernel writes or reads d_input (null must then not be passed).
  bool inputAdjointOptional = false;
  // The backward writes d_state over d_state_next, reading its adjoint leaves from the d_state
  // buffer (codegen/InPlaceAdjoint.h): the caller passes d_state holding d_state_next's values.
  bool adjointInPlace = false;
  // Operands packed by the prologue, and the hoisted elements they take after ir.hoistedSize.
  std::vector<PackedOperand> packed;
  int64_t packedSize = 0;
};

// `packedFrom`: the packed operands of another plan of the same step whose prologue fills the
// hoisted buffer (the segment plan's backward uses the per-step plan's); null: this plan's own.
Plan makePlan(const StepIR& ir, bool withOmega = false,
              const std::vector<PackedOperand>* packedFrom = nullptr);

// Whether a backward planned in `b` can read a tape written by the forward of `a`: the same taped
// nodes at the same places (a plan with deferred weight gradients next to the per-step one).
bool sameTape(const Plan& a, const Plan& b);

// Matrix products contracting over at most this many elements (W x with a 1-dim input, a small
// readout) are computed inline as pointwise sums, fused with their users: a GEMM call costs more.
inline constexpr int64_t kInlineContraction = 8;
bool isInlineMatMul(const ir::Graph& g, ir::NodeId id);

// A product of a per-batch matrix with a vector (a Hebbian trace times the state, and the
// transposed product of its backward): each matrix element is used once, so a GEMM has no reuse to
// exploit. It is a reduction of its own (Kernel::Kind::Reduce) that computes the matrix operand
// inline, so that [B, n, n] operand is never stored, nor taped: the trace streams once per use.
bool isBatchedMatVec(const ir::Graph& g, ir::NodeId id);

// Human-readable plan, for `cellc emit-llvm --plan` and debugging.
std::string printPlan(const StepIR& ir, const Plan& plan);

}  // namespace cellc::codegen
