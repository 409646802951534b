// The step graph: a hash-consed DAG of tensor operations for one step of a cell (forward and,
// after autodiff, backward). Equal expressions are one node, so common subexpressions are shared
// for free (tinygrad's habit). Factories check operand shapes when a node is made (Halide's habit):
// a failure there is a compiler bug, reported as InternalError, never the user's fault.
#pragma once

#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "diag/Diagnostics.h"
#include "syntax/Ast.h"

namespace cellc::ir {

// X(name, arity, kind). Kinds: Leaf (no inputs), Pointwise (each output element is a function of
// operand elements at mapped indices: fusable into loops), Contract (matrix products and
// reductions: materialized). Arity -1: variadic.
#define CELLC_IR_OPS(X)                                                                         \
  X(Const, 0, Leaf)       /* scalar constant `value` */                                        \
  X(Param, 0, Leaf)       /* trainable parameter `a0` */                                       \
  X(State, 0, Leaf)       /* state `a0` at the start of the step */                            \
  X(Input, 0, Leaf)       /* input `a0` */                                                     \
  X(Noise, 0, Leaf)       /* noise `a0` */                                                     \
  X(AdjState, 0, Leaf)    /* adjoint of state `a0`'s next value (backward step) */            \
  X(AdjOutput, 0, Leaf)   /* adjoint of output `a0` (backward step) */                         \
  X(Cotangent, 0, Leaf)   /* cotangent of state `a0`'s adjoint (second order: the Omega term) */\
  X(Hoisted, 0, Leaf)     /* sequence-invariant value `a0`, computed once per sequence */      \
  X(AdjHoisted, 0, Leaf)  /* adjoint of hoisted value `a0`, summed over the steps (epilogue) */\
  X(Staged, 0, Leaf)      /* input-stage value `a0`: this step's rows, computed for all steps */ \
  X(AdjStaged, 0, Leaf)   /* adjoint of input-stage value `a0`, every step's rows (input epilogue) */\
  X(Eye, 0, Pointwise)    /* identity [n, n] */                                                \
  X(Dale, 0, Pointwise)   /* +1 for i < a0, else -1, shape [n] */                              \
  X(Neg, 1, Pointwise)                                                                          \
  X(Exp, 1, Pointwise)                                                                          \
  X(Log, 1, Pointwise)                                                                          \
  X(Tanh, 1, Pointwise)                                                                         \
  X(Sigmoid, 1, Pointwise)                                                                      \
  X(Relu, 1, Pointwise)                                                                         \
  X(Softplus, 1, Pointwise)                                                                     \
  X(Abs, 1, Pointwise)                                                                          \
  X(Sqrt, 1, Pointwise)                                                                         \
  X(Add, 2, Pointwise)                                                                          \
  X(Sub, 2, Pointwise)                                                                          \
  X(Mul, 2, Pointwise)                                                                          \
  X(Div, 2, Pointwise)                                                                          \
  X(Pow, 2, Pointwise)                                                                          \
  X(Min, 2, Pointwise)                                                                          \
  X(Max, 2, Pointwise)                                                                          \
  X(Lt, 2, Pointwise)     /* 1 where a < b, else 0 */                                          \
  X(Le, 2, Pointwise)     /* 1 where a <= b, else 0 */                                         \
  X(Clip, 3, Pointwise)   /* min(max(x, lo), hi) */                                            \
  X(Where, 3, Pointwise)  /* c != 0 ? a : b (NaN counts as nonzero, as in numpy) */            \
  X(Heaviside, 2, Pointwise) /* 1 where x > 0, else 0; in[1] = k; backward: fast sigmoid */   \
  X(HeavisideSigmoid, 2, Pointwise)  /* the same forward; backward: sigmoid's derivative */     \
  X(HeavisideAtan, 2, Pointwise)     /* the same forward; backward: arctan's derivative */      \
  X(HeavisideTriangle, 2, Pointwise) /* the same forward; backward: a triangle */                \
  X(Outer, 2, Pointwise)  /* [m] x [p] -> [m, p] */                                            \
  X(Transpose, 1, Pointwise)                                                                    \
  X(Slice, 1, Pointwise)  /* axis a0, elements [a1, a2); a point index is a slice + Squeeze */ \
  X(Squeeze, 1, Pointwise) /* drop size-1 axis a0 */                                           \
  X(Unsqueeze, 1, Pointwise) /* insert a size-1 axis at a0 */                                  \
  X(Pad, 1, Pointwise)    /* inverse of Slice: place x at [a1, a1+len) of axis a0 of size a2 */\
  X(Concat, -1, Pointwise) /* along the last axis */                                           \
  X(Broadcast, 1, Pointwise) /* to this node's shape (numpy rules, batch included) */          \
  X(MatMul, 2, Contract)  /* numpy matmul per batch element, rank <= 2 */                      \
  X(BatchOuterSum, 2, Contract) /* sum over the batch of outer(a, b): a^T b for [B,m],[B,p] */ \
  X(Sum, 1, Contract)     /* over axis a0, or every axis when a0 == -1 (batch excluded) */     \
  X(SumBatch, 1, Contract) /* over the batch axis: [B, ...] -> [...] */                        \
  X(Amax, 1, Contract)    /* max over axis a0, or every axis when a0 == -1 (batch excluded) */

// heaviside(x)'s default surrogate slope k: its gradient is taken as 1 / (1 + k|x|)^2 (the fast
// sigmoid of SuperSpike, Zenke & Ganguli 2018; snnTorch's surrogate.fast_sigmoid(slope = k)).
inline constexpr double kHeavisideSlope = 10;

enum class Op : uint8_t {
#define X(name, arity, kind) name,
  CELLC_IR_OPS(X)
#undef X
};

// heaviside in each of its surrogates (docs/language.md, Spikes): one forward, x > 0; the op
// names the backward (autodiff/Vjp.cpp), so every pass that rebuilds a node keeps it. In the order
// of the names a cell writes, sema's kSurrogateNames (ir/Step.cpp checks the two agree).
inline constexpr Op kHeavisideOps[] = {Op::Heaviside, Op::HeavisideSigmoid, Op::HeavisideAtan,
                                       Op::HeavisideTriangle};

// op's place in kHeavisideOps (and so its surrogate's name in kSurrogateNames), or -1.
inline int surrogateIndex(Op op) {
  for (int i = 0; i < static_cast<int>(std::size(kHeavisideOps)); ++i)
    if (kHeavisideOps[i] == op) return i;
  return -1;
}
inline bool isHeaviside(Op op) { return surrogateIndex(op) >= 0; }
enum class OpKind : uint8_t { Leaf, Pointwise, Contract };

const char* opName(Op op);
int opArity(Op op);
OpKind opKind(Op op);
inline constexpr int kNumOps = 0
#define X(name, arity, kind) +1
    CELLC_IR_OPS(X)
#undef X
    ;

using NodeId = int32_t;

struct Node {
  Op op;
  Shape shape;
  std::vector<NodeId> in;
  double value = 0;                   // Const
  int64_t a0 = 0, a1 = 0, a2 = 0;     // op attributes (slot, axis, bounds)
  SourceLoc loc;                      // the source line this node came from (first one, if shared)
};

struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};

