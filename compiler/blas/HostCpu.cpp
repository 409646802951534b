#include "blas/HostCpu.h"

#include <fstream>
#include <stdexcept>
#include <type_traits>

namespace cellc {

uint32_t hostIsa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  uint32_t bits = 0;
  // __builtin_cpu_supports takes a literal: one line per extension (its bit found at compile time).
#define CELLC_HAS(name) \
  if (__builtin_cpu_supports(name)) bits |= std::integral_constant<uint32_t, isaBit(name)>::value
  CELLC_HAS("avx"); CELLC_HAS("avx2"); CELLC_HAS("fma"); CELLC_HAS("bmi"); CELLC_HAS("bmi2");
  CELLC_HAS("avx512f"); CELLC_HAS("avx512dq"); CELLC_HAS("avx512cd"); CELLC_HAS("avx512bw");
  CELLC_HAS("avx512vl"); CELLC_HAS("avx512ifma"); CELLC_HAS("avx512vbmi"); CELLC_HAS("avx512vbmi2");
  CELLC_HAS("avx512vnni"); CELLC_HAS("avx512bitalg"); CELLC_HAS("avx512vpopcntdq");
  CELLC_HAS("avx512bf16"); CELLC_HAS("avx512fp16");
#undef CELLC_HAS
  return bits;
#else
  return kBuildIsa;  // no x86 extensions to miss
#endif
}

namespace {

// The names of the extensions set in `bits`, in kIsaNames' order, joined by `sep`.
std::string isaNames(uint32_t bits, const char* sep) {
  std::string out;
  for (size_t i = 0; i < std::size(kIsaNames); ++i)
    if (bits >> i & 1u) out += (out.empty() ? "" : sep) + std::string(kIsaNames[i]);
  return out;
}

}  // namespace

std::string missingIsa(uint32_t build, uint32_t host) { return isaNames(build & ~host, ", "); }

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

std::string hostCpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) break;
      const size_t start = line.find_first_not_of(" \t", colon + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  return "";
}

std::string hostIsaNames() { return isaNames(hostIsa(), ","); }

}  // namespace cellc
