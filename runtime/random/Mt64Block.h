// Many draws of a std::mt19937_64 at once: the same values, and the engine left in the same state,
// as n calls of rng(), several times faster. The samplers take hundreds of thousands of 64-bit
// draws per training step (copy-first's T x B x D inputs), in stream order on one thread (so that
// every thread count gives the same bits), and one call at a time they were a serial tenth of a
// lane's step. Here the engine's recurrence (its 312-word state regenerated every 312 draws) and
// the tempering of each word run as vector loops over whole blocks.
//
// The state moves between the std engine and these loops through the engine's textual form
// (operator<< and >>): a few microseconds, so calls of fewer than kMt64BlockMin draws take them one
// at a time. Only libstdc++'s form (its 312 words, then its position) is read; with another
// standard library every call takes the draws one at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

namespace cellc::runtime {

inline constexpr size_t kMt64BlockMin = 4096;

void drawBlock(std::mt19937_64& rng, uint64_t* out, size_t n);

}  // namespace cellc::runtime
