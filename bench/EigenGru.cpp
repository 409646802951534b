#include "EigenGru.h"

#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <string>

namespace cellc::bench {

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<Mat>;
using CMap = Eigen::Map<const Mat>;
using RowVecMap = Eigen::Map<Eigen::RowVectorXf>;
using CRowVecMap = Eigen::Map<const Eigen::RowVectorXf>;

// The gate blocks of a [B, 3n] product, in the order of the stacked matrices.
enum Gate { kZ = 0, kR = 1, kH = 2 };
const char* const kWh[3] = {"W_zh", "W_rh", "W_hh"};
const char* const kWx[3] = {"W_zx", "W_rx", "W_hx"};
const char* const kB[3] = {"b_z", "b_r", "b_h"};

const ir::Slot& slot(const ir::Layout& layout, const char* name, int64_t size) {
  const ir::Slot* s = layout.find(ir::Role::Param, name);
  if (!s) throw std::runtime_error(std::string("EigenGru: the cell has no param ") + name);
  if (s->size != size)
    throw std::runtime_error(std::string("EigenGru: param ") + name + " has " +
                             std::to_string(s->size) + " elements, expected " +
                             std::to_string(size));
  return *s;
}

}  // namespace

EigenGru::EigenGru(int64_t n, int64_t nIn, int64_t nOut) : n_(n), nIn_(nIn), nOut_(nOut) {}

void EigenGru::reserve(int64_t batch) {
  size_t need = static_cast<size_t>(batch * 3 * n_);
  if (gh_.size() < need) {
    gh_.resize(need);
    gx_.resize(need);
    dhn_.resize(batch * n_);
  }
}

void EigenGru::forward(const float* params, const float* h, const float* x, float* hNext, float* y,
                       float* tape, int64_t batch) {
  const int64_t n = n_, nIn = nIn_, nOut = nOut_, B = batch;
  reserve(B);
  const float* p = params;
  CMap Wh(p, 3 * n, n);
  CMap Wx(p += 3 * n * n, 3 * n, nIn);
  CRowVecMap b(p += 3 * n * nIn, 3 * n);
  CMap Wout(p += 3 * n, nOut, n);
  CRowVecMap bout(p += nOut * n, nOut);
  CMap H(h, B, n), X(x, B, nIn);
  Map GH(gh_.data(), B, 3 * n), GX(gx_.data(), B, 3 * n);

  // The two GEMMs: every gate's recurrent and input products at once; the biases start the input
  // GEMM's accumulator. (Row by row: a `.rowwise() + b` broadcast is a Replicate expression, which
  // Eigen 3.4 does not vectorize, and it would make every gate expression below scalar.)
  GH.noalias() = H * Wh.transpose();
  for (int64_t i = 0; i < B; ++i) GX.row(i) = b;
  GX.noalias() += X * Wx.transpose();

  Map Z(tape, B, n), R(tape + B * n, B, n), C(tape + 2 * B * n, B, n), HH(tape + 3 * B * n, B, n);
  Z.array() = (GH.middleCols(kZ * n, n) + GX.middleCols(kZ * n, n)).array().logistic();
  R.array() = (GH.middleCols(kR * n, n) + GX.middleCols(kR * n, n)).array().logistic();
  HH = GH.middleCols(kH * n, n);
  C.array() = (R.array() * HH.array() + GX.middleCols(kH * n, n).array()).tanh();
  Map HN(hNext, B, n);
  HN.array() = Z.array() * C.array() + (1.f - Z.array()) * H.array();

  if (nOut == 0) {
    Map(y, B, n) = HN;
    return;
  }
  Map(tape + 4 * B * n, B, n) = HN;  // the readout's weight gradient needs h'
  Map Y(y, B, nOut);
  for (int64_t i = 0; i < B; ++i) Y.row(i) = bout;
  Y.noalias() += HN * Wout.transpose();
}

