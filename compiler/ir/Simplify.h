// The simplifier: rebuilds the nodes reachable from the roots into a fresh graph, folding
// constants and applying algebraic identities (x + 0, x * 1, x * 0, --x, x^1, x^2 = x x, zeros
// through linear ops). Unreachable nodes are dropped, so it is also dead-node removal.
#pragma once

#include <vector>

#include "ir/Graph.h"

namespace cellc::ir {

// `roots` is rewritten to the ids of the new graph.
Graph simplify(const Graph& in, std::vector<NodeId>& roots);

}  // namespace cellc::ir
