#include "random/Mt64Block.h"

#include <locale>
#include <sstream>

namespace cellc::runtime {

namespace {

// MT19937-64's parameters (Matsumoto and Nishimura; the same as std::mt19937_64's).
constexpr size_t kN = 312, kM = 156;
constexpr uint64_t kMatrixA = 0xB5026F5AA96619E9ull;
constexpr uint64_t kUpper = ~uint64_t{0} << 31, kLower = ~kUpper;

uint64_t twistOne(uint64_t cur, uint64_t next, uint64_t far) {
  const uint64_t y = (cur & kUpper) | (next & kLower);
  return far ^ (y >> 1) ^ (-(y & 1) & kMatrixA);
}

// The state's next 312 words, in place, in the engine's order: the first kN - kM read words not
// yet replaced (k + 1 and k + kM ahead of k), the rest words already replaced (k + kM - kN behind
// k by kN - kM = 156, more than a vector); each loop vectorizes.
void regenerate(uint64_t* x) {
  for (size_t k = 0; k < kN - kM; ++k) x[k] = twistOne(x[k], x[k + 1], x[k + kM]);
  for (size_t k = kN - kM; k < kN - 1; ++k) x[k] = twistOne(x[k], x[k + 1], x[k + kM - kN]);
  x[kN - 1] = twistOne(x[kN - 1], x[0], x[kM - 1]);
}

void temper(const uint64_t* x, uint64_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = x[i];
    z ^= (z >> 29) & 0x5555555555555555ull;
    z ^= (z << 17) & 0x71D67FFFEDA60000ull;
    z ^= (z << 37) & 0xFFF7EEE000000000ull;
    out[i] = z ^ (z >> 43);
  }
}

}  // namespace

void drawBlock(std::mt19937_64& rng, uint64_t* out, size_t n) {
#if defined(__GLIBCXX__)
  if (n >= kMt64BlockMin) {
    uint64_t x[kN];
    size_t p = 0;
    std::stringstream state;
    state.imbue(std::locale::classic());  // plain digits, whatever the global locale groups
    state << rng;
    for (uint64_t& w : x) state >> w;
    state >> p;
    if (state && p <= kN) {
      for (size_t done = 0; done < n;) {
        if (p == kN) {
          regenerate(x);
          p = 0;
        }
        const size_t take = std::min(kN - p, n - done);
        temper(x + p, out + done, take);
        p += take;
        done += take;
      }
      std::stringstream back;
      back.imbue(std::locale::classic());
      for (uint64_t w : x) back << w << ' ';
      back << p;
      back >> rng;
      return;
    }
  }
#endif
  for (size_t i = 0; i < n; ++i) out[i] = rng();
}

}  // namespace cellc::runtime
