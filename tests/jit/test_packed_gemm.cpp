// Products with a W packed once per sequence (blas/PackedGemm.h, codegen::PackedOperand): the
// packed product equals a long-double reference at shapes that leave partial row, depth and
// column blocks, for both layouts of W, overwriting and accumulating, with the same bits on one
// thread and two; a region copied elsewhere, never packed, or used with fewer than four rows
// falls back to the plain product. The plan packs the per-step products' W (params, and dale_rnn's
// hoisted effective weights) from 128 x 128 up, the segment plan shares the prologue's regions,
// and BPTT through such cells (float64, n = 130) agrees with the evaluator and finite differences.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "BpttCheck.h"
#include "blas/GemmEntries.h"
#include "blas/PackedGemm.h"
#include "blas/Threads.h"
#include "codegen/Plan.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "pipeline/Hoist.h"
#include "train/Bptt.h"

using namespace cellc;
using namespace cellc::runtime;
using namespace cellc::bpttcheck;

namespace {

// C[M, N] (row stride ldc) = X[M, K] (row stride ldx) op(W) + beta C, W stored [N, K] (rowMajor,
// op = transpose) or [K, N], row stride ldw.
struct Case {
  int64_t M, N, K;
  bool rowMajor;
  int64_t ldx, ldw, ldc;
};

std::vector<double> reference(const Case& c, const std::vector<double>& x, const std::vector<double>& w,
                              double beta, std::vector<double> out) {
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      long double s = 0;
      for (int64_t k = 0; k < c.K; ++k)
        s += static_cast<long double>(x[i * c.ldx + k]) * (c.rowMajor ? w[j * c.ldw + k] : w[k * c.ldw + j]);
      out[i * c.ldc + j] = static_cast<double>(s + beta * out[i * c.ldc + j]);
    }
  return out;
}

struct Operands {
  std::vector<double> x, w, c0;
  std::vector<double> region;
};

Operands operands(const Case& c, std::mt19937_64& rng) {
  Operands o;
  o.x = randomVec(static_cast<size_t>(c.M * c.ldx), rng, 1);
  o.w = randomVec(static_cast<size_t>((c.rowMajor ? c.N : c.K) * c.ldw), rng, 1);
  o.c0 = randomVec(static_cast<size_t>(c.M * c.ldc), rng, 1);
  o.region.assign(static_cast<size_t>(packedRegionSize(c.N, c.K)), 0.0);
  packOperand(c.rowMajor, c.N, c.K, o.w.data(), c.ldw, o.region.data());
  return o;
}

std::vector<double> packedGemm(const Case& c, const Operands& o, double beta, const double* region) {
  std::vector<double> out = o.c0;
  cellc_gemm_packed_f64(0, c.rowMajor, c.M, c.N, c.K, o.x.data(), c.ldx, o.w.data(), c.ldw, beta, out.data(),
                        c.ldc, region);
  return out;
}

std::vector<double> plainGemm(const Case& c, const Operands& o, double beta) {
  std::vector<double> out = o.c0;
  cellc_gemm_f64(0, c.rowMajor, c.M, c.N, c.K, o.x.data(), c.ldx, o.w.data(), c.ldw, beta, out.data(), c.ldc);
  return out;
}

// Restores the thread count a test changed.
struct ThreadsGuard {
  int saved = threads();
  ~ThreadsGuard() { setThreads(saved); }
};

StepIR lowerCell(const std::string& name, const Overrides& o) { return lowerSource("cells/" + name + ".cell", o); }

}  // namespace

