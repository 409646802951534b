// The optimizers' elementwise updates, in a file of their own: built with -O3 -march=native and
// no FMA contraction (runtime/CMakeLists.txt), so that they vectorize and still give, element
// for element, the bits of the scalar formulas (IEEE +, *, / and sqrt are exact per element; no
// reduction is reordered). At GRU n = 100, B = 1 the scalar Adam loop was 13% of a training step.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cellc::runtime::kernels {

// p -= lr * (g * scale), where frozen is null or frozen[i] == 0.
void sgd(double* p, const double* g, size_t n, double lr, double scale, const uint8_t* frozen);

// Adam as optax: m = (1 - b1) g + b1 m; v = (1 - b2) g^2 + b2 v;
// p -= lr * (m / c1) / (sqrt(v / c2) + eps), with g = grad * scale; skips frozen elements.
struct AdamCoeffs {
  double lr, scale, b1, b2, c1, c2, eps;
};
void adam(double* p, double* m, double* v, const double* g, size_t n, const AdamCoeffs& k,
          const uint8_t* frozen);

}  // namespace cellc::runtime::kernels
