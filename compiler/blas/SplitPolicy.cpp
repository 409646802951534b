#include "blas/SplitPolicy.h"

#include <algorithm>

namespace cellc {

bool SplitPolicy::split() {
  ++calls_;
  probing_ = false;
  if (cost_[1] == 0) return true;  // measure each way once first
  if (cost_[0] == 0) return false;
  const bool preferred = cost_[1] <= cost_[0];
  if (calls_ < nextProbe_) return preferred;
  probing_ = true;
  return !preferred;
}

void SplitPolicy::record(bool split, double seconds, int64_t elements) {
  if (elements <= 0 || !(seconds >= 0)) return;
  const double c = std::max(seconds / static_cast<double>(elements), 1e-15);
  double& mine = cost_[split ? 1 : 0];
  if (probing_) {
    // A probe's one measurement stands for the machine now; when it wins, the preference flips
    // and probing of the old way starts again at short gaps.
    const bool won = c < cost_[split ? 0 : 1];
    mine = c;
    gap_ = won ? kMinGap : std::min(2 * gap_, kMaxGap);
    nextProbe_ = calls_ + gap_;
  } else {
    mine = mine == 0 ? c : 0.8 * mine + 0.2 * c;  // the running way: smoothed
  }
  probing_ = false;
}

}  // namespace cellc
