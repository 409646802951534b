// The orthonormal factor of a QR decomposition, for orthogonal() (params/Init.cpp). Its own file:
// it is compiled for this machine's vector units (runtime/CMakeLists.txt), which made the
// orthogonal inits at n = 1024 1.2-1.9x faster than a generic build (BM_Init, one run).
#pragma once

#include <cstdint>

namespace cellc::runtime {

// a: [rows, cols] row-major, rows >= cols. q (same shape, row-major) = the Q of a = QR with each
// column signed by diag(R), which makes the factor unique (Haar distributed for a Gaussian a,
// whatever sign convention the QR routine has).
void orthonormalFactor(const double* a, int64_t rows, int64_t cols, double* q);

}  // namespace cellc::runtime
