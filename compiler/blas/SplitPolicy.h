// Whether a batch-split kernel (cellc_parallel_batch, blas/Gemm.cpp) runs on several threads or
// on one, chosen by measuring both. On an idle machine the split pays (PBRC's [B, n, n] trace:
// 1.3x on two cores); on a machine whose cores other processes also use, every fork and join
// waits for a descheduled thread: PBRC's copy-first step took 16.2 s of wall time for 4 s of
// CPU, and 0.84 s once this choice fell back to one thread. The two ways give the same bits
// (each batch element is computed by one thread in one order), so choosing by time never
// changes a result.
#pragma once

#include <cstdint>

namespace cellc {

// One kernel's choice. Each mode's cost (seconds per element) is measured; the cheaper runs, and
// the other is probed now and then: after kMinGap calls, then at gaps that double while the
// probe keeps losing (up to kMaxGap), so that a mode that stays worse costs at most about
// 1/kMaxGap of the calls, and a change of the machine's load is noticed within kMaxGap calls.
class SplitPolicy {
 public:
  static constexpr int64_t kMinGap = 16, kMaxGap = 1024;
  // Whether the next call should run split between threads.
  bool split();
  // What that call cost.
  void record(bool split, double seconds, int64_t elements);

 private:
  double cost_[2] = {0, 0};  // seconds per element on one thread [0] and split [1]; 0: unmeasured
  int64_t calls_ = 0, nextProbe_ = kMinGap, gap_ = kMinGap;
  bool probing_ = false;
};

}  // namespace cellc
