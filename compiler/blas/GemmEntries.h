// The C entries generated code calls (blas/Gemm.cpp), resolved by the JIT to this process
// (jit/Jit.cpp): products (plain, over a segment's rows, with W packed by the prologue; the
// arguments of cellc_gemm_*: transpose flags, M, N, K, A, lda, B, ldb, beta (0 or 1), C, ldc), and
// kernels split over the batch.
#pragma once

#include <cstdint>

extern "C" {
void cellc_gemm_f64(int32_t, int32_t, int64_t, int64_t, int64_t, const double*, int64_t,
                    const double*, int64_t, double, double*, int64_t);
void cellc_gemm_f32(int32_t, int32_t, int64_t, int64_t, int64_t, const float*, int64_t,
                    const float*, int64_t, float, float*, int64_t);
void cellc_gemm_segment_f64(int32_t, int32_t, int64_t, int64_t, int64_t, const double*, int64_t,
                            const double*, int64_t, double, double*, int64_t);
void cellc_gemm_segment_f32(int32_t, int32_t, int64_t, int64_t, int64_t, const float*, int64_t,
                            const float*, int64_t, float, float*, int64_t);
void cellc_gemm_packed_f64(int32_t, int32_t, int64_t, int64_t, int64_t, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t, const double*);
void cellc_gemm_packed_f32(int32_t, int32_t, int64_t, int64_t, int64_t, const float*, int64_t,
                           const float*, int64_t, float, float*, int64_t, const float*);
void cellc_parallel_batch(void (*)(void* const*, int64_t, int64_t, int64_t), void* const*, int64_t,
                          int64_t);
}
