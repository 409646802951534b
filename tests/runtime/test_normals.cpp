// The batch normal sampler: standard normal moments, determinism, odd lengths.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "blas/Threads.h"

#include "random/Normals.h"

TEST_CASE("fillNormals draws standard normals, deterministically", "[random]") {
  const size_t n = 400001;  // odd: the last pair is half used
  std::vector<double> z(n);
  std::mt19937_64 rng(5);
  cellc::runtime::fillNormals(rng, z.data(), n);
  double m1 = 0, m2 = 0, m4 = 0;
  for (double x : z) m1 += x, m2 += x * x, m4 += x * x * x * x;
  m1 /= n, m2 /= n, m4 /= n;
  CHECK(std::fabs(m1) < 5 / std::sqrt(double(n)));
  CHECK(m2 == Approx(1).epsilon(0.01));
  CHECK(m4 == Approx(3).epsilon(0.03));  // kurtosis of a normal
  std::vector<float> f(n);
  std::mt19937_64 again(5);
  cellc::runtime::fillNormals(again, f.data(), n);
  for (size_t i = 0; i < n; i += 997) CHECK(f[i] == Approx(z[i]).margin(1e-6));
}

// The copy-first task draws all T steps in one job: the same bits as one call per step, in turn,
// on one thread or two (only the math is shared; the draws stay in stream order).
TEST_CASE("fillNormals over many arrays matches one call per array, on any thread count", "[random]") {
  const int saved = cellc::threads();
  for (size_t n : {size_t{1}, size_t{7}, size_t{1024}, size_t{4097}}) {
    const size_t arrays = 40;
    std::vector<std::vector<float>> one(arrays, std::vector<float>(n));
    std::mt19937_64 a(11);
    for (auto& v : one) cellc::runtime::fillNormals(a, v.data(), n);
    const uint64_t next = a();
    for (int threads : {1, 2}) {
      cellc::setThreads(threads);
      std::vector<std::vector<float>> many(arrays, std::vector<float>(n));
      std::vector<float*> outs;
      for (auto& v : many) outs.push_back(v.data());
      std::mt19937_64 b(11);
      cellc::runtime::fillNormals(b, outs, n);
      INFO("n = " << n << ", threads = " << threads);
      CHECK(b() == next);  // as many draws taken
      for (size_t k = 0; k < arrays; ++k)
        CHECK(std::memcmp(one[k].data(), many[k].data(), n * sizeof(float)) == 0);
    }
  }
  cellc::setThreads(saved);
}

// The bits themselves: every experiment's data and noise come from here, so a change that alters
// them (a vectorized log or sin through libmvec, another rounding) changes every published number
// and must be deliberate. Values of glibc 2.36's logf and sincosf (their FMA variants, which both
// of CI's CPU kinds select) and the draws of mt19937_64(5).
TEST_CASE("fillNormals keeps its bits", "[random]") {
  std::mt19937_64 rng(5);
  std::vector<float> z(4097);
  cellc::runtime::fillNormals(rng, z.data(), z.size());
  CHECK(z[0] == -0x1.1c7ec6p-1f);
  CHECK(z[1] == -0x1.63dbcp-1f);
  CHECK(z[2] == -0x1.463458p+1f);
  CHECK(z[3] == 0x1.1fe5c8p-3f);
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bits of all 4097
  for (float f : z) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    h = (h ^ u) * 1099511628211ull;
  }
  CHECK(h == 3219949003098050032ull);
}
