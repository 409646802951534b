// The input stage (pipeline/InputStage.h): a step's products of inputs and params alone (the
// GRU's W_zx @ x, W_rx @ x, W_hx @ x) leave the per-step functions for an input prologue over all
// steps x B rows, and their weight gradients for an input epilogue; products summed inline (a
// 1-dim input) are left in the step. Through BPTT (float64), the JIT's staged walk, the
// evaluator's staged walk and the plain evaluator give the same loss and gradient, and the JIT's
// gradient matches finite differences: gru, lstm, dale_rnn (its input weights hoisted, so the
// staged value reads a hoisted one; with Omega, whose gradient has no finite-difference check)
// and pbrc, with segments and shards.
#include <catch2/catch.hpp>

#include <random>

#include "BpttCheck.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return lowerSource("cells/" + name + ".cell", o); }

int count(const codegen::FunctionPlan& fp, ir::Op op, const StepIR& ir) {
  int n = 0;
  for (const codegen::Kernel& k : fp.kernels) n += ir.g[k.node].op == op;
  return n;
}

StepIR lowerText(const std::string& text) {
  SourceFile f("staged.cell", text);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, {}, d);
  REQUIRE(p);
  return lower(*p);
}

// The staged walk (JIT and evaluator) against the plain evaluator, and finite differences.
void checkSequences(const StepIR& ir, const std::string& cell, double paramScale, uint64_t seed,
                    bool withOmega = false) {
  const PlannedStep planned = planStep(ir);
  REQUIRE(planned.staged.row > 0);
  auto jit = compileCell<double>(ir, {.omega = withOmega});
  REQUIRE(jit->traits().stagedWidth == planned.staged.row);
  eval::Evaluator viaStages(planned.staged.ir), plain(ir);
  std::mt19937_64 rng(seed);
  const int64_t T = 5, budget = kDefaultMemoryBudgetMb << 20;
  for (int64_t B : {1, 3}) {
    std::vector<double> params = randomVec(ir.layout.paramSize, rng, paramScale);
    TrialBatch b = randomBatch(ir.layout, B, T, rng);
    auto noise = randomNoise(ir.layout, B, T, rng);
    // Chunks of the whole sequence, of 2 steps, and of 3 (straddling the segments of 2).
    for (auto [seg, chunk] : {std::pair<int64_t, int64_t>{0, T}, {0, 2}, {2, T}, {2, 3}}) {
      DYNAMIC_SECTION(cell << ", B = " << B << ", segment " << seg << ", chunk " << chunk) {
        Bptt<double> viaJit(*jit, B, T, seg, budget, SegmentGemms::Off, 1, true),
            viaStaged(viaStages, B, T, seg, budget, SegmentGemms::Off, 1, true), viaPlain(plain, B, T, seg);
        viaJit.setInputStageChunk(chunk);
        viaStaged.setInputStageChunk(chunk);
        REQUIRE(viaJit.inputStageChunk() == chunk);
        REQUIRE(viaJit.inputStage());
        REQUIRE(viaStaged.inputStage());
        REQUIRE(!viaPlain.inputStage());
        if (!withOmega) {
          checkAgainstEvaluators(viaJit, viaStaged, viaPlain, params, b, noise, rng);
          return;
        }
        // Omega's gradient holds v and x constant (pycog's): not the loss's, so no finite
        // differences; the three walks still agree.
        for (Bptt<double>* w : {&viaJit, &viaStaged, &viaPlain}) w->setOmega({0.5, 0});
        auto rj = viaJit.lossAndGradient(params, b, {}, noise, {});
        auto rs = viaStaged.lossAndGradient(params, b, {}, noise, {});
        auto rp = viaPlain.lossAndGradient(params, b, {}, noise, {});
        REQUIRE(rp.omega > 0);
        CHECK(rj.loss == Approx(rp.loss).epsilon(1e-12));
        CHECK(rs.loss == Approx(rp.loss).epsilon(1e-12));
        CHECK(relErr(rj.dParams, rp.dParams) <= 1e-12);
        CHECK(relErr(rs.dParams, rp.dParams) <= 1e-12);
      }
    }
  }
}

void checkSequences(const std::string& cell, const Overrides& o, double paramScale, uint64_t seed,
                    bool withOmega = false) {
  checkSequences(lowerCell(cell, o), cell, paramScale, seed, withOmega);
}

}  // namespace

TEST_CASE("input stage: the GRU's input products run once over the sequence", "[input_stage][plan]") {
  const StepIR ir = lowerCell("gru", {{"n_in", 16}, {"n", 12}});
  const PlannedStep s = planStep(ir);
  REQUIRE(s.staged.row == 3 * 12);
  const StepIR& st = s.staged.ir;
  CHECK(st.staged.size() == 3);
  CHECK(st.dStaged.size() == 3);
  CHECK(st.dInput.empty());
  const codegen::Plan& p = s.staged.plan;
  REQUIRE(p.hasStaged);
  // Three products over steps x B rows before the walk, three weight gradients after it.
  CHECK(count(p.inputPrologue, ir::Op::MatMul, st) == 3);
  CHECK(count(p.inputEpilogue, ir::Op::BatchOuterSum, st) == 3);
  // The per-step functions: only the recurrent products (and the readout) are left.
  CHECK(count(p.forward, ir::Op::MatMul, st) == count(s.plan.forward, ir::Op::MatMul, s.ir) - 3);
  CHECK(count(p.backward, ir::Op::BatchOuterSum, st) == count(s.plan.backward, ir::Op::BatchOuterSum, s.ir) - 3);
  for (const codegen::Kernel& k : p.backward.kernels) CHECK(k.out.buf != codegen::Buf::DInput);
  // `cellc emit-llvm --plan` names the stages.
  const std::string text = codegen::printPlan(st, p);
  CHECK(text.find("input prologue (once per sequence, batch = steps x B): 3 kernels") != std::string::npos);
  CHECK(text.find("-> d_staged+") != std::string::npos);
}

