#include "train/NoiseDraw.h"

#include <algorithm>
#include <stdexcept>

#include "random/Normals.h"
#include "random/Streams.h"

namespace cellc::runtime {

template <class T>
std::vector<std::vector<T>> drawNoise(const ir::Layout& L, int64_t batch, int64_t steps,
                                      std::mt19937_64* normals, const RecurrentDropout& dropout,
                                      std::mt19937_64* masks) {
  if (dropout.p < 0 || dropout.p >= 1)
    throw std::invalid_argument("dropout p must be in [0, 1), got " + std::to_string(dropout.p));
  const bool drawMasks = masks && dropout.p > 0 && L.hasDropout();
  const bool drawNormals = normals && std::any_of(L.noises.begin(), L.noises.end(),
                                                  [](const ir::Slot& s) { return !s.dropout; });
  if (!drawMasks && !drawNormals) return {};
  std::vector<std::vector<T>> noise(static_cast<size_t>(steps), L.defaultNoise<T>(batch));
  const T keep = static_cast<T>(1 / (1 - dropout.p));
  auto fillMask = [&](T* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = uniform01(*masks) < dropout.p ? T(0) : keep;
  };
  // Per trial: one mask per dropout slot, drawn before the trial and copied into every step; a
  // fixed mask is the same for every trial of the batch.
  std::vector<T> trialMask;
  if (drawMasks && !dropout.fixedMask.empty()) {
    trialMask = L.defaultNoise<T>(batch);
    size_t unit = 0;
    for (const ir::Slot& s : L.noises) {
      if (!s.dropout) continue;
      if (unit + static_cast<size_t>(s.size) > dropout.fixedMask.size())
        throw std::invalid_argument("dropout: the fixed mask has fewer values than the cell's dropout units");
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < s.size; ++i)
          trialMask[static_cast<size_t>(batch * s.offset + b * s.size + i)] = static_cast<T>(dropout.fixedMask[unit + static_cast<size_t>(i)]);
      unit += static_cast<size_t>(s.size);
    }
  } else if (drawMasks && !dropout.perStep) {
    trialMask = L.defaultNoise<T>(batch);
    for (const ir::Slot& s : L.noises)
      if (s.dropout) fillMask(trialMask.data() + batch * s.offset, batch * s.size);
  }
  for (auto& step : noise) {
    for (size_t i = 0; i < L.noises.size();) {
      const ir::Slot& s = L.noises[i];
      if (!s.dropout) {  // a run of adjacent normal slots: one draw
        size_t j = i;
        while (j < L.noises.size() && !L.noises[j].dropout) ++j;
        const int64_t end = L.noises[j - 1].offset + L.noises[j - 1].size;
        if (drawNormals)
          fillNormals(*normals, step.data() + batch * s.offset,
                      static_cast<size_t>(batch * (end - s.offset)));
        i = j;
        continue;
      }
      if (drawMasks) {
        T* dst = step.data() + batch * s.offset;
        if (dropout.perStep && dropout.fixedMask.empty()) fillMask(dst, batch * s.size);
        else std::copy_n(trialMask.data() + batch * s.offset, batch * s.size, dst);
      }
      ++i;
    }
  }
  return noise;
}

std::vector<double> drawFixedMask(const ir::Layout& L, double p, std::mt19937_64& rng) {
  std::vector<double> mask;
  for (const ir::Slot& s : L.noises)
    if (s.dropout)
      for (int64_t i = 0; i < s.size; ++i) mask.push_back(uniform01(rng) < p ? 0.0 : 1.0);
  return mask;
}

template std::vector<std::vector<float>> drawNoise<float>(const ir::Layout&, int64_t, int64_t,
                                                          std::mt19937_64*, const RecurrentDropout&,
                                                          std::mt19937_64*);
template std::vector<std::vector<double>> drawNoise<double>(const ir::Layout&, int64_t, int64_t,
                                                            std::mt19937_64*, const RecurrentDropout&,
                                                            std::mt19937_64*);

}  // namespace cellc::runtime
