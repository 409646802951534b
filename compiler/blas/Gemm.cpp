// The matrix-product kernel that generated code calls: C = op(A) op(B) + beta C on row-major
// buffers with leading dimensions, through Eigen's GEMM/GEMV. Kept out of the LLVM translation
// units; the JIT resolves these symbols to this process. Large products are split between
// threads by hand (blas/WorkPool.h), each share one Eigen product on one thread (blas/Threads.h).
#include <malloc.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blas/GemmEntries.h"
#include "blas/PackedGemm.h"
#include "blas/SplitPolicy.h"
#include "blas/Threads.h"
#include "blas/WorkPool.h"

namespace {

template <class T>
void gemm(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// A product of the segment stage (a weight gradient over a BPTT segment, K = steps x B, through
// cellc_gemm_segment_*) runs in blocks of kContractionBlock rows of K, one GEMM call each: Eigen's
// own blocking of a long K runs 3-4x below peak for M = N = 64..100 and at some sizes
// (M = N = K = 256) (measured, one thread). Between threads it is split like any large product
// (gemm below): each thread forms its own share of C over all the blocks of K, so the threads join
// once per product, not once per block (Eigen's own threading, which synchronized at every block,
// ran 7x slower than one thread on a busy 2-core machine). Every element is summed by one thread
// in an order fixed by the split and the blocks, so results depend only on the thread count.
constexpr int64_t kContractionBlock = 128;

// One thread's share of C = op(A) op(B): C's rows [lo, hi) (rows of op(A) are A's columns when
// ta), or its columns [lo, hi) (columns of op(B) are B's rows when tb).
template <class T>
struct Share {
  int64_t m, n;
  const T* a;
  const T* b;
  T* c;
};
template <class T>
Share<T> shareOf(bool rows, int64_t lo, int64_t hi, int32_t ta, int32_t tb, int64_t M, int64_t N,
                 const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  if (rows) return {hi - lo, N, A + (ta ? lo : lo * lda), B, C + lo * ldc};
  return {M, hi - lo, A, B + (tb ? lo * ldb : lo), C + lo};
}

// A product of at least kParallelWork multiply-adds, on more than one thread, is cut into chunks
// of about kChunkWork multiply-adds (at least 2, at most kMaxChunks) that the threads share
// (blas/WorkPool.h). The cut depends on the product's shape alone, not on the thread count:
// results are the same on any number of threads above one.
constexpr int64_t kChunkWork = int64_t{1} << 20;
constexpr int64_t kMaxChunks = 8;
int64_t chunksFor(int64_t work, int64_t len) {
  if (cellc::threads() <= 1 || work < cellc::kParallelWork || cellc::inChunk()) return 1;
  return std::max<int64_t>(1, std::min({std::max<int64_t>(2, work / kChunkWork), kMaxChunks, len / 16}));
}

// Runs f(lo, hi) over [0, len) cut into `parts` contiguous shares, shared between the threads.
// Interior boundaries fall on multiples of 16 elements (whole vectors) when len allows.
template <class F>
void forShares(int64_t parts, int64_t len, F&& f) {
  if (parts <= 1) {
    f(int64_t{0}, len);
    return;
  }
  auto edge = [&](int64_t i) {
    const int64_t e = len * i / parts;
    return i == parts || len < 16 * parts ? e : e / 16 * 16;
  };
  cellc::forChunks(parts, cellc::threads(), [&](int64_t i) { f(edge(i), edge(i + 1)); });
}

template <class T>
void segmentGemm(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0 || K == 0) {
    gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Shared between threads when one block is worth it, as a product of that size (K = steps x B
  // blocks are no more worth a split than the per-step products they replace).
  const bool rows = M >= N;  // split the longer side of C
  const int64_t len = rows ? M : N;
  forShares(chunksFor(M * N * std::min(K, kContractionBlock), len), len, [&](int64_t lo, int64_t hi) {
    const Share<T> s = shareOf(rows, lo, hi, ta, tb, M, N, A, lda, B, ldb, C, ldc);
    for (int64_t k0 = 0; k0 < K; k0 += kContractionBlock) {
      const int64_t kk = std::min(kContractionBlock, K - k0);
      gemm(ta, tb, s.m, s.n, kk, s.a + (ta ? k0 * lda : k0), lda, s.b + (tb ? k0 : k0 * ldb), ldb,
           k0 == 0 ? beta : T(1), s.c, ldc);
    }
  });
}

// Eigen allocates its packing workspace (up to a few MB) at every product, on every thread, and a
// training step allocates its gradients (tens of MB at n = 1024). glibc serves blocks above its
// mmap threshold (128 KB, rising only as such blocks are freed) with fresh pages and returns them on
// free, and trims the heap's free top: every product then pays page faults. At GRU n = 1024, B = 16
// that halved the speed (4.2 against 2.2-2.4 steps/s with the settings below, alternating runs).
// So blocks up to 32 MB (glibc's maximum threshold) come from the heap and up to 256 MB of free
// heap is kept. Once per process, before its first product; not when the user tuned malloc.
bool tuneAllocator() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables && std::strstr(tunables, "glibc.malloc.")) || std::getenv("MALLOC_MMAP_THRESHOLD_") ||
      std::getenv("MALLOC_TRIM_THRESHOLD_"))
    return false;
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
}

