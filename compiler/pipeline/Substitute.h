// Graph surgery the stage passes share (pipeline/Hoist.h, pipeline/InputStage.h): replacing values
// by leaves that a stage computes elsewhere, rebuilding what reads them, carrying a step's roots
// through simplify(), and laying out the buffer of a stage's values.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "ir/Graph.h"
#include "ir/Step.h"
#include "ir/StepIR.h"

namespace cellc {

// The same op as `n` with other operands (of the same shapes), through the shape-checking
// factories.
ir::NodeId rebuildWith(ir::Graph& g, const ir::Node& n, const std::vector<ir::NodeId>& x);

// The values `worth` accepts nearest the roots: walks users before operands (`order`, a
// topological order of what the roots read, reversed) and stops at the first value accepted on
// each path. Sorted by id.
std::vector<ir::NodeId> nearestFrontier(const ir::Graph& g, const std::vector<ir::NodeId>& roots,
                                        const std::vector<ir::NodeId>& order,
                                        const std::function<bool(ir::NodeId)>& worth);

// A view re-indexes (or zero-pads) its operand: a stage computing it would copy, not save, work.
bool isView(ir::Op op);

// One leaf of `role` per slot, in slot order.
std::vector<ir::NodeId> slotLeaves(ir::Graph& g, ir::Op role, const std::vector<ir::Slot>& slots);

// Rebuilds the graph above `roots` with each key of `sub` replaced by its value (sub grows with
// every rebuilt node); returns the roots as rebuilt.
std::vector<ir::NodeId> substitute(ir::Graph& g, const std::vector<ir::NodeId>& roots,
                                   std::unordered_map<ir::NodeId, ir::NodeId>& sub);

// The roots that a pass keeps as they are (effective matrices, named values, the Omega gradient),
// appended to `roots` before simplify(); takeKept reads them back, in the same order, into `out`.
void keepRoots(const StepIR& in, std::vector<ir::NodeId>& roots);
class RootCursor;
void takeKept(const StepIR& in, RootCursor& cursor, StepIR& out);

// Reads simplify()'s roots back in the order they were pushed.
class RootCursor {
 public:
  explicit RootCursor(const std::vector<ir::NodeId>& roots) : roots_(roots) {}
  std::vector<ir::NodeId> take(size_t n);
  ir::NodeId next() { return roots_.at(k_++); }

 private:
  const std::vector<ir::NodeId>& roots_;
  size_t k_ = 0;
};

// One slot per value a stage computes into its own buffer (`values` as simplified, `original` as
// the step named them), one after another from offset 0; `size` receives the total.
std::vector<ir::Slot> stageSlots(const ir::Graph& g, const std::vector<ir::NodeId>& values,
                                 const std::vector<ir::NodeId>& original, const StepIR& in, ir::Role role,
                                 int64_t& size);

}  // namespace cellc