TEST_CASE("packed GEMM: equals the reference at partial blocks, both layouts, same bits on 1 and 2 threads",
          "[packed][gemm]") {
  ThreadsGuard guard;
  std::mt19937_64 rng(41);
  // N not a multiple of kPackedRows, K not a multiple of kPackedDepth, M not a multiple of the
  // micro-kernel's columns; row strides wider than the rows; enough work for two threads.
  const Case cases[] = {{5, 200, 300, true, 301, 303, 205},  {5, 200, 300, false, 300, 207, 200},
                        {64, 130, 257, true, 257, 257, 130}, {64, 130, 257, false, 260, 130, 131},
                        {4, 128, 256, true, 256, 256, 128},  {9, 1, 512, false, 512, 1, 1},
                        {33, 384, 600, true, 600, 600, 384}};
  for (const Case& c : cases)
    for (double beta : {0.0, 1.0}) {
      INFO("M " << c.M << " N " << c.N << " K " << c.K << (c.rowMajor ? " W [N, K]" : " W [K, N]") << " beta "
                << beta);
      Operands o = operands(c, rng);
      REQUIRE(packedPanels(o.region.data()) != nullptr);
      setThreads(1);
      std::vector<double> one = packedGemm(c, o, beta, o.region.data());
      setThreads(2);
      std::vector<double> two = packedGemm(c, o, beta, o.region.data());
      CHECK(relErr(one, reference(c, o.x, o.w, beta, o.c0)) <= 1e-13);
      CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(double)) == 0);
      // Elements outside the rows' N columns (ldc > N) are untouched.
      for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = c.N; j < c.ldc; ++j) REQUIRE(one[i * c.ldc + j] == o.c0[i * c.ldc + j]);
    }
}

TEST_CASE("packed GEMM: float32 equals the float64 product to float rounding", "[packed][gemm]") {
  std::mt19937_64 rng(42);
  const Case c{64, 300, 520, true, 520, 520, 300};
  Operands o = operands(c, rng);
  std::vector<float> x(o.x.begin(), o.x.end()), w(o.w.begin(), o.w.end()), out(o.c0.size());
  std::vector<float> region(static_cast<size_t>(packedRegionSize(c.N, c.K)));
  packOperand(true, c.N, c.K, w.data(), c.ldw, region.data());
  cellc_gemm_packed_f32(0, 1, c.M, c.N, c.K, x.data(), c.ldx, w.data(), c.ldw, 0.f, out.data(), c.ldc,
                        region.data());
  CHECK(relErr(std::vector<double>(out.begin(), out.end()), reference(c, o.x, o.w, 0.0, o.c0)) <= 1e-5);
}

TEST_CASE("packed GEMM: a region moved, never packed, or fewer than 4 rows give the plain product",
          "[packed][gemm]") {
  std::mt19937_64 rng(43);
  const Case c{16, 200, 300, true, 300, 300, 200};
  Operands o = operands(c, rng);
  const std::vector<double> want = plainGemm(c, o, 1.0);
  // Copied one element further: its panels are no longer at the boundary the header records.
  std::vector<double> moved(o.region.size() + 1);
  std::copy(o.region.begin(), o.region.end(), moved.begin() + 1);
  CHECK(packedPanels(moved.data() + 1) == nullptr);
  CHECK(packedGemm(c, o, 1.0, moved.data() + 1) == want);
  std::vector<double> never(o.region.size(), 0.0);
  CHECK(packedPanels(never.data()) == nullptr);
  CHECK(packedGemm(c, o, 1.0, never.data()) == want);
  for (int64_t m : {1, 2, 3}) {
    const Case small{m, c.N, c.K, true, c.ldx, c.ldw, c.ldc};
    Operands s = operands(small, rng);
    CHECK(packedGemm(small, s, 0.0, s.region.data()) == plainGemm(small, s, 0.0));
  }
}