TEST_CASE("input stage: inline input products (a 1-dim input) are not staged", "[input_stage][plan]") {
  CHECK(planStep(lowerCell("gru", {{"n_in", 1}, {"n", 12}})).staged.row == 0);
  CHECK(planStep(lowerCell("nbrc", {{"n_in", 8}, {"n", 12}})).staged.row == 0);
  CHECK(planStep(lowerCell("nbrc", {{"n_in", 9}, {"n", 12}})).staged.row > 0);
}

TEST_CASE("input stage: BPTT through gru, JIT = evaluator = finite differences", "[input_stage][bptt]") {
  checkSequences("gru", {{"n_in", 12}, {"n", 8}}, 0.3, 11);
}

TEST_CASE("input stage: BPTT through lstm, JIT = evaluator = finite differences", "[input_stage][bptt]") {
  checkSequences("lstm", {{"n_in", 10}, {"n", 7}}, 0.3, 12);
}

TEST_CASE("input stage: BPTT through dale_rnn (hoisted input weights) with Omega, JIT = evaluator = finite differences",
          "[input_stage][bptt]") {
  const StepIR ir = lowerCell("dale_rnn", {{"n_in", 12}, {"n", 10}});
  const PlannedStep s = planStep(ir);
  REQUIRE(s.staged.row > 0);
  bool readsHoisted = false;  // the staged value is a product with a hoisted matrix
  for (ir::NodeId id : ir::topoOrder(s.staged.ir.g, s.staged.ir.staged))
    readsHoisted = readsHoisted || s.staged.ir.g[id].op == ir::Op::Hoisted;
  CHECK(readsHoisted);
  checkSequences("dale_rnn", {{"n_in", 12}, {"n", 10}}, 0.3, 13, true);
}

TEST_CASE("input stage: BPTT through pbrc (a Hebbian trace), JIT = evaluator = finite differences",
          "[input_stage][bptt]") {
  checkSequences("pbrc", {{"n_in", 10}, {"n", 6}}, 0.3, 14);
}

TEST_CASE("input stage: shards stage their own trials; off by default and beside the segment plan",
          "[input_stage][bptt]") {
  const StepIR ir = lowerCell("gru", {{"n_in", 12}, {"n", 8}});
  auto jit = compileCell<double>(ir);
  eval::Evaluator plain(ir);
  std::mt19937_64 rng(15);
  const int64_t B = 6, T = 4, budget = kDefaultMemoryBudgetMb << 20;
  CHECK(!Bptt<double>(*jit, B, T).inputStage());
  CHECK(!Bptt<double>(*jit, B, T, 0, budget, SegmentGemms::On, 1, true).inputStage());
  Bptt<double> sharded(*jit, B, T, 0, budget, SegmentGemms::Off, 2, true), whole(plain, B, T, 0, budget,
                                                                                  SegmentGemms::Off, 1);
  REQUIRE(sharded.shards() == 2);
  sharded.setInputStageChunk(3);
  REQUIRE(sharded.inputStage());
  std::vector<double> params = randomVec(ir.layout.paramSize, rng, 0.3);
  TrialBatch b = randomBatch(ir.layout, B, T, rng);
  auto rs = sharded.lossAndGradient(params, b, {}, {}, {});
  auto rw = whole.lossAndGradient(params, b, {}, {}, {});
  CHECK(rs.loss == Approx(rw.loss).epsilon(1e-12));
  CHECK(relErr(rs.dParams, rw.dParams) <= 1e-12);
  // The chunk buffers count: 2 x chunk x B x width doubles beyond the plain walk's (whose tape may
  // be longer). A chunk is kStagedChunkBytes of rows.
  Bptt<double> plainJit(*jit, B, T, 0, budget, SegmentGemms::Off, 1, false),
      stagedJit(*jit, B, T, 0, budget, SegmentGemms::Off, 1, true);
  const int64_t W = jit->traits().stagedWidth;
  CHECK(stagedJit.inputStageChunk() == std::min<int64_t>(T, kStagedChunkBytes / (B * W * 8)));
  stagedJit.setInputStageChunk(2);
  const int64_t extra = stagedJit.lossAndGradient(params, b, {}, {}, {}).peakBytes -
                        plainJit.lossAndGradient(params, b, {}, {}, {}).peakBytes;
  CHECK(extra == 2 * 2 * B * W * 8 - T * (jit->tapeSize(B) - jit->stagedTapeSize(B)) * 8);
}

TEST_CASE("input stage: a nonlinear staged value, read back by the backward and the input epilogue",
          "[input_stage][bptt]") {
  const StepIR ir = lowerText(R"(cell gate {
    dim n_in = 10
    dim n = 6
    input x[n_in]
    state h[n] = 0
    param W_h[n, n] ~ orthogonal()
    param W_x[n, n_in] ~ lecun_normal()
    param b[n] ~ zeros()
    e = tanh(W_x @ x + b)
    h' = tanh(W_h @ h) * e + 0.5 * h
    output y = h'
  })");
  const PlannedStep s = planStep(ir);
  REQUIRE(s.staged.row == 6);
  CHECK(s.staged.plan.stagedReadBack);
  CHECK(compileCell<double>(ir)->traits().stagedReadBack);
  // gru's staged values are linear: nothing reads them after the forward.
  CHECK(!planStep(lowerCell("gru", {{"n_in", 12}, {"n", 8}})).staged.plan.stagedReadBack);
  checkSequences(ir, "gate", 0.5, 16);
}
