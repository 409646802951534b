// The input adjoint on request (Plan::inputAdjointOptional): training never reads d_input, so the
// backward skips the kernels only it needs when the caller passes null. The plan flags exactly
// those kernels (nbrc's three input-weight products and their sum); every cell's backward plans,
// per step and segment, allow it; a step with a null d_input gives the same bits for everything
// else as one with a buffer (per step and segment plan, hoisted cells too); and BPTT, which now
// passes null, agrees with the evaluator (given a buffer) and finite differences.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "BpttCheck.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "pipeline/Hoist.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return lowerSource("cells/" + name + ".cell", o); }

bool sameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

TEST_CASE("input adjoint: the plan flags the kernels only d_input needs", "[input-adjoint][plan]") {
  StepIR ir = lowerCell("nbrc", {{"n_in", 32}, {"n_out", 32}});
  codegen::Plan plan = codegen::makePlan(ir);
  REQUIRE(plan.inputAdjointOptional);
  int gemms = 0, others = 0;
  for (const codegen::Kernel& k : plan.backward.kernels) {
    if (!k.inputAdjointOnly) {
      CHECK(k.out.buf != codegen::Buf::DInput);
      continue;
    }
    (k.kind == codegen::Kernel::Kind::Gemm ? gemms : others) += 1;
  }
  CHECK(gemms == 3);  // dz W_zx, dr W_rx, dc W_hx
  CHECK(others == 1);  // their sum, into d_input
  for (const codegen::Kernel& k : plan.forward.kernels) CHECK_FALSE(k.inputAdjointOnly);
  CHECK(codegen::printPlan(ir, plan).find("(skipped without d_input)") != std::string::npos);
}

TEST_CASE("input adjoint: every cell's backward plans may skip it", "[input-adjoint][plan]") {
  for (const char* cell : {"gru", "brc", "nbrc", "dale_rnn", "pbrc", "pbrc_split", "plastic_gru", "plastic_gru_clip"}) {
    INFO(cell);
    auto jit = compileCell<double>(lowerCell(cell, {{"n_in", 12}}));
    CHECK(jit->traits().inputAdjointOptional);
    REQUIRE(jit->segmentPlan());
    CHECK(jit->segmentPlan()->inputAdjointOptional);
  }
}

TEST_CASE("input adjoint: a null d_input changes no other bit, per step and segment plan", "[input-adjoint][jit]") {
  for (auto [cell, o] : {std::pair<std::string, Overrides>{"nbrc", {{"n_in", 12}, {"n", 10}}},
                         {"gru", {{"n_in", 12}, {"n", 10}}},
                         {"dale_rnn", {{"n_in", 12}, {"n", 10}, {"n_out", 3}}},
                         {"pbrc", {{"n_in", 12}, {"n", 10}}}}) {
    INFO(cell);
    StepIR ir = lowerCell(cell, o);
    auto jit = compileCell<double>(ir);
    REQUIRE(jit->traits().inputAdjointOptional);
    const ir::Layout& L = ir.layout;
    std::mt19937_64 rng(51);
    const int64_t B = 3;
    std::vector<double> p = randomVec(L.paramSize, rng, 0.5), s = randomVec(L.stateSize * B, rng, 1),
                        x = randomVec(L.inputSize * B, rng, 1), as = randomVec(L.stateSize * B, rng, 1),
                        ao = randomVec(L.outputSize * B, rng, 1);
    std::vector<double> nz(static_cast<size_t>(L.noiseSize * B), 0.0);
    std::vector<double> hoisted(static_cast<size_t>(jit->traits().hoistedSize));
    jit->run(Stage::Prologue, {.params = p.data(), .hoisted = hoisted.data()});
    std::vector<double> sn(s.size()), out(L.outputSize * B), tape(static_cast<size_t>(jit->tapeSize(B)) + 1);
    jit->run(Stage::ForwardHoisted, {.params = p.data(),
                                     .hoisted = hoisted.data(),
                                     .state = s.data(),
                                     .input = x.data(),
                                     .noise = nz.data(),
                                     .tape = tape.data(),
                                     .stateNext = sn.data(),
                                     .output = out.data(),
                                     .batch = B});
    struct Result {
      std::vector<double> ds, dp, dh, seg;
    };
    auto run = [&](bool withInput, bool segmentPlan) {
      Result r{std::vector<double>(s.size()), std::vector<double>(L.paramSize, 0.0),
               std::vector<double>(hoisted.size(), 0.0),
               std::vector<double>(static_cast<size_t>(jit->segmentSize(B)), 0.0)};
      std::vector<double> dx(x.size());
      double* dInput = withInput ? dx.data() : nullptr;
      if (segmentPlan)
        jit->run(Stage::BackwardSegment, {.params = p.data(),
                                          .hoisted = hoisted.data(),
                                          .state = s.data(),
                                          .input = x.data(),
                                          .noise = nz.data(),
                                          .tape = tape.data(),
                                          .dStateNext = as.data(),
                                          .dOutput = ao.data(),
                                          .dState = r.ds.data(),
                                          .dInput = dInput,
                                          .dParams = r.dp.data(),
                                          .dHoisted = r.dh.data(),
                                          .segment = r.seg.data(),
                                          .k = 0,
                                          .batch = B});
      else
        jit->run(Stage::BackwardHoisted, {.params = p.data(),
                                          .hoisted = hoisted.data(),
                                          .state = s.data(),
                                          .input = x.data(),
                                          .noise = nz.data(),
                                          .tape = tape.data(),
                                          .dStateNext = as.data(),
                                          .dOutput = ao.data(),
                                          .dState = r.ds.data(),
                                          .dInput = dInput,
                                          .dParams = r.dp.data(),
                                          .dHoisted = r.dh.data(),
                                          .batch = B});
      return r;
    };
    for (bool segmentPlan : {false, true}) {
      INFO((segmentPlan ? "segment plan" : "per-step plan"));
      const Result with = run(true, segmentPlan), without = run(false, segmentPlan);
      CHECK(sameBits(with.ds, without.ds));
      CHECK(sameBits(with.dp, without.dp));
      CHECK(sameBits(with.dh, without.dh));
      CHECK(sameBits(with.seg, without.seg));
    }
  }
}

TEST_CASE("input adjoint: BPTT without it = evaluator = finite differences", "[input-adjoint][bptt]") {
  StepIR ir = lowerCell("nbrc", {{"n_in", 12}, {"n", 10}, {"n_out", 3}});
  auto jit = compileCell<double>(ir);
  REQUIRE(jit->traits().inputAdjointOptional);
  eval::Evaluator plain(ir);
  REQUIRE_FALSE(plain.traits().inputAdjointOptional);
  std::mt19937_64 rng(52);
  const int64_t T = 5;
  for (int64_t B : {int64_t{1}, int64_t{6}}) {
    std::vector<double> params = randomVec(ir.layout.paramSize, rng, 0.5);
    TrialBatch b = randomBatch(ir.layout, B, T, rng);
    Bptt<double> viaJit(*jit, B, T, 2), viaPlain(plain, B, T, 2);
    auto rj = viaJit.lossAndGradient(params, b, {}, {}, {});
    auto rp = viaPlain.lossAndGradient(params, b, {}, {}, {});
    CHECK(rj.loss == Approx(rp.loss).epsilon(1e-12));
    CHECK(relErr(rj.dParams, rp.dParams) <= 1e-12);
    checkFiniteDifferences(viaJit, params, b, {}, rj.dParams, rng);
  }
}
