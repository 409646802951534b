// Weight gradients as one GEMM per BPTT segment (pipeline/SegmentGemm.h): in the segment plan the
// GRU's per-step backward no longer forms its weight gradients, the segment stage does, one GEMM
// per product; JIT (float64) and reference evaluator agree stage by stage and through BPTT (with
// and without segments, B = 1 and 3) on gru, dale_rnn (hoisted too) and pbrc (a Hebbian trace),
// and the gradient matches the plain evaluator and finite differences; the memory budget counts
// the buffer. BPTT runs that plan at small batches (kSegmentGemmMaxBatch) and where a weight
// gradient is large (kSegmentGemmMinElements), the per-step plan otherwise, and the JIT compiles
// the segment plan on first use, once.
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "BpttCheck.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "pipeline/Hoist.h"
#include "pipeline/SegmentGemm.h"
#include "sema/Program.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return lowerSource("cells/" + name + ".cell", o); }

// BPTT through the JIT (deferred), the evaluator of the deferred step and the evaluator of the
// plain step: the same loss and gradient; and the JIT's gradient against finite differences.
void checkSequences(const StepIR& ir, double paramScale, uint64_t seed) {
  const StepIR staged = deferWeightGradients(hoist(ir));
  REQUIRE(!staged.deferred.empty());
  auto jit = compileCell<double>(ir);
  REQUIRE(jit->segmentPlan());
  REQUIRE(jit->segmentPlan()->hasSegment);
  eval::Evaluator viaStages(staged), plain(ir);
  REQUIRE(plain.segmentSize(3) == 0);
  REQUIRE(jit->segmentSize(3) == viaStages.segmentSize(3));
  std::mt19937_64 rng(seed);
  const int64_t T = 6;
  for (int64_t B : {1, 3}) {
    std::vector<double> params = randomVec(ir.layout.paramSize, rng, paramScale);
    TrialBatch b = randomBatch(ir.layout, B, T, rng);
    auto noise = randomNoise(ir.layout, B, T, rng);
    for (int64_t seg : {int64_t{0}, int64_t{4}, int64_t{2}}) {
      DYNAMIC_SECTION("B = " << B << ", segment " << seg) {
        const int64_t budget = kDefaultMemoryBudgetMb << 20;
        Bptt<double> viaJit(*jit, B, T, seg, budget, SegmentGemms::On),
            viaStaged(viaStages, B, T, seg, budget, SegmentGemms::On), viaPlain(plain, B, T, seg);
        if (seg) REQUIRE(viaJit.segment() < T);
        checkAgainstEvaluators(viaJit, viaStaged, viaPlain, params, b, noise, rng);
      }
    }
  }
}

}  // namespace

