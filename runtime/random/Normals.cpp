#include "random/Normals.h"

#include <cmath>
#include <numbers>
#include <vector>

namespace cellc::runtime {

namespace {

template <class T>
void fill(std::mt19937_64& rng, T* out, size_t n) {
  constexpr size_t kChunk = 1024;
  float u1[kChunk / 2], u2[kChunk / 2], r[kChunk / 2], c[kChunk / 2], s[kChunk / 2];
  for (size_t done = 0; done < n; done += kChunk) {
    const size_t pairs = (std::min(kChunk, n - done) + 1) / 2;
    for (size_t i = 0; i < pairs; ++i) {
      uint64_t x = rng();
      u1[i] = (static_cast<float>(x >> 32) + 0.5f) * 0x1p-32f;  // in (0, 1): log is finite
      u2[i] = (static_cast<float>(x & 0xffffffffu) + 0.5f) * 0x1p-32f;
    }
    // Straight-line math over arrays: vectorized by the compiler.
    for (size_t i = 0; i < pairs; ++i) {
      r[i] = std::sqrt(-2.0f * std::log(u1[i]));
      float a = 2.0f * std::numbers::pi_v<float> * u2[i];
      c[i] = std::cos(a);
      s[i] = std::sin(a);
    }
    T* o = out + done;
    const size_t m = std::min(kChunk, n - done);
    for (size_t i = 0; i < pairs; ++i) {
      o[2 * i] = static_cast<T>(r[i] * c[i]);
      if (2 * i + 1 < m) o[2 * i + 1] = static_cast<T>(r[i] * s[i]);
    }
  }
}

}  // namespace

void fillNormals(std::mt19937_64& rng, float* out, size_t n) { fill(rng, out, n); }
void fillNormals(std::mt19937_64& rng, double* out, size_t n) { fill(rng, out, n); }

}  // namespace cellc::runtime