void EigenGru::backward(const float* params, const float* h, const float* x, const float* tape,
                        const float* dhNext, const float* dy, float* dh, float* dx, float* dParams,
                        int64_t batch) {
  const int64_t n = n_, nIn = nIn_, nOut = nOut_, B = batch;
  reserve(B);
  CMap Wh(params, 3 * n, n);
  CMap Wx(params + 3 * n * n, 3 * n, nIn);
  CMap Wout(params + 3 * n * n + 3 * n * nIn + 3 * n, nOut, n);
  CMap H(h, B, n), X(x, B, nIn);
  CMap Z(tape, B, n), R(tape + B * n, B, n), C(tape + 2 * B * n, B, n), HH(tape + 3 * B * n, B, n);

  float* dp = dParams;
  Map dWh(dp, 3 * n, n);
  Map dWx(dp += 3 * n * n, 3 * n, nIn);
  RowVecMap db(dp += 3 * n * nIn, 3 * n);
  Map dWout(dp += 3 * n, nOut, n);
  RowVecMap dbout(dp += nOut * n, nOut);

  // DA: adjoints of the three pre-activations (the input GEMM's and the biases' adjoint);
  // DG: adjoint of h Wh^T (the same for z and r; r * dc for the candidate's W_hh h).
  Map DA(gx_.data(), B, 3 * n), DG(gh_.data(), B, 3 * n);
  Map DH(dh, B, n), DX(dx, B, nIn);
  auto gates = [&](const auto& dOut) {  // dOut: the adjoint of h', an array expression
    DA.middleCols(kZ * n, n).array() =
        dOut * (C.array() - H.array()) * Z.array() * (1.f - Z.array());
    DA.middleCols(kH * n, n).array() = dOut * Z.array() * (1.f - C.array().square());
    DA.middleCols(kR * n, n).array() =
        DA.middleCols(kH * n, n).array() * HH.array() * R.array() * (1.f - R.array());
    DG.leftCols(2 * n) = DA.leftCols(2 * n);
    DG.middleCols(kH * n, n).array() = DA.middleCols(kH * n, n).array() * R.array();
    DH.array() = dOut * (1.f - Z.array());
  };
  if (nOut == 0) {
    gates(CMap(dhNext, B, n).array() + CMap(dy, B, n).array());  // y = h': the adjoints add
  } else {
    // The readout: dh' = dh'_next + dy W_out, and its param gradients.
    CMap HN(tape + 4 * B * n, B, n), DY(dy, B, nOut);
    Map DHN(dhn_.data(), B, n);
    DHN = CMap(dhNext, B, n);
    DHN.noalias() += DY * Wout;
    dWout.noalias() += DY.transpose() * HN;
    dbout += DY.colwise().sum();
    gates(DHN.array());
  }

  // Input adjoints: two GEMMs.
  DH.noalias() += DG * Wh;
  DX.noalias() = DA * Wx;

  // Param gradients, summed over the batch: two GEMMs and a column sum.
  dWh.noalias() += DG.transpose() * H;
  dWx.noalias() += DA.transpose() * X;
  db += DA.colwise().sum();
}

Buffer EigenGru::fromCellLayout(const ir::Layout& layout,
                                            const float* cellParams) const {
  const int64_t n = n_, nIn = nIn_, nOut = nOut_;
  Buffer p(paramSize());
  const int64_t oWx = 3 * n * n, oB = oWx + 3 * n * nIn, oWout = oB + 3 * n, oBout = oWout + nOut * n;
  for (int g = 0; g < 3; ++g) {
    std::copy_n(cellParams + slot(layout, kWh[g], n * n).offset, n * n, p.begin() + g * n * n);
    std::copy_n(cellParams + slot(layout, kWx[g], n * nIn).offset, n * nIn,
                p.begin() + oWx + g * n * nIn);
    std::copy_n(cellParams + slot(layout, kB[g], n).offset, n, p.begin() + oB + g * n);
  }
  if (nOut) {
    std::copy_n(cellParams + slot(layout, "W_out", nOut * n).offset, nOut * n, p.begin() + oWout);
    std::copy_n(cellParams + slot(layout, "b_out", nOut).offset, nOut, p.begin() + oBout);
  }
  return p;
}

Buffer EigenGru::toCellLayout(const ir::Layout& layout, const float* params) const {
  const int64_t n = n_, nIn = nIn_, nOut = nOut_;
  Buffer p(layout.paramSize, 0.f);
  const int64_t oWx = 3 * n * n, oB = oWx + 3 * n * nIn, oWout = oB + 3 * n, oBout = oWout + nOut * n;
  for (int g = 0; g < 3; ++g) {
    std::copy_n(params + g * n * n, n * n, p.begin() + slot(layout, kWh[g], n * n).offset);
    std::copy_n(params + oWx + g * n * nIn, n * nIn,
                p.begin() + slot(layout, kWx[g], n * nIn).offset);
    std::copy_n(params + oB + g * n, n, p.begin() + slot(layout, kB[g], n).offset);
  }
  if (nOut) {
    std::copy_n(params + oWout, nOut * n, p.begin() + slot(layout, "W_out", nOut * n).offset);
    std::copy_n(params + oBout, nOut, p.begin() + slot(layout, "b_out", nOut).offset);
  }
  return p;
}

}  // namespace cellc::bench