TEST_CASE("segment GEMMs: the GRU's weight gradients leave the per-step backward", "[segment][plan]") {
  const int64_t n = 8;
  StepIR ir = lowerCell("gru", {{"n", static_cast<double>(n)}});
  // Before: the per-step backward forms every weight gradient (a BatchOuterSum GEMM, K = B).
  codegen::Plan before = codegen::makePlan(hoist(ir));
  int perStep = 0;
  for (const codegen::Kernel& k : before.backward.kernels)
    perStep += ir.g[k.node].op == ir::Op::BatchOuterSum;
  CHECK(perStep == 7);  // W_zh, W_rh, W_hh, the three W_?x, W_out
  CHECK_FALSE(before.hasSegment);

  StepIR d = deferWeightGradients(hoist(ir));
  codegen::Plan plan = codegen::makePlan(d);
  INFO(codegen::printPlan(d, plan));
  REQUIRE(plan.hasSegment);
  REQUIRE(d.deferred.size() == 7);
  for (const codegen::Kernel& k : plan.backward.kernels) CHECK(d.g[k.node].op != ir::Op::BatchOuterSum);
  // The segment stage: one GEMM per deferred product, adding to that param's gradient.
  REQUIRE(plan.segment.kernels.size() == d.deferred.size());
  for (size_t i = 0; i < d.deferred.size(); ++i) {
    const codegen::Kernel& k = plan.segment.kernels[i];
    const StepIR::Deferred& p = d.deferred[i];
    CHECK(k.kind == codegen::Kernel::Kind::Gemm);
    CHECK(k.node == p.product);
    CHECK(k.accumulate);
    CHECK_FALSE(p.toHoisted);
    CHECK(k.out.buf == codegen::Buf::DParams);
    CHECK(k.out.fixed == ir.layout.params[static_cast<size_t>(p.slot)].offset);
    CHECK(d.g[p.product].shape.numel() == ir.layout.params[static_cast<size_t>(p.slot)].size);
  }
  // The W_zh product reads dz (a backward value) and h (the state), each a column range of the
  // segment buffer; the per-step backward copies both there.
  int wzh = -1;
  for (size_t i = 0; i < ir.layout.params.size(); ++i)
    if (ir.layout.params[i].name == "W_zh") wzh = static_cast<int>(i);
  bool found = false;
  for (const StepIR::Deferred& p : d.deferred)
    if (p.slot == wzh) {
      found = true;
      CHECK(d.g[d.segmentValues[static_cast<size_t>(p.b)]].op == ir::Op::State);
      CHECK(d.g[d.segmentValues[static_cast<size_t>(p.a)]].shape.batched);
    }
  CHECK(found);
  int toSegment = 0;
  for (const codegen::Kernel& k : plan.backward.kernels)
    if (k.out.buf == codegen::Buf::Segment) {
      ++toSegment;
      CHECK(k.out.batchStride == d.segmentSize);
    }
  CHECK(toSegment == static_cast<int>(d.segmentValues.size()));
  // The per-step backward adds no zeros to the deferred params' gradients.
  for (const codegen::Kernel& k : plan.backward.kernels)
    if (k.out.buf == codegen::Buf::DParams) CHECK(d.g[k.node].op == ir::Op::SumBatch);
}

TEST_CASE("segment GEMMs: dale_rnn defers W_rec's adjoint into the d-hoisted buffer", "[segment][plan]") {
  StepIR ir = lowerCell("dale_rnn", {{"n", 10}, {"n_out", 3}, {"n_in", 2}});
  StepIR d = deferWeightGradients(hoist(ir));
  bool intoHoisted = false;
  for (const StepIR::Deferred& p : d.deferred)
    if (p.toHoisted) intoHoisted = intoHoisted || d.hoistedSlots[static_cast<size_t>(p.slot)].name == "W_rec";
  CHECK(intoHoisted);
  codegen::Plan plan = codegen::makePlan(d);
  INFO(codegen::printPlan(d, plan));
  bool segmentToHoisted = false;
  for (const codegen::Kernel& k : plan.segment.kernels)
    segmentToHoisted = segmentToHoisted || k.out.buf == codegen::Buf::DHoisted;
  CHECK(segmentToHoisted);
  for (const codegen::Kernel& k : plan.backward.kernels) CHECK(d.g[k.node].op != ir::Op::BatchOuterSum);
}

TEST_CASE("segment GEMMs: a step with no weight-gradient product is unchanged", "[segment][plan]") {
  std::string err;
  SourceFile f = SourceFile::load(std::string(CELLC_SOURCE_DIR) + "/tests/fixtures/valid/minimal.cell", &err);
  DiagnosticSink diag;
  std::optional<Program> prog = loadCell(f, {}, diag);
  REQUIRE(prog);
  StepIR ir = lower(*prog);
  StepIR d = deferWeightGradients(hoist(ir));
  CHECK(d.deferred.empty());
  CHECK(d.segmentSize == 0);
  CHECK(d.backwardRoots() == ir.backwardRoots());
  codegen::Plan a = codegen::makePlan(ir), b = codegen::makePlan(d);
  CHECK_FALSE(b.hasSegment);
  CHECK(codegen::printPlan(ir, a) == codegen::printPlan(d, b));
  CHECK(compileCell<double>(ir)->segmentSize(4) == 0);
}

