// Memory estimates before allocation (train/Memory.h): the message of a request beyond memory,
// the machine's memory and its limits, BPTT's part against what BPTT holds. cellc unroll's check:
// test_unroll_memory.cpp.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <random>

#include "driver/Compile.h"
#include "sema/Program.h"
#include "train/Bptt.h"
#include "train/Memory.h"

#include "../jit/BpttCheck.h"

using namespace cellc;
using namespace cellc::runtime;
using Catch::Contains;

TEST_CASE("memory: a request beyond the machine's memory names its bytes, the machine's and the keys",
          "[memory]") {
  MemoryEstimate m;
  m.add("tapes", 1000, 1000, 4);  // 4 MB
  m.add("params", 1, 250, 8);     // 2 kB
  CHECK(m.bytes() == 4'002'000);
  const MachineMemory small{1'000'000, "MemAvailable in /proc/meminfo"};
  try {
    requireMemory(m, "training phase 'train'", "train.batch = 1000", small);
    FAIL("no error");
  } catch (const OutOfMemoryError& e) {
    CHECK(e.needed == 4'002'000);
    CHECK(e.available == 1'000'000);
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("training phase 'train' needs about 4.0 MB (4,002,000 bytes)"));
    CHECK_THAT(msg, Contains("the machine has 1.0 MB (1,000,000 bytes, MemAvailable in /proc/meminfo)"));
    CHECK_THAT(msg, Contains("The largest buffers: tapes 4.0 MB; params 2.0 kB"));
    CHECK_THAT(msg, Contains("The sizes come from train.batch = 1000"));
  }
  CHECK_NOTHROW(requireMemory(m, "x", "y", {4'002'000, "exactly enough"}));
  CHECK_NOTHROW(requireMemory(m, "x", "y", {0, ""}));  // not known: nothing refused
  // Sizes whose bytes pass 2^63 saturate instead of wrapping to a small number.
  MemoryEstimate huge;
  huge.add("states", int64_t{1} << 40, int64_t{1} << 40, 8);
  huge.add("more", int64_t{1} << 62, 4, 1);
  CHECK(huge.bytes() == std::numeric_limits<int64_t>::max());
  CHECK_THROWS_WITH(requireMemory(huge, "unroll", "T and B", small), Contains("more than 9.2 EB"));
}

TEST_CASE("memory: the machine's memory is the least of MemAvailable and the address-space limit",
          "[memory]") {
  const MachineMemory m = readMachineMemory();
  REQUIRE(m.bytes > 0);
  CHECK_THAT(m.source, Contains("MemAvailable") || Contains("cgroup"));
  // ulimit -v: what is left of it binds when it is the least. (Not under AddressSanitizer: its
  // shadow memory maps terabytes, and an address-space limit makes its own allocations fail.)
#if defined(__SANITIZE_ADDRESS__)
  return;
#endif
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_AS, &old) == 0);
  long long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t mapped = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGE_SIZE));
  struct rlimit tight = old;
  tight.rlim_cur = mapped + (rlim_t{512} << 20);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < tight.rlim_cur) return;  // cannot test here
  REQUIRE(::setrlimit(RLIMIT_AS, &tight) == 0);
  const MachineMemory limited = readMachineMemory();
  ::setrlimit(RLIMIT_AS, &old);
  CHECK(limited.bytes <= int64_t{512} << 20);
  CHECK(limited.bytes > int64_t{256} << 20);
  CHECK_THAT(limited.source, Contains("ulimit -v"));
}

TEST_CASE("memory: the BPTT part is what BPTT holds", "[memory]") {
  StepIR ir = bpttcheck::lowerSource("cells/gru.cell", {{"n", 24}});
  auto k = compileCell<float>(ir);
  const int64_t B = 4, T = 30;  // B < 2 * kMinShardTrials: no shards
  std::mt19937_64 rng(5);
  TrialBatch b;
  b.batch = B, b.steps = T;
  for (int64_t t = 0; t < T; ++t) {
    b.inputs.emplace_back(static_cast<size_t>(ir.layout.inputSize * B), 0.5);
    b.targets.emplace_back(static_cast<size_t>(ir.layout.outputs[0].size * B), 0.1);
  }
  std::vector<float> p(static_cast<size_t>(ir.layout.paramSize), 0.01f);
  auto bpttPart = [&](int64_t budget) {
    MemoryEstimate m = trainingMemory(*k, {T, B, 1, budget, 0});
    for (const auto& part : m.parts())
      if (part.what.rfind("BPTT", 0) == 0) return part.bytes;
    FAIL("no BPTT part");
    return int64_t{0};
  };
  // Within the budget: every step kept, the estimate exact.
  Bptt<float> all(*k, B, T);
  REQUIRE(all.segment() == T);
  const int64_t held = all.lossAndGradient(p, b, {}, {}, {}).peakBytes;
  CHECK(bpttPart(kDefaultMemoryBudgetMb << 20) == held);
  // Beyond it: segments within the budget, the estimate at most the budget and at least what
  // BPTT holds.
  const int64_t budget = held / 3;
  Bptt<float> seg(*k, B, T, 0, budget);
  REQUIRE(seg.segment() < T);
  const int64_t segHeld = seg.lossAndGradient(p, b, {}, {}, {}).peakBytes;
  CHECK(bpttPart(budget) >= segHeld);
  CHECK(bpttPart(budget) <= budget);
}
