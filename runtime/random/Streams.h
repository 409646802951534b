// Random numbers for training, one independent stream per use: initialization, data (trials),
// noise and dropout. Every stream is seeded from one master seed and its own index, so drawing
// more or fewer numbers from one stream never changes what another yields (adding a noise draw
// does not change the initial params; a longer trial does not change the dropout masks).
//
// The samplers below are written out instead of using std::*_distribution, whose algorithms the
// standard leaves to the library: with these, one seed gives the same numbers under libstdc++ and
// libc++. std::mt19937_64 itself is fully specified by the standard.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace cellc::runtime {

enum class Stream { Init, Data, Noise, Dropout };
inline constexpr int kNumStreams = 4;
const char* streamName(Stream s);  // "init", "data", "noise", "dropout"

// SplitMix64 (Steele, Lea & Flood 2014): one step of the generator whose state is x.
uint64_t splitMix64(uint64_t x);

class RandomStreams {
 public:
  explicit RandomStreams(uint64_t seed = 0);

  uint64_t seed() const { return seed_; }
  std::mt19937_64& operator[](Stream s) { return engines_[static_cast<size_t>(s)]; }
  const std::mt19937_64& operator[](Stream s) const { return engines_[static_cast<size_t>(s)]; }

  // The exact state of every stream (and the master seed) as text; load(save()) continues every
  // stream with the same numbers. load throws std::runtime_error on anything save() could not
  // have written, and leaves *this unchanged then.
  std::string save() const;
  void load(const std::string& text);

 private:
  uint64_t seed_;
  std::array<std::mt19937_64, kNumStreams> engines_;
};

// Samplers. uniform01 is in [0, 1) with 53 random bits; normal is the Marsaglia polar method
// (no cached second value: a call consumes only the engine); gammaVariate is Marsaglia & Tsang
// (2000) with shape k > 0 and scale theta > 0 (mean k theta, variance k theta^2), boosted for
// k < 1; it throws std::invalid_argument unless k and theta are positive and finite.
double uniform01(std::mt19937_64& rng);
double uniform(std::mt19937_64& rng, double lo, double hi);
double normal(std::mt19937_64& rng);
double normal(std::mt19937_64& rng, double mean, double stddev);
double gammaVariate(std::mt19937_64& rng, double k, double theta);

}  // namespace cellc::runtime
