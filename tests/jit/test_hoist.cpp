// Hoisting (pipeline/Hoist.h): the sequence-invariant part of a step runs once per sequence. On a
// cell written for the purpose and on dale_rnn: the plan hoists exactly the expected frontier and
// keeps it out of the per-step functions; JIT (float64) and reference evaluator agree stage by
// stage and through BPTT (with and without segments, B = 1 and 3), and the gradient matches the
// unhoisted evaluator and finite differences.
#include <catch2/catch.hpp>
#include <random>

#include "BpttCheck.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "pipeline/Hoist.h"
#include "sema/Program.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerFile(const std::string& path, const Overrides& o) { return lowerSource(path, o); }

int paramIndex(const ir::Layout& L, const std::string& name) {
  for (size_t i = 0; i < L.params.size(); ++i)
    if (L.params[i].name == name) return static_cast<int>(i);
  FAIL("no param " << name);
  return -1;
}

// Whether the leaf of param p is reachable from roots.
bool reads(const StepIR& ir, const std::vector<ir::NodeId>& roots, int p) {
  for (ir::NodeId id : ir::topoOrder(ir.g, roots))
    if (ir.g[id].op == ir::Op::Param && ir.g[id].a0 == p) return true;
  return false;
}

// BPTT through the JIT (hoisted), the evaluator of the hoisted step and the evaluator of the
// unhoisted step: the same loss and gradient; and the JIT's gradient against finite differences.
void checkSequences(const StepIR& ir, double paramScale, uint64_t seed) {
  const StepIR hoisted = hoist(ir);
  REQUIRE(!hoisted.hoisted.empty());
  auto jit = compileCell<double>(ir);
  REQUIRE(jit->traits().hoistedSize == hoisted.hoistedSize);
  eval::Evaluator staged(hoisted), plain(ir);
  REQUIRE(plain.traits().hoistedSize == 0);
  std::mt19937_64 rng(seed);
  const int64_t T = 6;
  for (int64_t B : {1, 3}) {
    std::vector<double> params = randomVec(ir.layout.paramSize, rng, paramScale);
    TrialBatch b = randomBatch(ir.layout, B, T, rng);
    auto noise = randomNoise(ir.layout, B, T, rng);
    for (int64_t seg : {int64_t{0}, int64_t{2}}) {
      DYNAMIC_SECTION("B = " << B << ", segment " << seg) {
        Bptt<double> viaJit(*jit, B, T, seg), viaStaged(staged, B, T, seg), viaPlain(plain, B, T, seg);
        if (seg) REQUIRE(viaJit.segment() < T);
        checkAgainstEvaluators(viaJit, viaStaged, viaPlain, params, b, noise, rng);
      }
    }
  }
}

}  // namespace

TEST_CASE("hoisting: the invariant frontier of a cell written for it", "[hoist][plan]") {
  StepIR ir = lowerFile("tests/fixtures/valid/hoist_invariant.cell", {});
  StepIR h = hoist(ir);
  const int P = paramIndex(ir.layout, "P"), Wx = paramIndex(ir.layout, "W_x"), b = paramIndex(ir.layout, "b");
  // Exactly A = tanh(P) * mask: W_x and b are leaves the step reads directly, mask a constant.
  REQUIRE(h.hoisted.size() == 1);
  CHECK(h.hoistedSlots[0].name == "A");
  CHECK(h.g[h.hoisted[0]].op == ir::Op::Mul);
  CHECK(h.g[h.hoisted[0]].shape.dims == std::vector<int64_t>{5, 5});
  CHECK(h.hoistedSize == 25);
  // The steps read the hoisted A, not P; P's gradient comes from the epilogue alone.
  CHECK_FALSE(reads(h, h.forwardRoots(), P));
  CHECK_FALSE(reads(h, h.backwardRoots(), P));
  CHECK(reads(h, h.hoisted, P));
  CHECK(reads(h, h.forwardRoots(), Wx));
  CHECK(reads(h, h.forwardRoots(), b));
  CHECK(reads(h, {h.epilogueParam[static_cast<size_t>(P)]}, P));
  // The plan: a prologue writing the hoisted buffer, an epilogue adding to P's gradient only.
  codegen::Plan plan = codegen::makePlan(h);
  INFO(codegen::printPlan(h, plan));
  REQUIRE(plan.hasHoisted);
  REQUIRE(plan.prologue.kernels.size() == 1);
  CHECK(plan.prologue.kernels[0].out.buf == codegen::Buf::Hoisted);
  int toParams = 0;
  for (const codegen::Kernel& k : plan.epilogue.kernels)
    if (k.out.buf == codegen::Buf::DParams) {
      ++toParams;
      CHECK(k.out.fixed == ir.layout.params[static_cast<size_t>(P)].offset);
      CHECK(k.accumulate);
    }
  CHECK(toParams == 1);
  for (const codegen::FunctionPlan* fp : {&plan.forward, &plan.backward})
    for (const codegen::Kernel& k : fp->kernels) CHECK((h.g[k.node].op != ir::Op::Tanh || h.g[k.node].shape.batched));
  // The backward accumulates A's adjoint into the d-hoisted buffer.
  bool dA = false;
  for (const codegen::Kernel& k : plan.backward.kernels)
    if (k.out.buf == codegen::Buf::DHoisted) dA = dA || k.accumulate;
  CHECK(dA);
}

