// What a cell's noise slots receive each step. A normal slot (`noise xi[n]`) gets N(0, 1) draws,
// or 0 when noise is off; a dropout slot (`noise keep[n] ~ dropout()`) gets an inverted-dropout
// mask, 0 with probability p and 1 / (1 - p) otherwise, or 1 (every unit kept) when dropout is off
// and at evaluation. The cell decides where the mask acts (e.g. on the rates W_rec reads), so a
// leaky or gated state is never rescaled as a whole.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ir/Step.h"

namespace cellc::runtime {

struct RecurrentDropout {
  double p = 0;          // probability of dropping a unit; 0: off
  bool perStep = false;  // a new mask every step (default: one mask per trial)
};

// The noise of `steps` steps for a batch, [steps][noiseSize * batch]. `normals` draws the normal
// slots (null: zeros); `masks` draws the dropout slots when dropout.p > 0 (null or p = 0: ones).
// Empty when nothing is drawn: every slot holds its default (ir::Layout::defaultNoise).
// Contiguous normal slots are drawn in one run, so a cell without dropout slots gets exactly the
// numbers one fill of the whole buffer gives.
template <class T>
std::vector<std::vector<T>> drawNoise(const ir::Layout& L, int64_t batch, int64_t steps,
                                      std::mt19937_64* normals, const RecurrentDropout& dropout,
                                      std::mt19937_64* masks);

}  // namespace cellc::runtime
