// Block draws of std::mt19937_64 (random/Mt64Block.h): the same values as one rng() per draw, and
// the engine left where those calls leave it, wherever in its 312-word cycle a call starts and
// ends, below and above the block threshold.
#include <catch2/catch.hpp>

#include <locale>
#include <string>
#include <vector>

#include "random/Mt64Block.h"

using cellc::runtime::drawBlock;
using cellc::runtime::kMt64BlockMin;

TEST_CASE("drawBlock gives rng()'s draws and leaves the engine where they do", "[random]") {
  for (size_t skip : {size_t{0}, size_t{1}, size_t{155}, size_t{311}, size_t{312}, size_t{1000}})
    for (size_t n : {size_t{0}, size_t{1}, size_t{312}, kMt64BlockMin - 1, kMt64BlockMin,
                     kMt64BlockMin + 1, size_t{312 * 40}, size_t{100003}}) {
      DYNAMIC_SECTION("after " << skip << " draws, " << n << " draws") {
        std::mt19937_64 one(11), block(11);
        one.discard(skip);
        block.discard(skip);
        std::vector<uint64_t> want(n), got(n, 0);
        for (uint64_t& v : want) v = one();
        drawBlock(block, got.data(), n);
        CHECK(got == want);
        CHECK(block == one);
        CHECK(block() == one());
      }
    }
}

// The engine's state moves through its textual form: a global locale that groups digits (as a
// host program may set) must not change it.
namespace {
struct Grouping : std::numpunct<char> {
  char do_thousands_sep() const override { return ','; }
  std::string do_grouping() const override { return "\3"; }
};
}  // namespace

TEST_CASE("drawBlock ignores a global locale that groups digits", "[random]") {
  const std::locale saved = std::locale::global(std::locale(std::locale::classic(), new Grouping));
  std::mt19937_64 one(3), block(3);
  std::vector<uint64_t> want(kMt64BlockMin * 2), got(want.size());
  for (uint64_t& v : want) v = one();
  drawBlock(block, got.data(), got.size());
  std::locale::global(saved);
  CHECK(got == want);
  CHECK(block == one);
}
