// The state adjoint in place (codegen/InPlaceAdjoint.h): every cell's backward, per step and
// segment plan, may write d_state over d_state_next; called so (one buffer), it gives the
// evaluator's step gradients (which reads two), including the plastic cells' trace adjoints in
// their loop groups, past 64 columns too; a state whose adjoint the backward reads transposed is
// not in place, and still right. BPTT, which now passes one buffer, is checked against the
// evaluator and finite differences in test_input_adjoint.cpp and test_hoist.cpp.
#include <catch2/catch.hpp>
#include <random>

#include "BpttCheck.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"

using namespace cellc;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerText(const std::string& text) {
  SourceFile f("inplace.cell", text);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, {}, d);
  REQUIRE(p);
  return lower(*p);
}

// One backward step with d_state == d_state_next (when the kernel allows it), against the
// evaluator's with two buffers: d_state and the param gradient, relative 1e-12 in float64.
void inPlaceMatchesEvaluator(const StepIR& ir, int64_t B, unsigned seed) {
  auto jit = compileCell<double>(ir);
  eval::Evaluator ref(ir);
  const ir::Layout& L = ir.layout;
  std::mt19937_64 rng(seed);
  std::vector<double> p = randomVec(L.paramSize, rng, 0.5), s = randomVec(L.stateSize * B, rng, 1),
                      x = randomVec(L.inputSize * B, rng, 1), as = randomVec(L.stateSize * B, rng, 1),
                      ao = randomVec(L.outputSize * B, rng, 1);
  std::vector<double> nz = L.defaultNoise<double>(B);
  auto backward = [&](StepKernel<double>& k, bool oneBuffer) {
    std::vector<double> sn(s.size()), out(L.outputSize * B), tape(static_cast<size_t>(k.tapeSize(B)) + 1);
    k.run(Stage::Forward, {.params = p.data(),
                           .state = s.data(),
                           .input = x.data(),
                           .noise = nz.data(),
                           .tape = tape.data(),
                           .stateNext = sn.data(),
                           .output = out.data(),
                           .batch = B});
    std::vector<double> ds = as, dx(L.inputSize * B), dp(L.paramSize, 0.0);
    std::vector<double> two(oneBuffer ? 0 : as.size());
    k.run(Stage::Backward, {.params = p.data(),
                            .state = s.data(),
                            .input = x.data(),
                            .noise = nz.data(),
                            .tape = tape.data(),
                            .dStateNext = ds.data(),
                            .dOutput = ao.data(),
                            .dState = oneBuffer ? ds.data() : two.data(),
                            .dInput = dx.data(),
                            .dParams = dp.data(),
                            .batch = B});
    return std::pair{oneBuffer ? ds : two, dp};
  };
  auto [dsRef, dpRef] = backward(ref, false);
  auto [ds, dp] = backward(*jit, jit->traits().adjointInPlace);
  CHECK(relErr(ds, dsRef) <= 1e-12);
  CHECK(relErr(dp, dpRef) <= 1e-12);
}

const char* kCells[] = {"gru", "brc", "nbrc", "dale_rnn", "pbrc", "pbrc_split", "plastic_gru", "plastic_gru_clip"};

}  // namespace

TEST_CASE("in-place adjoint: every cell's backward plans write d_state over d_state_next", "[inplace][plan]") {
  for (const char* cell : kCells) {
    INFO(cell);
    StepIR ir = lowerSource(std::string("cells/") + cell + ".cell", {{"n_in", 12}});
    auto jit = compileCell<double>(ir);
    CHECK(jit->traits().adjointInPlace);
    REQUIRE(jit->segmentPlan());
    CHECK(jit->segmentPlan()->adjointInPlace);
    CHECK(codegen::printPlan(ir, codegen::makePlan(ir)).find("d_state written over d_state_next") != std::string::npos);
  }
}

TEST_CASE("in-place adjoint: one buffer gives the evaluator's step gradients", "[inplace][jit]") {
  for (const char* cell : kCells)
    for (double n : {12.0, 70.0}) {  // 70: the plastic cells' trace loops in two column blocks
      DYNAMIC_SECTION(cell << ", n = " << n) {
        Overrides o{{"n", n}, {"n_in", 5}};
        if (std::string(cell) == "pbrc_split") o["k"] = n / 2;
        if (std::string(cell) == "dale_rnn") o["n_out"] = 3;
        inPlaceMatchesEvaluator(lowerSource(std::string("cells/") + cell + ".cell", o), 3, 17);
      }
    }
}

// dM = 0.5 transpose(dM') + ...: the backward reads the trace adjoint at (c, r) while writing
// (r, c), so one buffer would read elements already overwritten.
TEST_CASE("in-place adjoint: a state whose adjoint is read transposed keeps two buffers", "[inplace][plan]") {
  StepIR ir = lowerText(
      "cell twisted {\n  dim n = 9\n  input x[n]\n  state h[n] = 0\n  state M[n, n] = 0\n"
      "  param W[n, n] ~ glorot()\n"
      "  h' = tanh(W @ h + M @ h + x)\n  M' = 0.5 * transpose(M) + outer(h', h)\n}\n");
  CHECK_FALSE(codegen::makePlan(ir).adjointInPlace);
  auto jit = compileCell<double>(ir);
  CHECK_FALSE(jit->traits().adjointInPlace);
  inPlaceMatchesEvaluator(ir, 3, 5);
}