TEST_CASE("packed GEMM: the plan packs per-step products' W from 128 x 128 up, and the segment plan shares them",
          "[packed][plan]") {
  SECTION("gru: three W, read in the forward as stored and in the backward transposed") {
    StepIR ir = lowerCell("gru", {{"n", 160}, {"n_in", 2}});
    codegen::Plan plan = codegen::makePlan(ir);
    REQUIRE(plan.packed.size() == 6);
    int64_t size = 0, rowMajor = 0;
    for (const codegen::PackedOperand& p : plan.packed) {
      CHECK(p.src.buf == codegen::Buf::Params);
      CHECK(p.n == 160);
      CHECK(p.k == 160);
      CHECK(p.offset == ir.hoistedSize + size);
      size += packedRegionSize(p.n, p.k);
      rowMajor += p.rowMajor;
    }
    CHECK(rowMajor == 3);
    CHECK(plan.packedSize == size);
    int marked = 0;
    for (const codegen::FunctionPlan* fp : {&plan.forward, &plan.backward})
      for (const codegen::Kernel& k : fp->kernels) marked += k.packedAt >= 0;
    CHECK(marked == 6);
    auto jit = compileCell<double>(ir);
    CHECK(jit->traits().hoistedSize == ir.hoistedSize + size);
    // The segment plan's backward reads the regions the per-step plan's prologue fills.
    const codegen::Plan* seg = jit->segmentPlan();
    REQUIRE(seg);
    CHECK(seg->packed == plan.packed);
    int segMarked = 0;
    for (const codegen::Kernel& k : seg->backward.kernels) segMarked += k.packedAt >= 0;
    CHECK(segMarked == 3);
  }
  SECTION("dale_rnn: the hoisted effective weights") {
    StepIR ir = hoist(lowerCell("dale_rnn", {{"n", 130}, {"n_in", 2}, {"n_out", 2}}));
    codegen::Plan plan = codegen::makePlan(ir);
    REQUIRE(plan.packed.size() == 2);
    for (const codegen::PackedOperand& p : plan.packed) CHECK(p.src.buf == codegen::Buf::Hoisted);
  }
  SECTION("below 128 x 128 nothing is packed") {
    StepIR ir = lowerCell("gru", {{"n", 100}});
    codegen::Plan plan = codegen::makePlan(ir);
    CHECK(plan.packed.empty());
    CHECK(compileCell<double>(ir)->traits().hoistedSize == ir.hoistedSize);
  }
}

TEST_CASE("packed GEMM: BPTT through gru and dale_rnn at n = 130, JIT = evaluator = finite differences",
          "[packed][bptt]") {
  for (auto [cell, overrides] : {std::pair<std::string, Overrides>{"gru", {{"n", 130}, {"n_in", 2}}},
                                 {"dale_rnn", {{"n", 130}, {"n_in", 2}, {"n_out", 2}}}}) {
    StepIR ir = lowerCell(cell, overrides);
    auto jit = compileCell<double>(ir);
    REQUIRE(!codegen::makePlan(hoist(ir)).packed.empty());
    eval::Evaluator plain(ir);
    std::mt19937_64 rng(44);
    const int64_t T = 4;
    for (int64_t B : {int64_t{1}, int64_t{6}}) {
      std::vector<double> params = randomVec(ir.layout.paramSize, rng, 0.15);
      TrialBatch b = randomBatch(ir.layout, B, T, rng);
      auto noise = randomNoise(ir.layout, B, T, rng);
      for (SegmentGemms plan : {SegmentGemms::On, SegmentGemms::Off}) {
        DYNAMIC_SECTION(cell << ", B = " << B << (plan == SegmentGemms::On ? ", segment plan" : ", per-step plan")) {
          Bptt<double> viaJit(*jit, B, T, 2, kDefaultMemoryBudgetMb << 20, plan), viaPlain(plain, B, T, 2);
          auto rj = viaJit.lossAndGradient(params, b, {}, noise, {}, true);
          auto rp = viaPlain.lossAndGradient(params, b, {}, noise, {}, true);
          for (int64_t t = 0; t < T; ++t) CHECK(relErr(rj.outputs[t], rp.outputs[t]) <= 1e-12);
          CHECK(rj.loss == Approx(rp.loss).epsilon(1e-12));
          CHECK(relErr(rj.dParams, rp.dParams) <= 1e-12);
          checkFiniteDifferences(viaJit, params, b, noise, rj.dParams, rng);
        }
      }
    }
  }
}
