#include "jit/HostCpu.h"

#include <stdexcept>

namespace cellc {

uint32_t hostIsa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports takes a literal: one line per kIsaNames entry, in its order.
  const bool has[] = {
      __builtin_cpu_supports("avx") != 0,          __builtin_cpu_supports("avx2") != 0,
      __builtin_cpu_supports("fma") != 0,          __builtin_cpu_supports("bmi") != 0,
      __builtin_cpu_supports("bmi2") != 0,         __builtin_cpu_supports("avx512f") != 0,
      __builtin_cpu_supports("avx512dq") != 0,     __builtin_cpu_supports("avx512cd") != 0,
      __builtin_cpu_supports("avx512bw") != 0,     __builtin_cpu_supports("avx512vl") != 0,
      __builtin_cpu_supports("avx512ifma") != 0,   __builtin_cpu_supports("avx512vbmi") != 0,
      __builtin_cpu_supports("avx512vbmi2") != 0,  __builtin_cpu_supports("avx512vnni") != 0,
      __builtin_cpu_supports("avx512bitalg") != 0, __builtin_cpu_supports("avx512vpopcntdq") != 0,
      __builtin_cpu_supports("avx512bf16") != 0,   __builtin_cpu_supports("avx512fp16") != 0};
  static_assert(std::size(has) == std::size(kIsaNames));
  uint32_t bits = 0;
  for (size_t i = 0; i < std::size(has); ++i)
    if (has[i]) bits |= 1u << i;
  return bits;
#else
  return kBuildIsa;  // no x86 extensions to miss
#endif
}

std::string missingIsa(uint32_t build, uint32_t host) {
  std::string out;
  for (size_t i = 0; i < std::size(kIsaNames); ++i)
    if ((build >> i & 1u) && !(host >> i & 1u)) out += (out.empty() ? "" : ", ") + std::string(kIsaNames[i]);
  return out;
}

void checkHostCpu() {
  const std::string missing = missingIsa(kBuildIsa, hostIsa());
  if (missing.empty()) return;
  throw std::runtime_error(
      "this build of cellc was compiled for a CPU with " + missing +
      " (CMake's CELLC_ARCH, native by default: the build machine), and this CPU lacks " +
      (missing.find(',') == std::string::npos ? "it" : "them") +
      ". Rebuild on this machine (remove the build folder, then bash scripts/setup.sh), or build "
      "once for every machine it will run on: cmake -DCELLC_ARCH=x86-64-v3 (AVX2 and FMA).");
}

}  // namespace cellc
