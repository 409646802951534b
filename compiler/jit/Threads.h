// How many threads the generated code's matrix products use (split by hand between OpenMP threads,
// jit/Gemm.cpp), for products of at least kParallelWork multiply-adds. One setting per process; 0
// means all the machine's cores.
//
// Results are deterministic for a given thread count: every element of a product is summed by one
// thread in a fixed order. They may differ in the last bits between thread counts, because the
// blocking of the contraction depends on the size of each thread's share.
#pragma once

#include <cstdint>

namespace cellc {

// Products of fewer multiply-adds (M N K) run on one thread. A split joins its threads once per
// product; from 2^21 (B = 64 at n = 256, about 30 us on one core) two threads pay (measured on Zen 4:
// 1.4x at 2^22, none at 2^20).
inline constexpr int64_t kParallelWork = int64_t{1} << 21;

void setThreads(int n);  // 0: all cores
int threads();           // the count in use
int hardwareThreads();   // the machine's cores

}  // namespace cellc