template <class T>
void gemm(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  [[maybe_unused]] static const bool tuned = tuneAllocator();
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
  if (M == 0 || N == 0) return;
  MMap c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0) {
    if (beta == T(0)) c.setZero();
    return;
  }
  // Threads only for large products (blas/Threads.h): handing out chunks, and waking a helper
  // that went to sleep, cost more than a small product takes.
  // Split by hand between threads, along C's longer side (its rows on a tie), every share a
  // one-thread product. Eigen's own split does badly on a step's products, which have a short
  // side (the batch) and a long one (the width; C = h W^T is B x n): two threads ran 1.1-1.4x one
  // at B = 64, n = 256..1024, and slower than one at B = 16, n = 1024. Split by hand they run
  // 1.6-1.9x. On the per-step weight gradients (n x n over K = B) rows split by hand ran
  // 1.04-1.4x Eigen's split (Zen 4, n = 256..1024, B = 16..64).
  const bool rows = M >= N;
  const int64_t len = rows ? M : N;
  if (const int64_t parts = chunksFor(M * N * K, len); parts > 1) {
    forShares(parts, len, [&](int64_t lo, int64_t hi) {
      const Share<T> s = shareOf(rows, lo, hi, ta, tb, M, N, A, lda, B, ldb, C, ldc);
      gemm(ta, tb, s.m, s.n, K, s.a, lda, s.b, ldb, beta, s.c, ldc);  // inside a chunk: one share
    });
    return;
  }
  // Eigen is built without OpenMP here: every Eigen product runs on this thread.
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

// C = X op(W) + beta C with op(W)'s panels packed ahead of time (blas/PackedGemm.h), W the right
// operand B of gemm. Below kPackedMinRows rows of X (B = 1 is a matrix-vector product, which packs
// nothing), or when the region is unusable, it is the plain product. X is packed once on this
// thread; the threads share W's row blocks, each the whole contraction for its columns of C, so
// every element is summed in an order fixed by the blocking alone.
constexpr int64_t kPackedMinRows = 4;

template <class T>
void packedGemm(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* region) {
  const T* panels = ta || M < kPackedMinRows || K == 0 ? nullptr : cellc::packedPanels(region);
  if (!panels) {
    gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  [[maybe_unused]] static const bool tuned = tuneAllocator();
  static thread_local std::vector<T, Eigen::aligned_allocator<T>> rhs;
  rhs.resize(static_cast<size_t>(cellc::packedRhsSize(M, K)));
  cellc::packRhs(M, K, A, lda, rhs.data());
  const T* x = rhs.data();  // the helpers read this thread's buffer (a lambda cannot capture it)
  const int64_t blocks = (N + cellc::kPackedRows - 1) / cellc::kPackedRows;
  const int64_t parts = std::min(chunksFor(M * N * K, N), blocks);
  auto share = [&](int64_t i) {
    const int64_t lo = blocks * i / parts * cellc::kPackedRows;
    const int64_t hi = std::min(N, blocks * (i + 1) / parts * cellc::kPackedRows);
    if (beta == T(0))
      for (int64_t r = 0; r < M; ++r) std::fill(C + r * ldc + lo, C + r * ldc + hi, T(0));
    cellc::packedProduct(lo, hi, M, N, K, panels, x, C, ldc);
  };
  if (parts <= 1) share(0);
  else cellc::forChunks(parts, cellc::threads(), share);
}

}  // namespace

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
// Whether splitting pays is measured per kernel (blas/SplitPolicy.h): on a busy machine it
// does not.
void cellc_parallel_batch(void (*fn)(void* const*, int64_t, int64_t, int64_t), void* const* bufs,
                          int64_t batch, int64_t elements) {
  const int64_t nt = std::min<int64_t>(elements >= kParallelElements ? cellc::threads() : 1, batch);
  if (nt <= 1 || cellc::inChunk()) {  // inside a chunk (a batch shard): this thread's share
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
    // Twice as many ranges as threads: a thread that starts late leaves less to the others.
    const int64_t parts = std::min<int64_t>(batch, 2 * nt);
    cellc::forChunks(parts, static_cast<int>(nt),
                     [&](int64_t i) { fn(bufs, batch, batch * i / parts, batch * (i + 1) / parts); });
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
// A step's product with a sequence-invariant W packed by the prologue at `packed`
// (codegen::PackedOperand); the arguments are those of the plain product, its fallback.
void cellc_gemm_packed_f64(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const double* A,
                           int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                           int64_t ldc, const double* packed) {
  packedGemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, packed);
}
void cellc_gemm_packed_f32(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const float* A,
                           int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                           int64_t ldc, const float* packed) {
  packedGemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, packed);
}
// The segment stage's products (a weight gradient over a BPTT segment's rows): in blocks of K,
// split between threads by hand.
void cellc_gemm_segment_f64(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const double* A,
                            int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  segmentGemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
void cellc_gemm_segment_f32(int32_t ta, int32_t tb, int64_t M, int64_t N, int64_t K, const float* A,
                            int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  segmentGemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
}
