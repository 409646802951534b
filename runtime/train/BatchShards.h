// Cutting a batch into shards of consecutive trials, and putting shards' results back together,
// for BPTT's batch sharding (train/Bptt.h). Batched buffers follow the Layout (ir/Step.h): slot i
// of a list holds [B, size] at B * slot.offset, so a shard's rows are one run per slot.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ir/Step.h"

namespace cellc::runtime {

// Shard s of `shards` holds trials [first(s), first(s + 1)): the first B mod shards shards one
// trial more than the others.
inline int64_t shardFirst(int64_t batch, int64_t shards, int64_t s) {
  return s * (batch / shards) + std::min(s, batch % shards);
}

// Rows [b0, b1) of each slot of a [B]-batched buffer into dst ((b1 - b0) trials, same layout).
template <class T, class U>
void sliceRows(const std::vector<ir::Slot>& slots, int64_t batch, int64_t b0, int64_t b1, const U* src, T* dst) {
  const int64_t rows = b1 - b0;
  for (const ir::Slot& s : slots) {
    const U* from = src + batch * s.offset + b0 * s.size;
    T* to = dst + rows * s.offset;
    for (int64_t i = 0; i < rows * s.size; ++i) to[i] = static_cast<T>(from[i]);
  }
}

// The inverse: a shard's rows into rows [b0, b1) of each slot of the whole batch's buffer.
template <class T>
void placeRows(const std::vector<ir::Slot>& slots, int64_t batch, int64_t b0, int64_t b1, const T* src, T* dst) {
  const int64_t rows = b1 - b0;
  for (const ir::Slot& s : slots) {
    const T* from = src + rows * s.offset;
    T* to = dst + batch * s.offset + b0 * s.size;
    for (int64_t i = 0; i < rows * s.size; ++i) to[i] = from[i];
  }
}

// Per-step buffers ([T][size * B], or empty, or one buffer for every step) cut to rows [b0, b1).
template <class T, class U>
std::vector<std::vector<T>> sliceSteps(const std::vector<ir::Slot>& slots, int64_t size, int64_t batch,
                                       int64_t b0, int64_t b1, const std::vector<std::vector<U>>& steps) {
  std::vector<std::vector<T>> out(steps.size());
  for (size_t t = 0; t < steps.size(); ++t) {
    if (steps[t].empty()) continue;  // a step without targets (MseLast)
    out[t].resize(static_cast<size_t>(size * (b1 - b0)));
    sliceRows(slots, batch, b0, b1, steps[t].data(), out[t].data());
  }
  return out;
}

// One slot of `width` values per trial at offset 0: a loss's targets and masks.
inline std::vector<ir::Slot> oneSlot(int64_t width) {
  ir::Slot s;
  s.role = ir::Role::Output;
  s.offset = 0;
  s.size = width;
  return {s};
}

}  // namespace cellc::runtime
