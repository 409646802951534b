// The host check (jit/HostCpu.h): a build compiled for extensions this CPU lacks must say which,
// instead of dying of an illegal instruction.
#include <catch2/catch.hpp>

#include "jit/HostCpu.h"

using namespace cellc;

namespace {
uint32_t bit(const std::string& name) {
  for (size_t i = 0; i < std::size(kIsaNames); ++i)
    if (name == kIsaNames[i]) return 1u << i;
  FAIL("no extension " << name);
  return 0;
}
}  // namespace

TEST_CASE("missingIsa names what the build uses and the host lacks", "[host]") {
  const uint32_t build = bit("avx2") | bit("fma") | bit("avx512f") | bit("avx512bw");
  CHECK(missingIsa(build, build) == "");
  CHECK(missingIsa(build, build | bit("avx512vl")) == "");
  CHECK(missingIsa(build, bit("avx2") | bit("fma")) == "avx512f, avx512bw");
  CHECK(missingIsa(build, 0) == "avx2, fma, avx512f, avx512bw");
  CHECK(missingIsa(0, 0) == "");
}

TEST_CASE("this machine runs its own build, and the host bits are consistent", "[host]") {
  // The tests run where they were built (CELLC_ARCH native, or something older).
  CHECK_NOTHROW(checkHostCpu());
  CHECK(missingIsa(kBuildIsa, hostIsa()) == "");
  const uint32_t host = hostIsa();
  // Every x86 CPU with AVX-512 has AVX2, and every one with AVX2 has AVX.
  if (host & bit("avx512f")) CHECK((host & bit("avx2")) != 0);
  if (host & bit("avx2")) CHECK((host & bit("avx")) != 0);
}
