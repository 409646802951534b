// The host check (blas/HostCpu.h): a build compiled for extensions this CPU lacks must say which,
// instead of dying of an illegal instruction.
#include <catch2/catch.hpp>

#include "blas/HostCpu.h"

using namespace cellc;


TEST_CASE("missingIsa names what the build uses and the host lacks", "[host]") {
  const uint32_t build = isaBit("avx2") | isaBit("fma") | isaBit("avx512f") | isaBit("avx512bw");
  CHECK(missingIsa(build, build) == "");
  CHECK(missingIsa(build, build | isaBit("avx512vl")) == "");
  CHECK(missingIsa(build, isaBit("avx2") | isaBit("fma")) == "avx512f, avx512bw");
  CHECK(missingIsa(build, 0) == "avx2, fma, avx512f, avx512bw");
  CHECK(missingIsa(0, 0) == "");
}

TEST_CASE("this machine runs its own build, and the host bits are consistent", "[host]") {
  // The tests run where they were built (CELLC_ARCH native, or something older).
  CHECK_NOTHROW(checkHostCpu());
  CHECK(missingIsa(kBuildIsa, hostIsa()) == "");
  const uint32_t host = hostIsa();
  // Every x86 CPU with AVX-512 has AVX2, and every one with AVX2 has AVX.
  if (host & isaBit("avx512f")) CHECK((host & isaBit("avx2")) != 0);
  if (host & isaBit("avx2")) CHECK((host & isaBit("avx")) != 0);
}
