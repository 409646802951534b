// softmax, log_softmax, logsumexp and amax through the JIT: a cell using each (over a vector and
// over a matrix's last axis, amax over every axis and over one) unrolled over a sequence, its
// outputs and gradients against the reference evaluator in float64 (1e-12 relative) and float32
// (1e-5), at sizes where the reductions are inlined, looped and split over the batch.
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

TEST_CASE("softmax, log_softmax, logsumexp and amax: the JIT equals the evaluator", "[jit][classify]") {
  // n_out x n = 30 x 40: the [B, n_out, n] kernels are split over the batch (1024 elements and up).
  for (auto [n, nOut] : {std::pair{4.0, 3.0}, {12.0, 5.0}, {40.0, 30.0}}) {
    std::string err;
    SourceFile f = SourceFile::load(CELLC_SOURCE_DIR "/tests/fixtures/valid/classification.cell", &err);
    DiagnosticSink diags;
    std::optional<Program> prog = loadCell(f, {{"n", n}, {"n_out", nOut}}, diags);
    REQUIRE(prog);
    StepIR ir = lower(*prog);
    eval::Evaluator ref(ir);
    auto f64 = compileCell<double>(ir);
    auto f32 = compileCell<float>(ir);
    const ir::Layout& L = ir.layout;
    std::mt19937 rng(7);
    for (int64_t B : {1, 3, 8}) {
      INFO("n " << n << ", n_out " << nOut << ", batch " << B);
      const int64_t T = 6;
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
      compare(unroll<double>(*f64, seq, w, v), r, 1e-12);
      compare(unroll<float>(*f32, seq, w, v), r, 1e-5);
    }
  }
}