TEST_CASE("hoisting: a step with nothing worth hoisting is unchanged", "[hoist][plan]") {
  StepIR ir = lowerFile("cells/gru.cell", {{"n", 6}});
  StepIR h = hoist(ir);
  CHECK(h.hoisted.empty());
  CHECK(h.hoistedSize == 0);
  CHECK(h.g.size() == ir.g.size());
  CHECK(h.forwardRoots() == ir.forwardRoots());
  CHECK(h.backwardRoots() == ir.backwardRoots());
  codegen::Plan a = codegen::makePlan(ir), b = codegen::makePlan(h);
  CHECK_FALSE(b.hasHoisted);
  CHECK(codegen::printPlan(ir, a) == codegen::printPlan(h, b));
  CHECK(compileCell<double>(ir)->traits().hoistedSize == 0);
}

TEST_CASE("hoisting: JIT stages equal the evaluator's, one step", "[hoist][jit]") {
  StepIR ir = lowerFile("tests/fixtures/valid/hoist_invariant.cell", {});
  StepIR h = hoist(ir);
  auto jit = compileCell<double>(ir);
  eval::Evaluator ev(h);
  const ir::Layout& L = ir.layout;
  std::mt19937_64 rng(3);
  const int64_t B = 3;
  std::vector<double> p = randomVec(L.paramSize, rng, 0.7), s = randomVec(L.stateSize * B, rng, 1),
                      x = randomVec(L.inputSize * B, rng, 1), as = randomVec(L.stateSize * B, rng, 1),
                      ao = randomVec(L.outputSize * B, rng, 1);
  const size_t H = static_cast<size_t>(h.hoistedSize);
  std::vector<double> hj(H), he(H);
  jit->run(Stage::Prologue, {.params = p.data(), .hoisted = hj.data()});
  ev.run(Stage::Prologue, {.params = p.data(), .hoisted = he.data()});
  CHECK(relErr(hj, he) <= 1e-12);
  std::vector<double> snj(L.stateSize * B), sne(snj.size()), oj(L.outputSize * B), oe(oj.size());
  std::vector<double> tape(static_cast<size_t>(jit->tapeSize(B)) + 1);
  jit->run(Stage::ForwardHoisted, {.params = p.data(),
                                   .hoisted = hj.data(),
                                   .state = s.data(),
                                   .input = x.data(),
                                   .tape = tape.data(),
                                   .stateNext = snj.data(),
                                   .output = oj.data(),
                                   .batch = B});
  ev.run(Stage::ForwardHoisted, {.params = p.data(),
                                 .hoisted = he.data(),
                                 .state = s.data(),
                                 .input = x.data(),
                                 .stateNext = sne.data(),
                                 .output = oe.data(),
                                 .batch = B});
  CHECK(relErr(snj, sne) <= 1e-12);
  CHECK(relErr(oj, oe) <= 1e-12);
  // Two steps' adjoints accumulate into dHoisted; the epilogue adds to dParams.
  std::vector<double> dsj(s.size()), dse(s.size()), dxj(x.size()), dxe(x.size());
  std::vector<double> dpj(L.paramSize, 0.5), dpe(L.paramSize, 0.5), dhj(H, 0.0), dhe(H, 0.0);
  for (int rep = 0; rep < 2; ++rep) {
    jit->run(Stage::BackwardHoisted, {.params = p.data(),
                                      .hoisted = hj.data(),
                                      .state = s.data(),
                                      .input = x.data(),
                                      .tape = tape.data(),
                                      .dStateNext = as.data(),
                                      .dOutput = ao.data(),
                                      .dState = dsj.data(),
                                      .dInput = dxj.data(),
                                      .dParams = dpj.data(),
                                      .dHoisted = dhj.data(),
                                      .batch = B});
    ev.run(Stage::BackwardHoisted, {.params = p.data(),
                                    .hoisted = he.data(),
                                    .state = s.data(),
                                    .input = x.data(),
                                    .dStateNext = as.data(),
                                    .dOutput = ao.data(),
                                    .dState = dse.data(),
                                    .dInput = dxe.data(),
                                    .dParams = dpe.data(),
                                    .dHoisted = dhe.data(),
                                    .batch = B});
  }
  CHECK(relErr(dsj, dse) <= 1e-12);
  CHECK(relErr(dhj, dhe) <= 1e-12);
  CHECK(relErr(dpj, dpe) <= 1e-12);
  jit->run(
      Stage::Epilogue,
      {.params = p.data(), .hoisted = hj.data(), .dParams = dpj.data(), .dHoisted = dhj.data()});
  ev.run(Stage::Epilogue,
         {.params = p.data(), .hoisted = he.data(), .dParams = dpe.data(), .dHoisted = dhe.data()});
  CHECK(relErr(dpj, dpe) <= 1e-12);
  // The self-contained step equals the unhoisted evaluator's.
  eval::Evaluator plain(ir);
  std::vector<double> dp1(L.paramSize, 0.0), dp2(L.paramSize, 0.0);
  jit->run(Stage::Forward, {.params = p.data(),
                            .state = s.data(),
                            .input = x.data(),
                            .tape = tape.data(),
                            .stateNext = snj.data(),
                            .output = oj.data(),
                            .batch = B});
  jit->run(Stage::Backward, {.params = p.data(),
                             .state = s.data(),
                             .input = x.data(),
                             .tape = tape.data(),
                             .dStateNext = as.data(),
                             .dOutput = ao.data(),
                             .dState = dsj.data(),
                             .dInput = dxj.data(),
                             .dParams = dp1.data(),
                             .batch = B});
  plain.run(Stage::Backward, {.params = p.data(),
                              .state = s.data(),
                              .input = x.data(),
                              .dStateNext = as.data(),
                              .dOutput = ao.data(),
                              .dState = dse.data(),
                              .dInput = dxe.data(),
                              .dParams = dp2.data(),
                              .batch = B});
  CHECK(relErr(dp1, dp2) <= 1e-12);
  CHECK(relErr(dsj, dse) <= 1e-12);
}

