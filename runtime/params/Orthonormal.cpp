#include "params/Orthonormal.h"

#include <Eigen/Dense>
#include <stdexcept>

namespace cellc::runtime {

void orthonormalFactor(const double* a, int64_t rows, int64_t cols, double* q) {
  if (rows < cols) throw std::invalid_argument("orthonormalFactor: needs rows >= cols");
  using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(Eigen::Map<const RowMatrix>(a, rows, cols));
  Eigen::MatrixXd f = qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
  for (int64_t j = 0; j < cols; ++j)
    if (qr.matrixQR()(j, j) < 0) f.col(j) *= -1;
  Eigen::Map<RowMatrix>(q, rows, cols) = f;
}

}  // namespace cellc::runtime
