#include "random/Streams.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace cellc::runtime {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr const char* kHeader = "cellc-random-streams 1";

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

[[noreturn]] void bad(const std::string& why) {
  throw std::runtime_error("RandomStreams::load: " + why);
}

}  // namespace

const char* streamName(Stream s) {
  switch (s) {
    case Stream::Init: return "init";
    case Stream::Data: return "data";
    case Stream::Noise: return "noise";
    case Stream::Dropout: return "dropout";
  }
  return "?";
}

uint64_t splitMix64(uint64_t x) {
  uint64_t z = x + kGolden;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Stream i is seeded with the (i + 1)-th output of SplitMix64 started at the master seed: the
// streams' seeds are distinct, well mixed, and each depends only on (seed, i).
RandomStreams::RandomStreams(uint64_t seed) : seed_(seed) {
  for (int i = 0; i < kNumStreams; ++i)
    engines_[static_cast<size_t>(i)].seed(splitMix64(seed + static_cast<uint64_t>(i) * kGolden));
}

// Format, one line each:
//   cellc-random-streams 1
//   seed <master seed>
//   <stream name> <the engine's state as operator<< writes it>     (init, data, noise, dropout)
std::string RandomStreams::save() const {
  std::ostringstream os;
  os << kHeader << "\nseed " << seed_ << "\n";
  for (int i = 0; i < kNumStreams; ++i) {
    std::ostringstream es;
    es << engines_[static_cast<size_t>(i)];
    os << streamName(static_cast<Stream>(i)) << ' ' << es.str() << "\n";
  }
  return os.str();
}

void RandomStreams::load(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || trim(line) != kHeader)
    bad("not a saved random state (expected the line '" + std::string(kHeader) + "')");

  uint64_t seed = 0;
  {
    if (!std::getline(in, line)) bad("missing the seed line");
    std::istringstream ls(trim(line));
    std::string key, word, rest;
    if (!(ls >> key >> word) || key != "seed" || (ls >> rest))
      bad("bad seed line '" + line.substr(0, 60) + "'");
    std::istringstream ws(word);
    if (!(ws >> seed) || std::to_string(seed) != word)  // rejects "-1", which >> would wrap
      bad("bad seed '" + word.substr(0, 30) + "'");
  }

  std::array<std::mt19937_64, kNumStreams> engines;
  for (int i = 0; i < kNumStreams; ++i) {
    const std::string name = streamName(static_cast<Stream>(i));
    if (!std::getline(in, line)) bad("missing the state of stream '" + name + "'");
    line = trim(line);
    if (line.compare(0, name.size() + 1, name + " ") != 0)
      bad("expected the state of stream '" + name + "', got '" + line.substr(0, 60) + "'");
    const std::string state = trim(line.substr(name.size() + 1));
    std::istringstream es(state);
    es >> engines[static_cast<size_t>(i)];
    std::string rest;
    if (es.fail() || (es >> rest)) bad("malformed state of stream '" + name + "'");
    // Only a state operator<< could have written: it prints back to the same text. This rejects
    // words out of range that the stream would wrap, a wrong word count and a bad position.
    std::ostringstream back;
    back << engines[static_cast<size_t>(i)];
    if (back.str() != state) bad("invalid state of stream '" + name + "'");
  }
  while (std::getline(in, line))
    if (!trim(line).empty()) bad("unexpected text after the last stream");

  seed_ = seed;
  engines_ = engines;
}

double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}

double normal(std::mt19937_64& rng) {
  for (;;) {
    double u = 2 * uniform01(rng) - 1, v = 2 * uniform01(rng) - 1;
    double s = u * u + v * v;
    if (s > 0 && s < 1) return u * std::sqrt(-2 * std::log(s) / s);
  }
}

double normal(std::mt19937_64& rng, double mean, double stddev) {
  return mean + stddev * normal(rng);
}

double gammaVariate(std::mt19937_64& rng, double k, double theta) {
  if (!(k > 0) || !(theta > 0) || !std::isfinite(k) || !std::isfinite(theta))
    throw std::invalid_argument("gamma: shape and scale must be positive and finite");
  if (k < 1) {
    // Gamma(k) = Gamma(k + 1) * U^(1/k).
    double u;
    do u = uniform01(rng);
    while (u == 0);
    return gammaVariate(rng, k + 1, theta) * std::pow(u, 1 / k);
  }
  const double d = k - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = uniform01(rng);
    if (u < 1 - 0.0331 * (x * x) * (x * x)) return d * v * theta;
    if (u > 0 && std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v * theta;
  }
}

}  // namespace cellc::runtime
