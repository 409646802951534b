// Comparisons, where and heaviside (with its surrogate gradient) through the JIT: the spikes
// fixture unrolled over a sequence, its outputs and gradients against the reference evaluator in
// float64 (1e-12 relative) and, over one step, float32 (1e-5), at sizes where loops are inlined, looped and split
// over the batch. The evaluator's own gradient is checked against the surrogate rule written out
// by hand in tests/compiler/test_spikes.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "JitAgainstEvaluator.h"
#include "eval/Evaluate.h"
#include "driver/Compile.h"
#include "sema/Program.h"
#include "unroll/Unroll.h"

using namespace cellc;

using namespace cellc::jitcheck;

TEST_CASE("comparisons, where and heaviside: the JIT equals the evaluator", "[jit][spikes]") {
  for (double n : {4.0, 16.0, 300.0}) {
    std::string err;
    SourceFile f = SourceFile::load(CELLC_SOURCE_DIR "/tests/fixtures/valid/spikes.cell", &err);
    DiagnosticSink diags;
    std::optional<Program> prog = loadCell(f, {{"n", n}}, diags);
    REQUIRE(prog);
    StepIR ir = lower(*prog);
    eval::Evaluator ref(ir);
    auto f64 = compileCell<double>(ir);
    auto f32 = compileCell<float>(ir);
    const ir::Layout& L = ir.layout;
    std::mt19937 rng(11);
    for (int64_t B : {1, 3, 8}) {
      INFO("n " << n << ", batch " << B);
      const int64_t T = 8;
      runtime::Sequence<double> seq;
      seq.batch = B;
      seq.params = normals(L.paramSize, rng, 0.5);
      seq.initialState = normals(L.stateSize * B, rng, 1.0);
      std::vector<std::vector<double>> w;
      for (int64_t t = 0; t < T; ++t) {
        seq.inputs.push_back(normals(L.inputSize * B, rng, 1.0));
        w.push_back(normals(L.outputSize * B, rng, 1.0));
      }
      std::vector<double> v = normals(L.stateSize * B, rng, 1.0);
      Run r = unroll<double>(ref, seq, w, v);
      // Spikes happen and the surrogate carries gradient: the comparison is not vacuous.
      double spikes = 0;
      for (double o : r.outputs) spikes += o != 0;
      CHECK(spikes > 0);
      {
        INFO("float64");
        compare(unroll<double>(*f64, seq, w, v), r, 1e-12);
      }
      {
        // float32 over one step from float-representable values: over a sequence a unit within
        // float rounding of a threshold spikes in one precision and not in the other, and the
        // trajectories part, as they must for a discontinuous step (seen here at n = 4, B = 8).
        INFO("float32, one step");
        auto toFloat = [](std::vector<double> x) {
          for (double& e : x) e = static_cast<float>(e);
          return x;
        };
        runtime::Sequence<double> one;
        one.batch = B;
        one.params = toFloat(seq.params);
        one.initialState = toFloat(seq.initialState);
        one.inputs = {toFloat(seq.inputs[0])};
        std::vector<std::vector<double>> w1 = {toFloat(w[0])};
        const std::vector<double> v1 = toFloat(v);
        compare(unroll<float>(*f32, one, w1, v1), unroll<double>(ref, one, w1, v1), 1e-5);
      }
    }
  }
}