TEST_CASE("segment GEMMs: JIT stages equal the evaluator's", "[segment][jit]") {
  StepIR ir = lowerCell("gru", {{"n", 12}, {"n_in", 2}});
  StepIR d = deferWeightGradients(hoist(ir));
  auto jit = compileCell<double>(ir);
  eval::Evaluator ev(d), plain(ir);
  const ir::Layout& L = ir.layout;
  std::mt19937_64 rng(3);
  const int64_t B = 3, steps = 2;
  REQUIRE(jit->segmentSize(B) == d.segmentSize * B);
  std::vector<double> p = randomVec(L.paramSize, rng, 0.7);
  std::vector<double> segJ(static_cast<size_t>(steps * jit->segmentSize(B)), 0.0), segE(segJ.size(), 0.0);
  std::vector<double> dpj(L.paramSize, 0.5), dpe(L.paramSize, 0.5), dpPlain(L.paramSize, 0.5);
  for (int64_t k = 0; k < steps; ++k) {
    std::vector<double> s = randomVec(L.stateSize * B, rng, 1), x = randomVec(L.inputSize * B, rng, 1),
                        as = randomVec(L.stateSize * B, rng, 1), ao = randomVec(L.outputSize * B, rng, 1);
    std::vector<double> sn(s.size()), o(L.outputSize * B), tape(static_cast<size_t>(jit->tapeSize(B)) + 1);
    jit->run(Stage::ForwardHoisted, {.params = p.data(),
                                     .state = s.data(),
                                     .input = x.data(),
                                     .tape = tape.data(),
                                     .stateNext = sn.data(),
                                     .output = o.data(),
                                     .batch = B});
    std::vector<double> dsj(s.size()), dse(s.size()), dsp(s.size()), dxj(x.size()), dxe(x.size()), dxp(x.size());
    jit->run(Stage::BackwardSegment, {.params = p.data(),
                                      .state = s.data(),
                                      .input = x.data(),
                                      .tape = tape.data(),
                                      .dStateNext = as.data(),
                                      .dOutput = ao.data(),
                                      .dState = dsj.data(),
                                      .dInput = dxj.data(),
                                      .dParams = dpj.data(),
                                      .segment = segJ.data(),
                                      .k = k,
                                      .batch = B});
    ev.run(Stage::BackwardSegment, {.params = p.data(),
                                    .state = s.data(),
                                    .input = x.data(),
                                    .dStateNext = as.data(),
                                    .dOutput = ao.data(),
                                    .dState = dse.data(),
                                    .dInput = dxe.data(),
                                    .dParams = dpe.data(),
                                    .segment = segE.data(),
                                    .k = k,
                                    .batch = B});
    plain.run(Stage::Backward, {.params = p.data(),
                                .state = s.data(),
                                .input = x.data(),
                                .dStateNext = as.data(),
                                .dOutput = ao.data(),
                                .dState = dsp.data(),
                                .dInput = dxp.data(),
                                .dParams = dpPlain.data(),
                                .batch = B});
    CHECK(relErr(dsj, dse) <= 1e-12);
    CHECK(relErr(dsj, dsp) <= 1e-12);
    CHECK(relErr(dxj, dxp) <= 1e-12);
  }
  CHECK(relErr(segJ, segE) <= 1e-12);
  // Before the segment stage the weight gradients are missing; after it, complete.
  CHECK(relErr(dpj, dpPlain) > 1e-3);
  jit->run(Stage::SegmentEpilogue, {.params = p.data(),
                                    .dParams = dpj.data(),
                                    .segment = segJ.data(),
                                    .steps = steps,
                                    .batch = B});
  ev.run(Stage::SegmentEpilogue, {.params = p.data(),
                                  .dParams = dpe.data(),
                                  .segment = segE.data(),
                                  .steps = steps,
                                  .batch = B});
  CHECK(relErr(dpj, dpe) <= 1e-12);
  CHECK(relErr(dpj, dpPlain) <= 1e-12);
}

