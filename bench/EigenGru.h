// A hand-written GRU step in float32 with Eigen 3.4: the baseline the generated code of
// cells/gru.cell has to beat. Same math and parameters as the cell:
//   z  = sigmoid(W_zh h + W_zx x + b_z)
//   r  = sigmoid(W_rh h + W_rx x + b_r)
//   c  = tanh(r * (W_hh h) + W_hx x + b_h)
//   h' = z * c + (1 - z) * h
//   y  = W_out h' + b_out    (the linear readout of the cell; with nOut = 0, no readout: y = h')
// written the way people write it by hand: batch-major [B, n] row-major matrices, the three
// recurrent matrices stacked into one [3n, n] GEMM and the three input matrices into one
// [3n, n_in] GEMM, the elementwise work as Eigen array expressions.
//
// Params (one flat buffer): Wh [3n, n] (rows: W_zh; W_rh; W_hh), then Wx [3n, n_in] (W_zx; W_rx;
// W_hx), then b [3n] (b_z; b_r; b_h), then W_out [n_out, n] and b_out [n_out]. The same contract
// as StepKernel: the backward gets the adjoints of h' and of y, overwrites dh and dx and
// ACCUMULATES the param gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "ir/Step.h"

namespace cellc::bench {

// Every buffer of the benchmarks, generated code and Eigen alike, starts on a cache line (64 bytes,
// one AVX-512 vector): with malloc's 16-byte alignment, the Eigen GRU's timings were bimodal from
// one process to the next (n = 32, B = 64: 21 or 30 us per step).
template <class T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const { return true; }
};
using Buffer = std::vector<float, CacheAligned<float>>;

class EigenGru {
 public:
  // nOut = 0: no readout, y = h' ([B, n]); else y = W_out h' + b_out ([B, nOut]).
  EigenGru(int64_t n, int64_t nIn, int64_t nOut);

  int64_t n() const { return n_; }
  int64_t nIn() const { return nIn_; }
  int64_t nOut() const { return nOut_; }
  int64_t outputSize() const { return nOut_ ? nOut_ : n_; }  // per batch element
  int64_t paramSize() const {
    return 3 * n_ * n_ + 3 * n_ * nIn_ + 3 * n_ + nOut_ * n_ + nOut_;
  }
  // The forward saves z, r, c and W_hh h, each [B, n], and h' when there is a readout.
  int64_t tapeSize(int64_t batch) const { return (nOut_ ? 5 : 4) * batch * n_; }

  void forward(const float* params, const float* h, const float* x, float* hNext, float* y,
               float* tape, int64_t batch);
  void backward(const float* params, const float* h, const float* x, const float* tape,
                const float* dhNext, const float* dy, float* dh, float* dx, float* dParams,
                int64_t batch);

  // Conversions between this stacked param layout and the one of cells/gru.cell (slots W_zh,
  // W_zx, b_z, ..., W_out, b_out at their Layout offsets). Used to compare the two.
  Buffer fromCellLayout(const ir::Layout& layout, const float* cellParams) const;
  Buffer toCellLayout(const ir::Layout& layout, const float* params) const;

 private:
  void reserve(int64_t batch);

  int64_t n_, nIn_, nOut_;
  // Workspace, [B, 3n] each, grown on demand and kept between calls.
  Buffer gh_;  // forward: h Wh^T;            backward: d(Wh h) (z, r, hh blocks)
  Buffer gx_;  // forward: x Wx^T + b;        backward: d(pre-activations)
  Buffer dhn_;  // backward, with a readout: the adjoint of h', [B, n]
};

}  // namespace cellc::bench