TEST_CASE("hoisting: BPTT on the purpose-made cell, JIT = evaluator = finite differences", "[hoist][bptt]") {
  checkSequences(lowerFile("tests/fixtures/valid/hoist_invariant.cell", {}), 0.7, 5);
}

TEST_CASE("hoisting: dale_rnn's effective matrix leaves the per-step plan", "[hoist][plan]") {
  const int64_t n = 100;
  StepIR ir = lowerFile("cells/dale_rnn.cell", {{"n", static_cast<double>(n)}});
  StepIR h = hoist(ir);
  const int raw = paramIndex(ir.layout, "W_rec_raw");
  bool wRec = false;
  for (const ir::Slot& s : h.hoistedSlots) wRec = wRec || (s.name == "W_rec" && s.size == n * n);
  CHECK(wRec);
  CHECK_FALSE(reads(h, h.forwardRoots(), raw));
  CHECK_FALSE(reads(h, h.backwardRoots(), raw));
  codegen::Plan plan = codegen::makePlan(h);
  INFO(codegen::printPlan(h, plan));
  // No per-step kernel computes an unbatched n x n value, but the weight gradient (W_rec's
  // adjoint, accumulated in the d-hoisted buffer): the relu/mul pass and its backward are gone.
  for (const codegen::FunctionPlan* fp : {&plan.forward, &plan.backward})
    for (const codegen::Kernel& k : fp->kernels) {
      const ir::Node& node = h.g[k.node];
      if (node.shape.batched || node.shape.numel() != n * n) continue;
      CHECK(fp == &plan.backward);
      CHECK(node.op == ir::Op::BatchOuterSum);
      CHECK(k.out.buf == codegen::Buf::DHoisted);
    }
  CHECK(plan.tape.fixed == 0);  // nothing invariant is taped per step
}

TEST_CASE("hoisting: BPTT through dale_rnn, JIT = evaluator = finite differences", "[hoist][bptt]") {
  checkSequences(lowerFile("cells/dale_rnn.cell", {{"n", 10}, {"n_out", 3}, {"n_in", 2}}), 0.4, 9);
}
