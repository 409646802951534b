// Initial values of a cell's params, from each param's initializer chain (`param W[n, n] ~
// gamma(2, 0.05) | spectral_radius(1.5, W_rec)`; ir::Slot::init holds it with numeric args).
//
// Fans. A matrix param [m, n] is used as W @ x, x of size n: fan_in = n, fan_out = m. A vector
// [n] has fan_in = fan_out = n (as JAX's compute_fans). Initializers, arguments in declared order:
//   zeros(), ones(), fill(value)
//   uniform(lo, hi)          U[lo, hi)
//   normal(mean, std)
//   glorot(gain = 1)         Glorot/Xavier uniform: U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))
//   lecun_normal()           as JAX/Flax: std sqrt(1 / fan_in) / 0.87962566103423978 times a
//                            standard normal truncated to [-2, 2] (resampled outside), so that the
//                            variance is exactly 1 / fan_in
//   orthogonal(gain = 1)     as JAX/Flax: QR of a standard normal matrix, columns signed by
//                            diag(R); [m, n] has orthonormal columns if m >= n, rows otherwise
//   gamma(k, theta)          shape k, scale theta (mean k theta)
// and the transform
//   spectral_radius(radius, of)   rescales the raw param so that the spectral radius (largest
//                            |eigenvalue|) of the effective matrix `of` (StepIR::effective, computed
//                            from the params by the reference evaluator; the raw matrix itself when
//                            `of` names the param) equals radius.
// A param without an initializer is zeros.
//
// Order. Base initializers run first, param by param in layout order, each filling its elements
// in row-major order from the one engine; then the transforms, in layout order. Transforms draw
// no random numbers, and an effective matrix may read other params (all initialized by then).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pipeline/Lower.h"

namespace cellc::runtime {

// Fills params (resized to layout.paramSize) from each param's init chain. Throws
// std::runtime_error naming the param when an initializer is unknown or misses an argument, or
// when spectral_radius cannot be met: a zero or non-finite radius to rescale, an effective matrix
// that reads something else than params, or a rescale that does not converge within 20 iterations
// (the effective matrix is not positively homogeneous in the raw one and the target is out of reach).
void initParams(const StepIR& ir, std::vector<double>& params, std::mt19937_64& rng);

// One line per param, for logs: "W_rec_raw [100, 100] ~ gamma(2, 0.05) | spectral_radius(1.5, W_rec)";
// "b [4] ~ zeros() (no initializer)" for a param without one.
std::vector<std::string> initSummary(const StepIR& ir);

// The matrix spectral_radius measures for param p ([n, n] row-major): the effective matrix
// StepIR::effective[p] evaluated from params, or the raw param when its chain names none or
// names the param itself. Throws std::runtime_error when the effective matrix reads anything
// but params, std::invalid_argument when params does not have layout.paramSize elements.
std::vector<double> effectiveMatrix(const StepIR& ir, const std::vector<double>& params, size_t p);

// The largest |eigenvalue| of the row-major n x n matrix a (LAPACK dgeev, no eigenvectors).
double spectralRadius(const double* a, int64_t n);

// Whether graph node `node` is positively homogeneous of degree 1 in param `slot`, as its ops
// show: f(c W) = c f(W) for every c > 0 (relu(W * mask) * signs is; tanh(W) and W + I are not).
// spectral_radius then rescales once without evaluating the effective matrix a second time.
// False also where the ops alone cannot tell; initParams then checks numerically.
bool scalesWithRaw(const ir::Graph& g, ir::NodeId node, int64_t slot);

}  // namespace cellc::runtime
