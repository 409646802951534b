// The batch normal sampler: standard normal moments, determinism, odd lengths.
#include <catch2/catch.hpp>

#include <cmath>

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