TEST_CASE("segment GEMMs: the self-contained backward stays complete", "[segment][jit]") {
  StepIR ir = lowerCell("gru", {{"n", 5}});
  auto jit = compileCell<double>(ir);
  eval::Evaluator plain(ir);
  const ir::Layout& L = ir.layout;
  std::mt19937_64 rng(4);
  const int64_t B = 2;
  std::vector<double> p = randomVec(L.paramSize, rng, 0.7), s = randomVec(L.stateSize * B, rng, 1),
                      x = randomVec(L.inputSize * B, rng, 1), as = randomVec(L.stateSize * B, rng, 1),
                      ao = randomVec(L.outputSize * B, rng, 1);
  std::vector<double> sn(s.size()), o(L.outputSize * B), tape(static_cast<size_t>(jit->tapeSize(B)) + 1);
  jit->run(Stage::Forward, {.params = p.data(),
                            .state = s.data(),
                            .input = x.data(),
                            .tape = tape.data(),
                            .stateNext = sn.data(),
                            .output = o.data(),
                            .batch = B});
  std::vector<double> ds1(s.size()), ds2(s.size()), dx1(x.size()), dx2(x.size()), dp1(L.paramSize, 0.0),
      dp2(L.paramSize, 0.0);
  jit->run(Stage::Backward, {.params = p.data(),
                             .state = s.data(),
                             .input = x.data(),
                             .tape = tape.data(),
                             .dStateNext = as.data(),
                             .dOutput = ao.data(),
                             .dState = ds1.data(),
                             .dInput = dx1.data(),
                             .dParams = dp1.data(),
                             .batch = B});
  plain.run(Stage::Backward, {.params = p.data(),
                              .state = s.data(),
                              .input = x.data(),
                              .dStateNext = as.data(),
                              .dOutput = ao.data(),
                              .dState = ds2.data(),
                              .dInput = dx2.data(),
                              .dParams = dp2.data(),
                              .batch = B});
  CHECK(relErr(dp1, dp2) <= 1e-12);
  CHECK(relErr(ds1, ds2) <= 1e-12);
}

TEST_CASE("segment GEMMs: BPTT through gru, JIT = evaluator = finite differences", "[segment][bptt]") {
  // n = 12: the products are GEMM calls (kInlineContraction is 8), reading the segment buffer.
  checkSequences(lowerCell("gru", {{"n", 12}, {"n_in", 2}}), 0.5, 11);
}

TEST_CASE("segment GEMMs: BPTT through dale_rnn, JIT = evaluator = finite differences", "[segment][bptt]") {
  checkSequences(lowerCell("dale_rnn", {{"n", 10}, {"n_out", 3}, {"n_in", 2}}), 0.4, 12);
  checkSequences(lowerCell("dale_rnn", {{"n", 3}, {"n_out", 2}, {"n_in", 2}}), 0.4, 14);  // inline products
}

TEST_CASE("segment GEMMs: BPTT through pbrc, JIT = evaluator = finite differences", "[segment][bptt]") {
  checkSequences(lowerCell("pbrc", {{"n", 10}, {"n_in", 2}}), 0.5, 13);
}

TEST_CASE("segment GEMMs: the memory budget counts the segment buffer", "[segment][bptt]") {
  StepIR ir = lowerCell("gru", {{"n", 16}});
  auto jit = compileCell<double>(ir);
  const int64_t B = 4, T = 20, S = ir.layout.stateSize * B, O = ir.layout.outputSize * B;
  const int64_t tapeN = jit->tapeSize(B), segN = jit->segmentSize(B);
  REQUIRE(segN > 0);
  const int64_t without = bpttBytes(T, T, S, tapeN, O, 8), with = bpttBytes(T, T, S, tapeN, O, 8, segN);
  CHECK(with == without + 8 * T * segN);
  // A budget that holds every step's tape but not their segment rows: segments it is.
  Bptt<double> bptt(*jit, B, T, 0, (without + with) / 2, SegmentGemms::On);
  CHECK(bptt.segment() < T);
  CHECK(bpttBytes(T, bptt.segment(), S, tapeN, O, 8, segN) <= (without + with) / 2);
  Bptt<double> roomy(*jit, B, T, 0, with, SegmentGemms::On);
  CHECK(roomy.segment() == T);
}

