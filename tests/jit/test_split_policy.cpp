// The choice between a batch-split kernel on several threads and on one (blas/SplitPolicy.h), on
// synthetic costs: it settles on the cheaper way, keeps the other's share small, and follows a
// change of the machine's load.
#include <catch2/catch.hpp>

#include "blas/SplitPolicy.h"

using cellc::SplitPolicy;

namespace {

// Runs `calls` calls whose cost per element is split ? splitCost : oneCost; the share split.
double run(SplitPolicy& p, int calls, double oneCost, double splitCost) {
  int split = 0;
  for (int i = 0; i < calls; ++i) {
    bool s = p.split();
    split += s ? 1 : 0;
    p.record(s, (s ? splitCost : oneCost) * 1000, 1000);
  }
  return static_cast<double>(split) / calls;
}

}  // namespace

TEST_CASE("a batch-split kernel runs split where that is cheaper, on one thread where not") {
  SplitPolicy idle;
  run(idle, 100, 1.0, 0.6);
  CHECK(run(idle, 10000, 1.0, 0.6) > 0.99);

  SplitPolicy busy;  // split 10x dearer: the probes of it fall to about 1 call in kMaxGap
  run(busy, 2000, 1.0, 10.0);
  double share = run(busy, 10000, 1.0, 10.0);
  CHECK(share > 0);
  CHECK(share <= 2.0 / SplitPolicy::kMaxGap);
}

TEST_CASE("the batch-split choice follows the machine's load both ways") {
  SplitPolicy p;
  run(p, 3000, 1.0, 10.0);  // busy: one thread
  // The load goes away: within kMaxGap calls a probe finds the split cheaper again.
  run(p, SplitPolicy::kMaxGap + 10, 1.0, 0.6);
  CHECK(run(p, 1000, 1.0, 0.6) > 0.98);
  // And back: the running way's cost rises, so the other wins at once.
  run(p, 50, 1.0, 10.0);
  CHECK(run(p, 1000, 1.0, 10.0) < 0.05);
}
