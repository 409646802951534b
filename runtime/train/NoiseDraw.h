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
  bool fixed = false;    // one unscaled mask for the whole phase (the trainer fills fixedMask)
  // pycog's course trainer (seed 000's E3): one 0/1 mask, not rescaled, for every trial and step of
  // a training phase. Holds one value per unit of the cell's dropout slots, in slot order; empty:
  // masks are drawn per trial (or step) as above.
  std::vector<double> fixedMask;
};

// The fixed mask of a phase (RecurrentDropout::fixedMask): 0 with probability p, else 1, per unit of
// every dropout slot, from its own generator, so a resumed phase gets the same mask.
std::vector<double> drawFixedMask(const ir::Layout& L, double p, std::mt19937_64& rng);

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