// The plan BPTT runs by batch: the segment plan up to kSegmentGemmMaxBatch (the kernel compiles it
// then, and the memory counts its buffer), the per-step plan beyond (nothing of the segment plan
// compiled, nor counted). Each gives the bits of a run that forces it.
TEST_CASE("segment GEMMs: BPTT runs the segment plan at small batches, the per-step plan beyond",
          "[segment][bptt]") {
  const StepIR ir = lowerCell("gru", {{"n", 12}, {"n_in", 2}});
  const int64_t T = 6, budget = kDefaultMemoryBudgetMb << 20;
  std::mt19937_64 rng(21);
  std::vector<double> params = randomVec(ir.layout.paramSize, rng, 0.5);
  for (int64_t B : {int64_t{1}, kSegmentGemmMaxBatch, kSegmentGemmMaxBatch + 1}) {
    DYNAMIC_SECTION("B = " << B) {
      const bool small = B <= kSegmentGemmMaxBatch;
      auto jit = compileCell<double>(ir);
      TrialBatch b = randomBatch(ir.layout, B, T, rng);
      Bptt<double> chosen(*jit, B, T);
      CHECK(chosen.segmentGemms() == small);
      auto r = chosen.lossAndGradient(params, b, {}, {}, {});
      CHECK(jit->segmentCompiles() == (small ? 1 : 0));
      const int64_t S = ir.layout.stateSize * B, O = ir.layout.outputSize * B;
      CHECK(r.peakBytes ==
            bpttBytes(T, r.segment, S, jit->tapeSize(B), O, 8, small ? jit->segmentSize(B) : 0));
      Bptt<double> forced(*jit, B, T, 0, budget, small ? SegmentGemms::On : SegmentGemms::Off);
      auto f = forced.lossAndGradient(params, b, {}, {}, {});
      CHECK(r.dParams == f.dParams);
      CHECK(r.loss == f.loss);
    }
  }
}

TEST_CASE("segment GEMMs: BPTT runs the segment plan at any batch when a weight gradient is large",
          "[segment][bptt]") {
  // GRU n = 1024: its [1024, 1024] weight gradients are above kSegmentGemmMinElements; n = 256's
  // [256, 256] ones are not.
  auto wide = compileCell<float>(lowerCell("gru", {{"n", 1024}, {"n_in", 1}}));
  auto narrow = compileCell<float>(lowerCell("gru", {{"n", 256}, {"n_in", 1}}));
  CHECK(wide->traits().weightGradientElements == 1024 * 1024);
  CHECK(narrow->traits().weightGradientElements == 256 * 256);
  REQUIRE(wide->traits().weightGradientElements >= kSegmentGemmMinElements);
  REQUIRE(narrow->traits().weightGradientElements < kSegmentGemmMinElements);
  for (int64_t B : {int64_t{1}, int64_t{16}, int64_t{64}}) {
    INFO("B = " << B);
    CHECK(Bptt<float>(*wide, B, 2).segmentGemms());
    CHECK(Bptt<float>(*narrow, B, 2).segmentGemms() == (B <= kSegmentGemmMaxBatch));
    CHECK_FALSE(Bptt<float>(*wide, B, 2, 0, kDefaultMemoryBudgetMb << 20, SegmentGemms::Off).segmentGemms());
  }
}