class Graph {
 public:
  const Node& operator[](NodeId id) const { return nodes_[id]; }
  size_t size() const { return nodes_.size(); }
  const std::vector<Node>& nodes() const { return nodes_; }

  // Nodes made while a location is set carry it (autodiff sets the forward node's location).
  void setLoc(SourceLoc loc) { loc_ = loc; }
  SourceLoc loc() const { return loc_; }

  // ---- factories (shape-checked, hash-consed) ----
  // Shapes are taken by value: a factory appends to the node vector, which may move it.
  NodeId constant(double v);
  NodeId leaf(Op role, int64_t slot, Shape shape);
  NodeId eye(int64_t n);
  NodeId dale(int64_t n, int64_t numExcitatory);
  NodeId unary(Op op, NodeId x);
  NodeId binary(Op op, NodeId a, NodeId b);  // elementwise with broadcasting, and MatMul, Outer
  NodeId clip(NodeId x, NodeId lo, NodeId hi);
  NodeId where(NodeId c, NodeId a, NodeId b);
  NodeId transpose(NodeId x);
  NodeId slice(NodeId x, int64_t axis, int64_t lo, int64_t hi);
  NodeId squeeze(NodeId x, int64_t axis);
  NodeId unsqueeze(NodeId x, int64_t axis);
  NodeId pad(NodeId x, int64_t axis, int64_t lo, int64_t size);
  NodeId concat(const std::vector<NodeId>& xs);
  NodeId broadcast(NodeId x, Shape to);
  NodeId sum(NodeId x, int64_t axis);  // axis -1: every non-batch axis
  NodeId sumBatch(NodeId x);
  NodeId amax(NodeId x, int64_t axis);  // axis -1: every non-batch axis
  NodeId batchOuterSum(NodeId a, NodeId b);
  // Sums x over the axes it was broadcast along so that it has `to`'s shape (the adjoint of an
  // implicit broadcast).
  NodeId reduceTo(NodeId x, Shape to);

  // Convenience.
  NodeId add(NodeId a, NodeId b) { return binary(Op::Add, a, b); }
  NodeId sub(NodeId a, NodeId b) { return binary(Op::Sub, a, b); }
  NodeId mul(NodeId a, NodeId b) { return binary(Op::Mul, a, b); }
  NodeId div(NodeId a, NodeId b) { return binary(Op::Div, a, b); }
  NodeId neg(NodeId a) { return unary(Op::Neg, a); }

  bool isConst(NodeId id, double v) const {
    return nodes_[id].op == Op::Const && nodes_[id].value == v;
  }

 private:
  NodeId make(Node n);  // the hash-consing point

  struct Key {
    Op op;
    std::vector<NodeId> in;
    uint64_t valueBits;
    int64_t a0, a1, a2;
    Shape shape;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };

  std::vector<Node> nodes_;
  std::unordered_map<Key, NodeId, KeyHash> index_;
  SourceLoc loc_;
};

// numpy broadcasting of two shapes (batch: batched if either is). Throws InternalError if they
// do not broadcast.
Shape broadcastShapes(const Shape& a, const Shape& b);

// Nodes reachable from `roots`, operands before users.
std::vector<NodeId> topoOrder(const Graph& g, const std::vector<NodeId>& roots);

// One line per node: "%12 = tanh(%10)  [B, 64]   # line 14".
std::string printGraph(const Graph& g, const std::vector<NodeId>& roots);

}  // namespace cellc::ir
