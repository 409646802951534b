// Properties of the kernel plans and the GEMM kernel that speed depends on: a plastic cell's
// [B, n, n] trace streams (its products are computed inline, nothing of that size is stored or
// taped besides the next trace), and matrix products on several threads are deterministic.
#include <catch2/catch.hpp>

#include <random>

#include "codegen/LoopGroups.h"
#include "codegen/Plan.h"
#include "blas/GemmEntries.h"
#include "blas/Threads.h"
#include "sema/Program.h"

#include "BpttCheck.h"

using namespace cellc;

namespace {

StepIR lowerCell(const std::string& name, const Overrides& o) { return bpttcheck::lowerSource("cells/" + name, o); }

}  // namespace

TEST_CASE("a Hebbian trace streams: no per-step copy of the [B, n, n] state", "[plan][hebbian]") {
  const int64_t n = 64;
  StepIR ir = lowerCell("pbrc.cell", {{"n", static_cast<double>(n)}});
  codegen::Plan plan = codegen::makePlan(ir);
  INFO(codegen::printPlan(ir, plan));
  // The tape holds vectors per batch element, not the trace or A * trace.
  CHECK(plan.tape.perBatch < n * n);
  // Where a function writes [n, n] batched values: each kernel's buffer.
  auto bigWrites = [&](const codegen::FunctionPlan& fp) {
    std::vector<codegen::Buf> bufs;
    for (const codegen::Kernel& k : fp.kernels)
      if (ir.g[k.node].shape.batched && ir.g[k.node].shape.numel() == n * n) bufs.push_back(k.out.buf);
    return bufs;
  };
  // The forward writes exactly one: the next trace, straight into its state.
  CHECK(bigWrites(plan.forward) == std::vector{codegen::Buf::StateNext});
  // The backward too: the trace's adjoint, into its d_state slot. A * hebb and outer(dc, h), used
  // twice each, are recomputed where used, not stored and read back.
  CHECK(bigWrites(plan.backward) == std::vector{codegen::Buf::DState});
  CHECK(plan.scratch.perBatch < n * n);
  // The products with the trace are reductions of their own, in both directions.
  int matVecs = 0;
  for (const codegen::FunctionPlan* fp : {&plan.forward, &plan.backward})
    for (const codegen::Kernel& k : fp->kernels)
      if (codegen::isBatchedMatVec(ir.g, k.node)) {
        ++matVecs;
        CHECK(k.kind == codegen::Kernel::Kind::Reduce);
      }
  CHECK(matVecs >= 2);
}

TEST_CASE("loop groups: a plastic cell streams its [B, n, n] values twice per step each way", "[plan][hebbian]") {
  const int64_t n = 40;
  for (const char* cell : {"pbrc.cell", "plastic_gru.cell"}) {
    StepIR ir = lowerCell(cell, {{"n", static_cast<double>(n)}});
    codegen::Plan plan = codegen::makePlan(ir);
    INFO(cell << "\n" << codegen::printPlan(ir, plan));
    // Passes over [B, n, n]: loop groups (or kernels alone) whose loop is [n, n] per batch element.
    auto passes = [&](const codegen::FunctionPlan& fp) {
      int count = 0;
      for (const codegen::Kernel& k : fp.kernels) {
        auto space = codegen::loopSpace(ir.g, k);
        if (!k.fusedWithPrev && space && (*space)[0] == n && (*space)[1] == n) ++count;
        if (k.fusedWithPrev) CHECK(codegen::loopSpace(ir.g, k) == space);  // a group shares one loop
      }
      return count;
    };
    // Forward: the trace product, then the trace's update, which needs the new state that the
    // product feeds: two passes that cannot be one.
    CHECK(passes(plan.forward) == 2);
    // Backward: the sums of the next trace's adjoint (both sides of the outer product, and eta's
    // gradient), then what needs the candidate's adjoint (the transposed product, A's gradient, the
    // trace's adjoint). Seven passes when each kernel had its own.
    CHECK(passes(plan.backward) == 2);
    // Grouped kernels follow each other and keep the order their inputs need: every kernel reads
    // only what kernels before it wrote (checked by the gradient tests against the evaluator).
    int grouped = 0;
    for (const codegen::Kernel& k : plan.backward.kernels) grouped += k.fusedWithPrev;
    CHECK(grouped >= 4);
  }
}

