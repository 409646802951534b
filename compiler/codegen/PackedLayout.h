// How much of the hoisted buffer a packed W takes (blas/PackedGemm.h packs it there): the plan
// reserves the region, the kernels fill it, so the size is defined here, below both.
#pragma once

#include <cstdint>

namespace cellc {

inline constexpr int64_t kPackedPad = 16;
inline constexpr int64_t packedRegionSize(int64_t n, int64_t k) { return n * k + kPackedPad; }

}  // namespace cellc
