// How many threads the generated code's matrix products use (cut into chunks that the threads of
// blas/WorkPool.h share, blas/Gemm.cpp), for products of at least kParallelWork multiply-adds. One
// setting per process; 0 means all the machine's cores.
//
// Results are deterministic, and the same for every thread count above one: the chunks depend on
// a product's shape alone, and every element is summed within one chunk in a fixed order,
// whichever thread runs it. One thread computes each product whole, so its results may differ from
// those of two or more threads in the last bits (the blocking of the contraction follows the size
// of the chunk).
#pragma once

#include <cstdint>

namespace cellc {

// Products of fewer multiply-adds (M N K) run on one thread. Since the threads share chunks
// (blas/WorkPool.h) rather than fork and join, two threads pay from 2^20 (B = 16 at n = 256, about
// 15 us on one core): on Zen 5, alternating runs, n = 256, B = 16 went from 128-139 to 148-218
// steps/s (dale_rnn) and 44-47 to 55-76 (gru) when the threshold fell from 2^21; at 2^19 they lose
// (n = 100, B = 64: 200 -> 141).
inline constexpr int64_t kParallelWork = int64_t{1} << 20;

void setThreads(int n);  // 0: all cores
int threads();           // the count in use
int hardwareThreads();   // the machine's cores

}  // namespace cellc
