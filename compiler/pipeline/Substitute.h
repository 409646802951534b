// Graph surgery the stage passes share (pipeline/Hoist.h, pipeline/InputStage.h): replacing values
// by leaves that a stage computes elsewhere, and rebuilding what reads them.
#pragma once

#include <unordered_map>
#include <vector>

#include "ir/Graph.h"
#include "ir/Step.h"

namespace cellc {

// The same op as `n` with other operands (of the same shapes), through the shape-checking
// factories.
ir::NodeId rebuildWith(ir::Graph& g, const ir::Node& n, const std::vector<ir::NodeId>& x);

// One leaf of `role` per slot, in slot order.
std::vector<ir::NodeId> slotLeaves(ir::Graph& g, ir::Op role, const std::vector<ir::Slot>& slots);

// Rebuilds the graph above `roots` with each key of `sub` replaced by its value (sub grows with
// every rebuilt node); returns the roots as rebuilt.
std::vector<ir::NodeId> substitute(ir::Graph& g, const std::vector<ir::NodeId>& roots,
                                   std::unordered_map<ir::NodeId, ir::NodeId>& sub);

}  // namespace cellc
