// Many standard normals at once, fast: the trainer draws the noise of every step (T x B x n) and
// the copy-first task T x B x D inputs per batch, which the one-at-a-time sampler made the
// bottleneck of training. Box-Muller on two 32-bit uniforms from each 64-bit draw. The 32-bit
// uniforms bound |z| below 6.8 (a 1e-11 tail mass, irrelevant for noise and data).
//
// Deterministic for a given stream state, and the same bits on any number of threads: the 64-bit
// draws are taken from the stream in order on the calling thread, and only the math (log, sqrt,
// sin, cos: scalar glibc calls, the bulk of the time) is shared between threads (blas/WorkPool.h,
// cellc::threads()) once a call holds enough of it.
#pragma once

#include <cstddef>
#include <random>
#include <span>

namespace cellc::runtime {

void fillNormals(std::mt19937_64& rng, float* out, size_t n);
void fillNormals(std::mt19937_64& rng, double* out, size_t n);

// n normals into each of outs, in turn: the same values as one fillNormals(rng, out, n) per array
// (each array takes ceil(n / 2) draws), computed in one job that the threads share.
void fillNormals(std::mt19937_64& rng, std::span<float* const> outs, size_t n);
void fillNormals(std::mt19937_64& rng, std::span<double* const> outs, size_t n);

}  // namespace cellc::runtime
