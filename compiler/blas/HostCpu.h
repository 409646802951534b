// The build's speed-tuned files (Eigen's GEMM, the optimizer updates, the init's factorizations)
// are compiled for CELLC_ARCH (CMake; native by default: the build machine's CPU). On a CPU without
// one of the extensions that enabled they would die of an illegal instruction in the middle of a
// run. So the JIT checks the host first and stops with an error that names what is missing and how
// to rebuild.
#pragma once

#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cellc {

// The x86 extensions the compiler may use, one bit each, in this order.
inline constexpr const char* kIsaNames[] = {
    "avx",        "avx2",       "fma",         "bmi",          "bmi2",         "avx512f",
    "avx512dq",   "avx512cd",   "avx512bw",    "avx512vl",     "avx512ifma",   "avx512vbmi",
    "avx512vbmi2", "avx512vnni", "avx512bitalg", "avx512vpopcntdq", "avx512bf16", "avx512fp16"};

// An extension's bit, by its name in kIsaNames (a name not there does not compile in a constant
// expression), so that no other list has to keep this order.
constexpr uint32_t isaBit(std::string_view name) {
  for (size_t i = 0; i < std::size(kIsaNames); ++i)
    if (name == kIsaNames[i]) return 1u << i;
  throw std::logic_error("no such extension");
}

// What CELLC_ARCH enabled (blas/BuildIsa.cpp, compiled with it; data only).
extern const uint32_t kBuildIsa;
// What this CPU has.
uint32_t hostIsa();
// The extensions in `build` that `host` lacks, by name, comma-separated; empty when none.
std::string missingIsa(uint32_t build, uint32_t host);
// Throws std::runtime_error when this CPU lacks an extension the build uses.
void checkHostCpu();

// This CPU as a run records it: /proc/cpuinfo's model name ("" when unreadable) and the extensions
// it has, by name. The JIT compiles for the host CPU, so two CPUs may round a run differently in
// the last bits, and a long training run then drifts apart: a result says which CPU made it.
std::string hostCpuName();
std::string hostIsaNames();  // comma-separated, in kIsaNames' order

}  // namespace cellc
