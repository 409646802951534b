// The matrix-product kernel that generated code calls: C = op(A) op(B) + beta C on row-major
// buffers with leading dimensions, through Eigen's GEMM/GEMV. Kept out of the LLVM translation
// units; the JIT resolves these symbols to this process. Built with OpenMP, Eigen splits large
// products between threads (jit/Threads.h).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "jit/SplitPolicy.h"
#include "jit/Threads.h"

namespace {

template <class T>
void gemm(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  if (M == 0 || N == 0) return;
  MMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero();
    return;
  }
  // Threads only for large products: a fork and join costs microseconds on an idle machine and
  // milliseconds on a busy one, more than a small product takes. The count is this thread's
  // OpenMP setting, which Eigen reads (it never gets a global one: jit/Threads.h).
  omp_set_num_threads(M * N * K >= cellc::kParallelWork ? cellc::threads() : 1);
  CMap a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  CMap b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  if (beta == T(0)) {
    if (ta && tb) c.noalias() = a.transpose() * b.transpose();
    else if (ta) c.noalias() = a.transpose() * b;
    else if (tb) c.noalias() = a * b.transpose();
    else c.noalias() = a * b;
  } else {
    if (ta && tb) c.noalias() += a.transpose() * b.transpose();
    else if (ta) c.noalias() += a.transpose() * b;
    else if (tb) c.noalias() += a * b.transpose();
    else c.noalias() += a * b;
  }
}

}  // namespace

namespace cellc {

namespace {
std::atomic<int> gThreads{0};  // 0: not set, all cores
}
int hardwareThreads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }
void setThreads(int n) { gThreads = n > 0 ? n : hardwareThreads(); }
int threads() {
  int n = gThreads;
  return n > 0 ? n : hardwareThreads();
}

}  // namespace cellc

namespace {

// A batched kernel of fewer elements (batch x elements per batch element) runs on one thread: a
// fork and join costs microseconds on an idle machine and far more on a busy one.
constexpr int64_t kParallelElements = int64_t{1} << 18;

}  // namespace

extern "C" {
// A kernel whose batch elements are independent (each writes only its own rows), outlined by the
// code generator as fn(bufs, batch, b0, b1) over batch elements [b0, b1): split into one
// contiguous range per thread. Every element is still computed by one thread in the same order,
// so results do not depend on the thread count.
// Whether splitting pays is measured per kernel (jit/SplitPolicy.h): on a busy machine it
// does not.
void cellc_parallel_batch(void (*fn)(void* const*, int64_t, int64_t, int64_t), void* const* bufs,
                          int64_t batch, int64_t elements) {
  const int64_t nt = std::min<int64_t>(elements >= kParallelElements ? cellc::threads() : 1, batch);
  if (nt <= 1) {
    fn(bufs, batch, 0, batch);
    return;
  }
  static std::mutex mutex;
  static std::unordered_map<void*, cellc::SplitPolicy> policies;
  cellc::SplitPolicy* policy;
  bool split;
  {
    std::lock_guard<std::mutex> lock(mutex);
    policy = &policies[reinterpret_cast<void*>(fn)];  // node-based: the address stays valid
    split = policy->split();
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (split) {
#pragma omp parallel for num_threads(static_cast<int>(nt)) schedule(static, 1)
    for (int64_t i = 0; i < nt; ++i) fn(bufs, batch, batch * i / nt, batch * (i + 1) / nt);
  } else {
    fn(bufs, batch, 0, batch);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(mutex);
  policy->record(split, seconds, elements);
}

// beta is 0 (overwrite) or 1 (accumulate): that is all the code generator emits.
void cellc_gemm_f64(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const double* A,
                    int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
void cellc_gemm_f32(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
}
