// Eigen's GEMM building blocks (packing and the gebp micro-kernel, Eigen/src/Core/products/
// GeneralBlockPanelKernel.h, Eigen 3.4), driven over operands packed ahead of time. The loops are
// those of Eigen's sequential general_matrix_matrix_product, in the column-major view it uses:
// C^T [n, m] = op(W)^T [n, k] X^T [k, m], W the left operand.
#include "blas/PackedGemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

namespace cellc {

namespace {

using Eigen::ColMajor;
using Eigen::RowMajor;
using Eigen::internal::blas_data_mapper;
using Eigen::internal::const_blas_data_mapper;

template <class T>
using Traits = Eigen::internal::gebp_traits<T, T>;

template <class T, int Order>
void packLhs(int64_t n, int64_t k, const T* w, int64_t ld, T* panels) {
  using Mapper = const_blas_data_mapper<T, int64_t, Order>;
  Eigen::internal::gemm_pack_lhs<T, int64_t, Mapper, Traits<T>::mr, Traits<T>::LhsProgress,
                                 typename Traits<T>::LhsPacket4Packing, Order>
      pack;
  const Mapper lhs(w, ld);
  // Block (i2, k2) at i2 k + k2 mc: row blocks one after another, each its depth blocks in order.
  for (int64_t i2 = 0; i2 < n; i2 += kPackedRows) {
    const int64_t mc = std::min(kPackedRows, n - i2);
    for (int64_t k2 = 0; k2 < k; k2 += kPackedDepth)
      pack(panels + i2 * k + k2 * mc, lhs.getSubMapper(i2, k2), std::min(kPackedDepth, k - k2), mc);
  }
}

// Where the panels of a region at `region` start: the first 64-byte boundary after its header.
template <class T>
int64_t panelOffset(const T* region) {
  const auto addr = reinterpret_cast<uintptr_t>(region + 1);
  return 1 + static_cast<int64_t>(((64 - addr % 64) % 64) / sizeof(T));
}

}  // namespace

template <class T>
void packOperand(bool rowMajor, int64_t n, int64_t k, const T* w, int64_t ld, T* region) {
  static_assert(64 / sizeof(T) <= kPackedPad, "the pad holds the header and the alignment");
  const int64_t off = panelOffset(region);
  if (rowMajor) packLhs<T, RowMajor>(n, k, w, ld, region + off);
  else packLhs<T, ColMajor>(n, k, w, ld, region + off);
  region[0] = static_cast<T>(off);  // last: a region is usable once its panels are complete
}

template <class T>
const T* packedPanels(const T* region) {
  const int64_t off = panelOffset(region);
  return region[0] == static_cast<T>(off) ? region + off : nullptr;
}

template <class T>
void packRhs(int64_t m, int64_t k, const T* x, int64_t ldx, T* out) {
  using Mapper = const_blas_data_mapper<T, int64_t, ColMajor>;  // X^T: column j is X's row j
  Eigen::internal::gemm_pack_rhs<T, int64_t, Mapper, Traits<T>::nr, ColMajor> pack;
  const Mapper rhs(x, ldx);
  for (int64_t k2 = 0; k2 < k; k2 += kPackedDepth)
    pack(out + k2 * m, rhs.getSubMapper(k2, 0), std::min(kPackedDepth, k - k2), m);
}

template <class T>
void packedProduct(int64_t lo, int64_t hi, int64_t m, int64_t n, int64_t k, const T* panels,
                   const T* rhs, T* c, int64_t ldc) {
  using Res = blas_data_mapper<T, int64_t, ColMajor, Eigen::Unaligned, 1>;  // C^T: column j is C's row j
  Eigen::internal::gebp_kernel<T, T, int64_t, Res, Traits<T>::mr, Traits<T>::nr, false, false> gebp;
  const Res res(c, ldc);
  for (int64_t i2 = lo; i2 < hi; i2 += kPackedRows) {
    const int64_t mc = std::min(kPackedRows, n - i2);
    for (int64_t k2 = 0; k2 < k; k2 += kPackedDepth)
      gebp(res.getSubMapper(i2, 0), panels + i2 * k + k2 * mc, rhs + k2 * m, mc,
           std::min(kPackedDepth, k - k2), m, T(1));
  }
}

template void packOperand(bool, int64_t, int64_t, const float*, int64_t, float*);
template void packOperand(bool, int64_t, int64_t, const double*, int64_t, double*);
template const float* packedPanels(const float*);
template const double* packedPanels(const double*);
template void packRhs(int64_t, int64_t, const float*, int64_t, float*);
template void packRhs(int64_t, int64_t, const double*, int64_t, double*);
template void packedProduct(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                            float*, int64_t);
template void packedProduct(int64_t, int64_t, int64_t, int64_t, int64_t, const double*, const double*,
                            double*, int64_t);

}  // namespace cellc
