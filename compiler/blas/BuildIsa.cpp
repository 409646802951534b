// Compiled with CELLC_ARCH's flags, like the speed-tuned files: records the extensions they enabled
// (blas/HostCpu.h). Data only, so reading it runs none of them.
#include "blas/HostCpu.h"

namespace cellc {

extern const uint32_t kBuildIsa = 0u
#ifdef __AVX__
    | isaBit("avx")
#endif
#ifdef __AVX2__
    | isaBit("avx2")
#endif
#ifdef __FMA__
    | isaBit("fma")
#endif
#ifdef __BMI__
    | isaBit("bmi")
#endif
#ifdef __BMI2__
    | isaBit("bmi2")
#endif
#ifdef __AVX512F__
    | isaBit("avx512f")
#endif
#ifdef __AVX512DQ__
    | isaBit("avx512dq")
#endif
#ifdef __AVX512CD__
    | isaBit("avx512cd")
#endif
#ifdef __AVX512BW__
    | isaBit("avx512bw")
#endif
#ifdef __AVX512VL__
    | isaBit("avx512vl")
#endif
#ifdef __AVX512IFMA__
    | isaBit("avx512ifma")
#endif
#ifdef __AVX512VBMI__
    | isaBit("avx512vbmi")
#endif
#ifdef __AVX512VBMI2__
    | isaBit("avx512vbmi2")
#endif
#ifdef __AVX512VNNI__
    | isaBit("avx512vnni")
#endif
#ifdef __AVX512BITALG__
    | isaBit("avx512bitalg")
#endif
#ifdef __AVX512VPOPCNTDQ__
    | isaBit("avx512vpopcntdq")
#endif
#ifdef __AVX512BF16__
    | isaBit("avx512bf16")
#endif
#ifdef __AVX512FP16__
    | isaBit("avx512fp16")
#endif
    ;

}  // namespace cellc
