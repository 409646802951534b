#include "train/UpdateKernels.h"

#include <cmath>

namespace cellc::runtime::kernels {

void sgd(double* p, const double* g, size_t n, double lr, double scale, const uint8_t* frozen) {
  if (!frozen) {
    for (size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] * scale);
    return;
  }
  for (size_t i = 0; i < n; ++i)
    if (!frozen[i]) p[i] -= lr * (g[i] * scale);
}

namespace {
inline void adamAt(double* p, double* m, double* v, const double* g, size_t i, const AdamCoeffs& k) {
  const double gi = g[i] * k.scale;
  m[i] = (1 - k.b1) * gi + k.b1 * m[i];
  v[i] = (1 - k.b2) * (gi * gi) + k.b2 * v[i];
  const double mhat = m[i] / k.c1, vhat = v[i] / k.c2;
  p[i] -= k.lr * (mhat / (std::sqrt(vhat) + k.eps));
}
}  // namespace

void adam(double* p, double* m, double* v, const double* g, size_t n, const AdamCoeffs& k,
          const uint8_t* frozen) {
  if (!frozen) {
    for (size_t i = 0; i < n; ++i) adamAt(p, m, v, g, i, k);  // branch-free: vectorizes
    return;
  }
  for (size_t i = 0; i < n; ++i)
    if (!frozen[i]) adamAt(p, m, v, g, i, k);
}

}  // namespace cellc::runtime::kernels
