// Products with a sequence-invariant matrix, its GEMM panels packed once per sequence.
//
// A step's products Y[B, N] = X[B, K] op(W), with W a param or a hoisted value, read the same W at
// every step of a sequence. A GEMM first copies its operands into panels laid out for its
// micro-kernel (packing); with a short side of B rows, packing W (N x K elements, streamed from
// memory) costs a sixth to a third of the product: measured on Zen 5, one thread, W cycling
// through six matrices as in a step, packed over per-product Eigen at B = 64: 1.2-1.5x (n = 256..1024),
// at B = 16: 1.7-2.6x. So the prologue packs each such W into the hoisted buffer
// (codegen::PackedOperand), and the step's products (cellc_gemm_packed_*, blas/Gemm.cpp) pack only
// X, then run Eigen's own micro-kernel (gebp) over W's panels.
//
// A packed region (its size: codegen/PackedLayout.h) is kPackedPad elements, then the panels from
// the first 64-byte boundary: the hoisted buffer is the caller's memory, of any alignment. Its
// first element records where the panels start; a region that has been copied elsewhere since (a
// different alignment) or never packed is refused (packedPanels returns null) and the product
// falls back to the plain one.
#pragma once

#include <cstdint>

#include "codegen/PackedLayout.h"

namespace cellc {

// The blocking, fixed (not taken from the cache sizes) so that a product's summation order is the
// same on every machine of one vector width and for every thread count: W's rows in blocks of
// kPackedRows (the unit the threads share), the contraction in blocks of kPackedDepth.
inline constexpr int64_t kPackedRows = 128;
inline constexpr int64_t kPackedDepth = 256;

// Packs op(W)^T, the [n, k] left operand of C^T = op(W)^T X^T: W stored [n, k] row-major with row
// stride ld (rowMajor), or W stored [k, n] with row stride ld (Y = X W).
template <class T>
void packOperand(bool rowMajor, int64_t n, int64_t k, const T* w, int64_t ld, T* region);

// The panels of a packed region, or null when it is not usable here (see above).
template <class T>
const T* packedPanels(const T* region);

// X^T ([k, m], X stored [m, k] row-major with row stride ldx) packed in blocks of kPackedDepth:
// packedRhsSize(m, k) elements at `out` (64-byte aligned).
inline int64_t packedRhsSize(int64_t m, int64_t k) { return m * k; }
template <class T>
void packRhs(int64_t m, int64_t k, const T* x, int64_t ldx, T* out);

// C[:, rows [lo, hi) of W] += X op(W) over the whole contraction, from the packed panels and the
// packed X; lo and hi are multiples of kPackedRows (hi may be n).
template <class T>
void packedProduct(int64_t lo, int64_t hi, int64_t m, int64_t n, int64_t k, const T* panels,
                   const T* rhs, T* c, int64_t ldc);

}  // namespace cellc
