// Every op of the IR has an entry in the derivative rules table.
#include <catch2/catch.hpp>

#include "autodiff/Vjp.h"
#include "ir/Graph.h"

using namespace cellc;

TEST_CASE("every IR op has a derivative rule", "[autodiff][rules]") {
  for (int i = 0; i < ir::kNumOps; ++i) {
    ir::Op op = static_cast<ir::Op>(i);
    INFO("op " << ir::opName(op));
    CHECK(autodiff::hasRule(op));
  }
}
