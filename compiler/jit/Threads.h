// How many threads the generated code's matrix products use (Eigen's GEMM on OpenMP), for products
// of at least kParallelWork multiply-adds. One setting per process; 0 means all the machine's cores.
//
// Results are deterministic for a given thread count: every element of a product is summed by one
// thread in a fixed order. They may differ in the last bits between thread counts, because the
// blocking of the contraction depends on it.
#pragma once

#include <cstdint>

namespace cellc {

// Products of fewer multiply-adds (M N K) run on one thread.
inline constexpr int64_t kParallelWork = int64_t{1} << 24;

void setThreads(int n);  // 0: all cores
int threads();           // the count in use
int hardwareThreads();   // the machine's cores

}  // namespace cellc
