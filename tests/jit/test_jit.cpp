// The JIT against the reference evaluator, one step forward and backward, for every cell, in
// float64 (1e-12 relative) and float32 (1e-5 relative), at several batch sizes.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>

#include "blas/Threads.h"
#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "sema/Program.h"

using namespace cellc;

namespace {

// Small sizes, so every code path runs quickly: at n = 6 every product is inlined (contraction
// <= codegen::kInlineContraction), at n = 12 the recurrent ones are GEMM calls (folded over the
// batch, or one per batch element for a plastic cell's matrix state).
Overrides smallDims(const Program& p, double n) {
  Overrides o;
  for (auto [name, v] : {std::pair{"n", n}, {"n_in", 3.0}, {"n_out", 4.0}, {"k", n / 2}})
    if (const Symbol* s = p.find(name); s && s->kind == SymKind::Dim) o[name] = v;
  return o;
}

std::optional<Program> load(const std::string& path, const Overrides& o) {
  std::string err;
  SourceFile f = SourceFile::load(path, &err);
  DiagnosticSink d;
  return loadCell(f, o, d);
}

std::vector<double> randomVec(size_t n, std::mt19937& rng, double scale = 0.5) {
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// max |a - b| / max(max |b|, tiny): a normwise relative error.
double relErr(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / den;
}

struct StepData {
  std::vector<double> params, state, input, noise, adjState, adjOutput;
};

StepData randomStep(const ir::Layout& L, int64_t B, std::mt19937& rng) {
  return {randomVec(L.paramSize, rng), randomVec(L.stateSize * B, rng), randomVec(L.inputSize * B, rng),
          randomVec(L.noiseSize * B, rng), randomVec(L.stateSize * B, rng),
          randomVec(L.outputSize * B, rng)};
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

struct Result {
  std::vector<double> stateNext, output, dState, dInput, dParams;
};

template <class T>
Result run(StepKernel<T>& k, const StepData& d, int64_t B) {
  const ir::Layout& L = k.layout();
  auto p = cast<T>(d.params), s = cast<T>(d.state), x = cast<T>(d.input), e = cast<T>(d.noise);
  auto as = cast<T>(d.adjState), ao = cast<T>(d.adjOutput);
  std::vector<T> sn(L.stateSize * B), out(L.outputSize * B), tape(k.tapeSize(B) + 1);
  std::vector<T> ds(L.stateSize * B, T(7)), dx(L.inputSize * B, T(7));
  std::vector<T> dp(L.paramSize, T(0.25));  // accumulates: starts non-zero on purpose
  k.run(Stage::Forward, {.params = p.data(),
                         .state = s.data(),
                         .input = x.data(),
                         .noise = e.data(),
                         .tape = tape.data(),
                         .stateNext = sn.data(),
                         .output = out.data(),
                         .batch = B});
  k.run(Stage::Backward, {.params = p.data(),
                          .state = s.data(),
                          .input = x.data(),
                          .noise = e.data(),
                          .tape = tape.data(),
                          .dStateNext = as.data(),
                          .dOutput = ao.data(),
                          .dState = ds.data(),
                          .dInput = dx.data(),
                          .dParams = dp.data(),
                          .batch = B});
  auto back = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };
  return {back(sn), back(out), back(ds), back(dx), back(dp)};
}

void compare(const Result& jit, const Result& ref, double tol) {
  CHECK(relErr(jit.stateNext, ref.stateNext) <= tol);
  CHECK(relErr(jit.output, ref.output) <= tol);
  CHECK(relErr(jit.dState, ref.dState) <= tol);
  CHECK(relErr(jit.dInput, ref.dInput) <= tol);
  CHECK(relErr(jit.dParams, ref.dParams) <= tol);
}

// One random step at each batch size: the JIT in float64 (1e-12 relative) and float32 (1e-5)
// against the evaluator.
void matchesEvaluator(const std::string& path, const Overrides& dims, std::initializer_list<int64_t> batches,
                      unsigned seed) {
  std::optional<Program> prog = load(path, dims);
  REQUIRE(prog);
  StepIR ir = lower(*prog);
  eval::Evaluator ref(ir);
  auto f64 = compileCell<double>(ir);
  auto f32 = compileCell<float>(ir);
  std::mt19937 rng(seed);
  for (int64_t B : batches) {
    INFO("n " << (dims.count("n") ? dims.at("n") : 0.0) << ", batch " << B);
    StepData d = randomStep(ir.layout, B, rng);
    Result r = run(ref, d, B);
    compare(run(*f64, d, B), r, 1e-12);
    compare(run(*f32, d, B), r, 1e-5);
  }
}

}  // namespace

TEST_CASE("JIT forward and backward equal the reference evaluator on every cell", "[jit]") {
  namespace fs = std::filesystem;
  for (const auto& entry : fs::directory_iterator(CELLC_SOURCE_DIR "/cells")) {
    std::string path = entry.path().string();
    DYNAMIC_SECTION(entry.path().filename().string()) {
      std::optional<Program> first = load(path, {});
      REQUIRE(first);
      for (double n : {6.0, 12.0}) matchesEvaluator(path, smallDims(*first, n), {1, 3, 8}, 42);
    }
  }
}

// A cell whose plans exceed codegen's part size (48 kernels) is emitted as parts, one function
// each, so LLVM's time grows linearly with the cell (one function of 200 statements took 3.5 s,
// superlinear; BM_CompileChain measures it). The parts still compute the same step.
TEST_CASE("a long cell is compiled in parts and still equals the reference evaluator", "[jit]") {
  std::string text = "cell chain {\n  dim n = 5\n  input x[n]\n  state h[n] = 0\n"
                     "  param W[n, n] ~ glorot()\n  a0 = tanh(W @ h + x)\n";
  const int k = 100;  // about 105 kernels forward and backward: three parts each
  for (int i = 1; i < k; ++i) {
    std::string prev = "a", cur = "a";
    prev += std::to_string(i - 1);
    cur += std::to_string(i);
    // Contractive, so rounding does not grow along the chain; W[0, 0] puts a param gradient in
    // every statement.
    text += "  " + cur + " = 0.9 * tanh(" + prev + " + x * W[0, 0])\n";
  }
  text += "  h' = a";
  text += std::to_string(k - 1);
  text += "\n  output y = h'\n}\n";
  SourceFile file("chain.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  StepIR ir = lower(*prog);

  std::string llvmIR = printLLVM(ir, codegen::Precision::F64, false);
  CHECK(llvmIR.find("@cell_forward.part2(") != std::string::npos);
  CHECK(llvmIR.find("@cell_backward.part2(") != std::string::npos);

  eval::Evaluator ref(ir);
  auto f64 = compileCell<double>(ir);
  std::mt19937 rng(7);
  for (int64_t B : {1, 3}) {
    INFO("batch " << B);
    StepData d = randomStep(ir.layout, B, rng);
    compare(run(*f64, d, B), run(ref, d, B), 1e-12);
  }
}

// Kernels whose batch elements are independent and large (a plastic cell's [B, n, n] trace) are
// outlined and split over the batch between threads (cellc_parallel_batch). Each element is still
// computed by one thread in the same order: one thread and two give the same bits, and both equal
// the reference evaluator. B = 128 at n = 48 is past the threshold at which threads are used.
TEST_CASE("batch-split kernels give the same bits on one thread and on two", "[jit]") {
  std::optional<Program> prog =
      load(CELLC_SOURCE_DIR "/cells/pbrc.cell", {{"n", 48.0}, {"n_in", 3.0}, {"n_out", 2.0}});
  REQUIRE(prog);
  StepIR ir = lower(*prog);
  CHECK(printLLVM(ir, codegen::Precision::F64, false).find("@cell_backward.k") !=
        std::string::npos);
  auto f64 = compileCell<double>(ir);
  eval::Evaluator ref(ir);
  std::mt19937 rng(3);
  const int64_t B = 128;
  StepData d = randomStep(ir.layout, B, rng);
  const int before = threads();
  setThreads(1);
  Result one = run(*f64, d, B);
  setThreads(2);
  Result two = run(*f64, d, B);
  setThreads(before);
  CHECK(one.stateNext == two.stateNext);
  CHECK(one.output == two.output);
  CHECK(one.dState == two.dState);
  CHECK(one.dInput == two.dInput);
  CHECK(one.dParams == two.dParams);
  compare(two, run(ref, d, B), 1e-12);
}

// Loops that sum over a trace's rows into values indexed by its columns (PBRC's backward: the
// transposed trace product, the column sums for eta) are unrolled whole once vectorized, so those
// sums stay in registers across the rows (EmitLLVM.cpp, unrollColumns); loops without such a sum,
// and columns past kUnrollColumns, are not. The gradients of every cell are checked elsewhere
// against the evaluator and finite differences.
TEST_CASE("column sums over a trace are unrolled, in blocks past 64 columns, nothing else", "[jit]") {
  // The loops marked for unrolling (each has loop metadata; nothing else has at O0).
  auto marked = [](const char* cell, double n) {
    std::optional<Program> prog =
        load(std::string(CELLC_SOURCE_DIR "/cells/") + cell, {{"n", n}, {"n_in", 3.0}});
    REQUIRE(prog);
    const std::string ir = printLLVM(lower(*prog), codegen::Precision::F32, false);
    int loops = 0;
    for (size_t at = ir.find(", !llvm.loop !"); at != std::string::npos; at = ir.find(", !llvm.loop !", at + 1))
      ++loops;
    return loops;
  };
  // PBRC's backward has two [n, n] loop groups with column sums: the first also sums along rows,
  // so past 64 columns it stays one loop (blocks would cut its row sums); the second is cut
  // into blocks of at most 64 columns, each unrolled.
  CHECK(marked("pbrc.cell", 48) == 2);
  CHECK(marked("plastic_gru_clip.cell", 64) == 3);
  CHECK(marked("pbrc.cell", 100) == 2);   // 64 + 36
  CHECK(marked("pbrc.cell", 130) == 3);   // 64 + 64 + 2
  // Past 64 columns only the forward's transposed trace product (a column sum alone) runs in
  // blocks: each of the backward's two groups also sums along rows.
  CHECK(marked("plastic_gru_clip.cell", 100) == 2);
  CHECK(marked("gru.cell", 48) == 0);     // no [n, n] loop at all
  CHECK(marked("nbrc.cell", 48) == 0);
}

// The column blocks above compute the same step as the evaluator (the tests of every cell run at
// n <= 12, one block).
TEST_CASE("plastic cells past 64 columns, in column blocks, equal the reference evaluator", "[jit]") {
  for (const char* cell : {"pbrc.cell", "plastic_gru.cell", "plastic_gru_clip.cell"}) {
    DYNAMIC_SECTION(cell) {
      std::optional<Program> first = load(std::string(CELLC_SOURCE_DIR "/cells/") + cell, {});
      REQUIRE(first);
      matchesEvaluator(std::string(CELLC_SOURCE_DIR "/cells/") + cell, smallDims(*first, 70), {1, 3}, 7);
    }
  }
}