// The clipped cells' backward (the code's plastic GRU and PBRC): the clip's argument, such as
// hebb + eta outer(h, c) (read by its two comparisons), and the transposed outer product of the
// candidate's adjoint with h (read by three kernels) are recomputed where used (Plan.cpp,
// isCheapTrace); only the gated adjoint of the next trace, read by both of the backward's loop
// groups, is stored, beside the trace's own adjoint. They were up to two more [B, n, n] stores and
// passes a step (copy-first: plastic_gru_clip 11.9-13.0 -> 15.0-15.2 steps/s, pbrc_split
// 15.6-16.0 -> 17.1-17.3).
TEST_CASE("a clipped trace's backward stores one trace-sized value besides the trace's adjoint", "[plan][hebbian]") {
  const int64_t n = 40;
  for (const char* cell : {"plastic_gru_clip.cell", "pbrc_split.cell"}) {
    const bool split = std::string(cell) == "pbrc_split.cell";
    StepIR ir = lowerCell(cell, split ? Overrides{{"n", double(n)}, {"k", double(n / 2)}} : Overrides{{"n", double(n)}});
    codegen::Plan plan = codegen::makePlan(ir);
    INFO(cell << "\n" << codegen::printPlan(ir, plan));
    const int64_t q = split ? n / 2 : n;  // the trace is [n, n / 2] in the split PBRC
    std::vector<codegen::Buf> bufs;
    int passes = 0;
    for (const codegen::Kernel& k : plan.backward.kernels) {
      if (ir.g[k.node].shape.batched && ir.g[k.node].shape.numel() == n * q) bufs.push_back(k.out.buf);
      auto space = codegen::loopSpace(ir.g, k);
      if (!k.fusedWithPrev && space && (*space)[0] == n && (*space)[1] == q) ++passes;
    }
    CHECK(bufs == std::vector{codegen::Buf::Scratch, codegen::Buf::DState});
    CHECK(passes == 3);  // the gated adjoint, then the two groups that read it
  }
}

TEST_CASE("GEMM on several threads: the same bits on any count above one, close to one thread", "[gemm][threads]") {
  const int64_t m = 256, k = 512, p = 256;  // above kParallelWork: split between threads
  REQUIRE(m * k * p >= kParallelWork);
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  std::vector<float> a(m * k), b(k * p);
  for (float& x : a) x = d(rng);
  for (float& x : b) x = d(rng);
  auto product = [&](int threads) {
    setThreads(threads);
    std::vector<float> c(m * p);
    cellc_gemm_f32(0, 0, m, p, k, a.data(), k, b.data(), p, 0.f, c.data(), p);
    return c;
  };
  const int all = hardwareThreads();
  std::vector<float> one = product(1), many = product(all), again = product(all);
  CHECK(threads() == all);
  CHECK(many == again);
  // The chunks follow the product's shape, not the thread count (blas/Threads.h).
  CHECK(product(2) == product(3));
  CHECK(product(2) == product(5));
  for (size_t i = 0; i < one.size(); ++i) CHECK(many[i] == Approx(one[i]).margin(1e-3));
  setThreads(0);
  CHECK(threads() == all);
}

// Large products are split between threads by hand along C's longer side (blas/Gemm.cpp): each
// share must see the right rows or columns of op(A) and op(B) for every transpose, with leading
// dimensions wider than the matrices, and accumulate (beta = 1) into only its part of C.
TEST_CASE("GEMM split between threads: every transpose, both sides of C, strided, accumulating", "[gemm][threads]") {
  struct Shape {
    int64_t M, N, K;
  };
  // Rows split (M >= N; 37 rows leave shares off whole vectors) and columns split (M < N).
  for (const Shape sh : {Shape{300, 37, 200}, Shape{37, 300, 200}, Shape{130, 130, 130}}) {
    REQUIRE(sh.M * sh.N * sh.K >= kParallelWork);
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        CAPTURE(sh.M, sh.N, sh.K, ta, tb);
        const int64_t pad = 3;  // leading dimensions wider than the rows
        const int64_t aRows = ta ? sh.K : sh.M, aCols = ta ? sh.M : sh.K;
        const int64_t bRows = tb ? sh.N : sh.K, bCols = tb ? sh.K : sh.N;
        const int64_t lda = aCols + pad, ldb = bCols + pad, ldc = sh.N + pad;
        std::mt19937 rng(7);
        std::normal_distribution<double> d;
        std::vector<double> a(aRows * lda), b(bRows * ldb), c0(sh.M * ldc);
        for (double& x : a) x = d(rng);
        for (double& x : b) x = d(rng);
        for (double& x : c0) x = d(rng);
        auto at = [&](int64_t i, int64_t k) { return ta ? a[k * lda + i] : a[i * lda + k]; };
        auto bt = [&](int64_t k, int64_t j) { return tb ? b[j * ldb + k] : b[k * ldb + j]; };
        setThreads(2);
        std::vector<double> c = c0;
        cellc_gemm_f64(ta, tb, sh.M, sh.N, sh.K, a.data(), lda, b.data(), ldb, 1.0, c.data(), ldc);
        setThreads(0);
        for (int64_t i = 0; i < sh.M; ++i) {
          for (int64_t j = 0; j < sh.N; ++j) {
            double want = c0[i * ldc + j];
            for (int64_t k = 0; k < sh.K; ++k) want += at(i, k) * bt(k, j);
            REQUIRE(c[i * ldc + j] == Approx(want).margin(1e-11));
          }
          for (int64_t j = sh.N; j < ldc; ++j) REQUIRE(c[i * ldc + j] == c0[i * ldc + j]);  // padding
        }
      }
  }
}
