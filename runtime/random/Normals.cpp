#include "random/Normals.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "blas/Threads.h"
#include "blas/WorkPool.h"
#include "random/Mt64Block.h"

namespace cellc::runtime {

namespace {

constexpr size_t kChunk = 1024;  // normals per chunk of work (kChunk / 2 draws)
// Below this many normals in a call, one thread: a job's hand-over costs a few microseconds, about
// the math of 1,000 normals.
constexpr size_t kParallelNormals = size_t{1} << 14;

// out[0, m) from draws[0, (m + 1) / 2): the pair (r cos a, r sin a) from each draw. Called with
// m <= kChunk; the result depends on the draws alone (this file is built with -ffast-math, but the
// loops and the calls are the same whichever thread runs them).
template <class T>
void boxMuller(const uint64_t* draws, T* out, size_t m) {
  float u1[kChunk / 2], u2[kChunk / 2], r[kChunk / 2], c[kChunk / 2], s[kChunk / 2];
  const size_t pairs = (m + 1) / 2;
  for (size_t i = 0; i < pairs; ++i) {
    const uint64_t x = draws[i];
    u1[i] = (static_cast<float>(x >> 32) + 0.5f) * 0x1p-32f;  // in (0, 1): log is finite
    u2[i] = (static_cast<float>(x & 0xffffffffu) + 0.5f) * 0x1p-32f;
  }
  for (size_t i = 0; i < pairs; ++i) {
    r[i] = std::sqrt(-2.0f * std::log(u1[i]));
    float a = 2.0f * std::numbers::pi_v<float> * u2[i];
    c[i] = std::cos(a);
    s[i] = std::sin(a);
  }
  for (size_t i = 0; i < pairs; ++i) {
    out[2 * i] = static_cast<T>(r[i] * c[i]);
    if (2 * i + 1 < m) out[2 * i + 1] = static_cast<T>(r[i] * s[i]);
  }
}

template <class T>
void fill(std::mt19937_64& rng, std::span<T* const> outs, size_t n) {
  // The draws, in stream order: each array takes ceil(n / 2), as if filled on its own.
  const size_t perArray = (n + 1) / 2;
  thread_local std::vector<uint64_t> draws;
  draws.resize(outs.size() * perArray);
  drawBlock(rng, draws.data(), draws.size());
  const size_t chunksPerArray = (n + kChunk - 1) / kChunk;
  const int64_t chunks = static_cast<int64_t>(outs.size() * chunksPerArray);
  const int threads = outs.size() * n >= kParallelNormals ? cellc::threads() : 1;
  const uint64_t* d = draws.data();
  forChunks(chunks, threads, [&](int64_t c) {
    const size_t a = static_cast<size_t>(c) / chunksPerArray;
    const size_t first = static_cast<size_t>(c) % chunksPerArray * kChunk;
    boxMuller(d + a * perArray + first / 2, outs[a] + first, std::min(kChunk, n - first));
  });
}

}  // namespace

void fillNormals(std::mt19937_64& rng, float* out, size_t n) { fill<float>(rng, {&out, 1}, n); }
void fillNormals(std::mt19937_64& rng, double* out, size_t n) { fill<double>(rng, {&out, 1}, n); }
void fillNormals(std::mt19937_64& rng, std::span<float* const> outs, size_t n) { fill(rng, outs, n); }
void fillNormals(std::mt19937_64& rng, std::span<double* const> outs, size_t n) { fill(rng, outs, n); }

}  // namespace cellc::runtime