// Both plans, as BPTT chooses them, against the plain evaluator and finite differences.
static void checkBothPlans(const StepIR& ir, double paramScale, uint64_t seed) {
  auto jit = compileCell<double>(ir);
  eval::Evaluator plain(ir);
  std::mt19937_64 rng(seed);
  const int64_t T = 6;
  for (int64_t B : {int64_t{1}, kSegmentGemmMaxBatch + 1}) {
    std::vector<double> params = randomVec(ir.layout.paramSize, rng, paramScale);
    TrialBatch b = randomBatch(ir.layout, B, T, rng);
    auto noise = randomNoise(ir.layout, B, T, rng);
    for (int64_t seg : {int64_t{0}, int64_t{2}}) {
      DYNAMIC_SECTION("B = " << B << ", segment " << seg) {
        Bptt<double> viaJit(*jit, B, T, seg), viaPlain(plain, B, T, seg);
        CHECK(viaJit.segmentGemms() == (B <= kSegmentGemmMaxBatch));
        auto rj = viaJit.lossAndGradient(params, b, {}, noise, {});
        auto rp = viaPlain.lossAndGradient(params, b, {}, noise, {});
        CHECK(rj.loss == Approx(rp.loss).epsilon(1e-12));
        CHECK(relErr(rj.dParams, rp.dParams) <= 1e-12);
        checkFiniteDifferences(viaJit, params, b, noise, rj.dParams, rng);
      }
    }
  }
}

TEST_CASE("segment GEMMs: both plans = evaluator = finite differences on gru", "[segment][bptt]") {
  checkBothPlans(lowerCell("gru", {{"n", 12}, {"n_in", 2}}), 0.5, 31);
}

TEST_CASE("segment GEMMs: both plans = evaluator = finite differences on dale_rnn", "[segment][bptt]") {
  checkBothPlans(lowerCell("dale_rnn", {{"n", 10}, {"n_out", 3}, {"n_in", 2}}), 0.4, 32);
}

TEST_CASE("segment GEMMs: both plans = evaluator = finite differences on pbrc", "[segment][bptt]") {
  checkBothPlans(lowerCell("pbrc", {{"n", 10}, {"n_in", 2}}), 0.5, 33);
}

TEST_CASE("segment GEMMs: the JIT compiles the segment plan on first use, once, whichever threads ask",
          "[segment][jit]") {
  auto jit = compileCell<float>(lowerCell("gru", {{"n", 12}}));
  CHECK(jit->segmentCompiles() == 0);  // compiling the cell makes only the per-step plan
  CHECK(jit->segmentSize(2) > 0);      // planning it compiles nothing either
  CHECK(jit->segmentCompiles() == 0);
  std::atomic<int> ready{0};
  auto ask = [&] {
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    jit->compileSegmentPlan();
  };
  std::thread a(ask), b(ask);
  a.join();
  b.join();
  CHECK(jit->segmentCompiles() == 1);
  std::mt19937_64 rng(5);
  std::vector<float> params(static_cast<size_t>(jit->layout().paramSize), 0.1f);
  Bptt<float> bptt(*jit, 1, 4);
  REQUIRE(bptt.segmentGemms());
  TrialBatch tb = randomBatch(jit->layout(), 1, 4, rng);
  auto r = bptt.lossAndGradient(params, tb, {}, {}, {});
  CHECK(std::isfinite(r.loss));
  CHECK(jit->segmentCompiles() == 1);
}

// The segment plan's backward reads the tape the per-step forward writes; where it would not,
// the kernel could not use it (segmentSize 0): every cell's can.
TEST_CASE("segment GEMMs: the segment plan reads the per-step plan's tape, for every cell", "[segment][plan]") {
  int deferring = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CELLC_SOURCE_DIR "/cells")) {
    const std::string name = entry.path().stem().string();
    INFO(name);
    const StepIR h = hoist(lowerCell(name, {}));
    const StepIR d = deferWeightGradients(h);
    if (d.deferred.empty()) continue;
    ++deferring;
    CHECK(codegen::sameTape(codegen::makePlan(h), codegen::makePlan(d)));
  }
  CHECK(deferring >= 5);
}
