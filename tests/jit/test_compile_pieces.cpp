// Compiling in pieces (compiler/jit/Jit.cpp): the module is split in two and the pieces are
// optimized and compiled side by side. The split never follows the thread count, so a cell
// compiled on one thread and on two runs the same code: the same bits through BPTT.
#include <catch2/catch.hpp>
#include <random>

#include "BpttCheck.h"
#include "blas/Threads.h"
#include "driver/Compile.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

TEST_CASE("compiling in pieces: the same bits compiled on one thread or two", "[jit][threads]") {
  const int before = threads();
  for (const char* cell : {"gru", "pbrc", "dale_rnn"}) {
    StepIR ir = lowerSource(std::string("cells/") + cell + ".cell", {{"n", 12}, {"n_in", 3}});
    auto result = [&](int compileThreads) {
      setThreads(compileThreads);
      auto k = compileCell<float>(ir);
      setThreads(1);  // run both compiled cells alike
      std::mt19937_64 rng(7);
      TrialBatch b = randomBatch(ir.layout, 4, 5, rng);
      std::vector<float> p(static_cast<size_t>(ir.layout.paramSize));
      std::normal_distribution<float> d(0, 0.4f);
      for (float& x : p) x = d(rng);
      Bptt<float> bptt(*k, 4, 5);
      BpttResult<float> r = bptt.lossAndGradient(p, b, LossSpec{}, {}, {}, true);
      r.dParams.push_back(static_cast<float>(r.loss));
      return r.dParams;
    };
    INFO(cell);
    CHECK(result(1) == result(2));
  }
  setThreads(before);
}
