// Benchmarks of cellc (Google Benchmark 1.7):
//   BM_Compile/<cell>           lower + compileCell<float> (forward and backward) of every cell in
//                               cells/ at its default dims; goal < 100 ms per cell.
//   BM_CompileChain/<k>         the same for a generated cell of k chained statements
//                               (a_i = a_{i-1} * 0.5 + tanh(a_{i-1}), n = 16): how compile time
//                               grows with the length of a cell.
//   BM_Generated/<cell>/n/B     one forward + one backward step of the generated code (dParams
//                               accumulating), for gru (n_in, n_out as in the file) and dale_rnn
//                               (n_in = 1, n_out = 10).
//   BM_EigenGru/n/B             the same step of a hand-written Eigen GRU (EigenGru.h), the baseline.
// Counters (rates, per second of CPU time): `steps` = cell-steps per second (B per iteration);
// `GFLOP` = GFLOP/s counting matrix-product FLOPs only (2 M N K per product, forward + backward;
// elementwise work, transcendentals and reductions are not counted), from the formulas in
// gruFlops / daleFlops below. The generated GRU and the Eigen GRU get the same FLOP count, so
// their GFLOP/s compare like their steps/s.
//
// Before running anything, the binary checks the Eigen GRU against compileCell<float> of
// cells/gru.cell (n = 32, B = 4, same params) and aborts if they disagree; `--verify` does only that.
// `--cells=DIR` reads the cells from DIR instead of the source tree's cells/.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "EigenGru.h"
#include "driver/Compile.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"

using namespace cellc;
using cellc::bench::Buffer;

namespace {

std::string gCellsDir = CELLC_SOURCE_DIR "/cells";

const std::vector<int64_t> kSizes = {32, 100, 256, 1024};
const std::vector<int64_t> kBatches = {1, 16, 64};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "cellc_bench: %s\n", msg.c_str());
  std::exit(1);
}

Program loadOrDie(const std::string& path, const Overrides& overrides) {
  std::string err;
  SourceFile file = SourceFile::load(path, &err);
  if (!err.empty()) die("cannot read " + path + ": " + err);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, overrides, diags);
  if (!prog) {
    diags.render(std::cerr, file);
    die("cannot load " + path);
  }
  return std::move(*prog);
}

std::string cellPath(const std::string& cell) { return gCellsDir + "/" + cell + ".cell"; }

void fillNormal(Buffer& v, std::mt19937& rng, float stddev) {
  std::normal_distribution<float> dist(0.f, stddev);
  for (float& x : v) x = dist(rng);
}

Buffer normal(size_t size, std::mt19937& rng, float stddev) {
  Buffer v(size);
  fillNormal(v, rng, stddev);
  return v;
}

// ---------------------------------------------------------------------------------------------
// FLOP counts: matrix products only, 2 M N K each. Every product W @ v of the forward costs
// 2 B rows(W) cols(W); the backward computes two products of the same size for it (the adjoint
// of v: dOut W, and of W: dOut^T v summed over the batch), so forward + backward = 3x the forward.

// gru: six products W_{z,r,h}h [n, n] @ h and W_{z,r,h}x [n, n_in] @ x, and the readout
// W_out [n_out, n] @ h' (n_out = 0 when the cell has no readout, y = h'):
//   forward 2 B n (3n + 3n_in + n_out), backward twice that: 6 B n (3n + 3n_in + n_out).
double gruFlops(int64_t n, int64_t nIn, int64_t nOut, int64_t B) {
  return 6.0 * double(B) * double(n) * double(3 * n + 3 * nIn + nOut);
}

// dale_rnn: W_rec [n, n] @ r, relu(W_in_raw) [n, n_in] @ u, relu(W_out_raw) [n_out, n] @ relu(x')
//   forward 2 B n (n + n_in + n_out), backward twice that: 6 B n (n + n_in + n_out).
double daleFlops(int64_t n, int64_t nIn, int64_t nOut, int64_t B) {
  return 6.0 * double(B) * double(n) * double(n + nIn + nOut);
}

void setCounters(benchmark::State& state, int64_t B, double flopsPerIter) {
  const double iters = static_cast<double>(state.iterations());
  // Totals over the run, divided by the CPU time (kIsRate): cell-steps/s and GFLOP/s.
  state.counters["steps"] = benchmark::Counter(double(B) * iters, benchmark::Counter::kIsRate);
  state.counters["GFLOP"] =
      benchmark::Counter(flopsPerIter * 1e-9 * iters, benchmark::Counter::kIsRate);
}

// ---------------------------------------------------------------------------------------------
// Buffers of one step of a StepKernel, allocated (and filled) outside the timed loop.

// The step is timed as a sequence runs it: the sequence-invariant part (pipeline/Hoist.h) is
// computed once, outside the timed loop (BM_TrainStep times whole sequences, prologue and
// epilogue included).
struct StepBuffers {
  Buffer params, state, input, noise, stateNext, output, tape;
  Buffer adjState, adjOutput, dState, dInput, dParams, hoisted, dHoisted;

  StepBuffers(StepKernel<float>& k, int64_t B, std::mt19937& rng, float paramStd = 0.1f,
              float stateStd = 0.5f) {
    const ir::Layout& L = k.layout();
    params = normal(L.paramSize, rng, paramStd);
    state = normal(L.stateSize * B, rng, stateStd);
    input = normal(L.inputSize * B, rng, 1.f);
    noise = normal(L.noiseSize * B, rng, 1.f);
    stateNext.assign(L.stateSize * B, 0.f);
    output.assign(L.outputSize * B, 0.f);
    tape.assign(k.tapeSize(B) + 1, 0.f);
    adjState = normal(L.stateSize * B, rng, 0.1f);
    adjOutput = normal(L.outputSize * B, rng, 0.1f);
    dState.assign(L.stateSize * B, 0.f);
    dInput.assign(L.inputSize * B, 0.f);
    dParams.assign(L.paramSize, 0.f);
    hoisted.assign(k.traits().hoistedSize, 0.f);
    dHoisted.assign(k.traits().hoistedSize, 0.f);
    k.run(Stage::Prologue, {.params = params.data(), .hoisted = hoisted.data()});
  }

  void step(StepKernel<float>& k, int64_t B) {
    k.run(Stage::ForwardHoisted, {.params = params.data(),
                                  .hoisted = hoisted.data(),
                                  .state = state.data(),
                                  .input = input.data(),
                                  .noise = noise.data(),
                                  .tape = tape.data(),
                                  .stateNext = stateNext.data(),
                                  .output = output.data(),
                                  .batch = B});
    k.run(Stage::BackwardHoisted, {.params = params.data(),
                                   .hoisted = hoisted.data(),
                                   .state = state.data(),
                                   .input = input.data(),
                                   .noise = noise.data(),
                                   .tape = tape.data(),
                                   .dStateNext = adjState.data(),
                                   .dOutput = adjOutput.data(),
                                   .dState = dState.data(),
                                   .dInput = dInput.data(),
                                   .dParams = dParams.data(),
                                   .dHoisted = dHoisted.data(),
                                   .batch = B});
  }
};

// Compiled kernels, one per (cell, n), shared by every batch size; compiled on first use, outside
// any timed region.
CompiledCell<float>& kernelFor(const std::string& cell, int64_t n) {
  static std::map<std::pair<std::string, int64_t>, std::unique_ptr<CompiledCell<float>>> cache;
  auto& slot = cache[{cell, n}];
  if (!slot) {
    Overrides o{{"n", double(n)}};
    if (cell == "dale_rnn") o["n_out"] = 10;
    Program prog = loadOrDie(cellPath(cell), o);
    slot = compileCell<float>(lower(prog));
  }
  return *slot;
}

// The Eigen GRU with the dims of a compiled cells/gru.cell: n_in from its input, and a readout
// when the cell has one (param W_out [n_out, n]).
bench::EigenGru eigenGruLike(const ir::Layout& L) {
  const ir::Slot* h = L.find(ir::Role::State, "h");
  if (L.states.size() != 1 || !h || L.inputs.size() != 1 || L.noiseSize != 0 ||
      L.outputs.size() != 1)
    die("cells/gru.cell does not have the expected state h[n], input x[n_in] and one output");
  const int64_t n = h->size;
  const ir::Slot* wout = L.find(ir::Role::Param, "W_out");
  bench::EigenGru e(n, L.inputSize, wout ? wout->size / n : 0);
  if (e.paramSize() != L.paramSize || e.outputSize() != L.outputSize)
    die("cells/gru.cell has params or outputs the Eigen GRU does not know");
  return e;
}

// ---------------------------------------------------------------------------------------------
// Verification: the Eigen GRU against the generated GRU, same params, forward and backward.

// max |a - b| / max |b| (normwise relative error)
double relErr(const Buffer& a, const Buffer& b) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - double(b[i])));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / den;
}

void verifyEigenGru() {
  const int64_t n = 32, B = 4;
  Program prog = loadOrDie(cellPath("gru"), {{"n", double(n)}});
  auto k = compileCell<float>(lower(prog));
  const ir::Layout& L = k->layout();
  bench::EigenGru e = eigenGruLike(L);
  const int64_t nIn = e.nIn(), nOut = e.outputSize();

  std::mt19937 rng(1234);
  // Larger than the benchmark's values so the gates leave their linear range.
  StepBuffers g(*k, B, rng, 0.3f, 0.5f);
  g.adjOutput = normal(g.adjOutput.size(), rng, 1.f);
  g.adjState = normal(g.adjState.size(), rng, 1.f);
  std::fill(g.dParams.begin(), g.dParams.end(), 0.25f);  // accumulation starts non-zero
  g.step(*k, B);

  Buffer params = e.fromCellLayout(L, g.params.data());
  Buffer hNext(B * n), y(B * nOut), tape(e.tapeSize(B)), dh(B * n, 7.f), dx(B * nIn, 7.f);
  Buffer dParams(e.paramSize(), 0.25f);
  e.forward(params.data(), g.state.data(), g.input.data(), hNext.data(), y.data(), tape.data(), B);
  e.backward(params.data(), g.state.data(), g.input.data(), tape.data(), g.adjState.data(),
             g.adjOutput.data(), dh.data(), dx.data(), dParams.data(), B);
  Buffer dParamsCell = e.toCellLayout(L, dParams.data());

  const double tol = 1e-4;
  bool ok = true;
  auto check = [&](const char* what, const Buffer& eig, const Buffer& gen) {
    double err = relErr(eig, gen);
    if (!(err <= tol)) {
      std::fprintf(stderr, "verify: Eigen GRU %s differs from the generated code: %.3g > %.0e\n",
                   what, err, tol);
      ok = false;
    }
    return err;
  };
  double worst = 0;
  worst = std::max(worst, check("h'", hNext, g.stateNext));
  worst = std::max(worst, check("y", y, g.output));
  worst = std::max(worst, check("dh", dh, g.dState));
  worst = std::max(worst, check("dx", dx, g.dInput));
  worst = std::max(worst, check("dParams", dParamsCell, g.dParams));
  if (!ok) {
    std::fprintf(stderr, "cellc_bench: the Eigen GRU baseline does not match cells/gru.cell\n");
    std::abort();
  }
  std::fprintf(stderr,
               "cellc_bench: Eigen GRU matches compileCell<float>(cells/gru.cell) at n = %lld, "
               "B = %lld, n_in = %lld, n_out = %lld%s (max relative error %.2g)\n",
               (long long)n, (long long)B, (long long)nIn, (long long)e.nOut(),
               e.nOut() ? "" : " (y = h')", worst);
}

// ---------------------------------------------------------------------------------------------
// The benchmarks.

void BM_Compile(benchmark::State& state, const std::string& path) {
  Program prog = loadOrDie(path, {});
  for (auto _ : state) {
    StepIR ir = lower(prog);
    std::unique_ptr<CompiledCell<float>> k = compileCell<float>(ir);
    benchmark::DoNotOptimize(k.get());
    state.PauseTiming();  // tearing down the JIT session is not part of compiling
    k.reset();
    state.ResumeTiming();
  }
}

void BM_CompileChain(benchmark::State& state, int k) {
  std::string text = "cell chain {\n  dim n = 16\n  input x[n]\n  state h[n] = 0\n"
                     "  param W[n, n] ~ glorot()\n  a0 = tanh(W @ h + x)\n";
  // Appended piecewise: `"a" + std::to_string(i)` trips GCC 12's -Wrestrict false positive.
  for (int i = 1; i < k; ++i) {
    std::string prev = "a", cur = "a";
    prev += std::to_string(i - 1);
    cur += std::to_string(i);
    text += "  " + cur + " = " + prev + " * 0.5 + tanh(" + prev + ")\n";
  }
  text += "  h' = a";
  text += std::to_string(k - 1);
  text += "\n  output y = h'\n}\n";
  SourceFile file("chain.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog) die("the chain cell does not check");
  for (auto _ : state) {
    StepIR ir = lower(*prog);
    std::unique_ptr<CompiledCell<float>> kernel = compileCell<float>(ir);
    benchmark::DoNotOptimize(kernel.get());
    state.PauseTiming();
    kernel.reset();
    state.ResumeTiming();
  }
}

void BM_Generated(benchmark::State& state, const std::string& cell, int64_t n, int64_t B) {
  CompiledCell<float>& k = kernelFor(cell, n);
  std::mt19937 rng(42);
  StepBuffers buf(k, B, rng);
  buf.step(k, B);  // warm-up: sizes the scratch buffer, touches every page
  for (auto _ : state) {
    buf.step(k, B);
    benchmark::ClobberMemory();
  }
  const ir::Layout& L = k.layout();
  double flops = cell == "gru" ? gruFlops(n, L.inputSize, eigenGruLike(L).nOut(), B)
                               : daleFlops(n, L.inputSize, L.outputSize, B);
  setCounters(state, B, flops);
}

void BM_EigenGru(benchmark::State& state, int64_t n, int64_t B) {
  // The dims of cells/gru.cell (n_in, readout), from the compiled cell.
  bench::EigenGru e = eigenGruLike(kernelFor("gru", n).layout());
  const int64_t nIn = e.nIn(), nOut = e.outputSize();
  std::mt19937 rng(42);
  Buffer params = normal(e.paramSize(), rng, 0.1f);
  Buffer h = normal(B * n, rng, 0.5f), x = normal(B * nIn, rng, 1.f);
  Buffer hNext(B * n), y(B * nOut), tape(e.tapeSize(B));
  Buffer dhNext = normal(B * n, rng, 0.1f), dy = normal(B * nOut, rng, 0.1f);
  Buffer dh(B * n), dx(B * nIn), dParams(e.paramSize(), 0.f);
  auto step = [&] {
    e.forward(params.data(), h.data(), x.data(), hNext.data(), y.data(), tape.data(), B);
    e.backward(params.data(), h.data(), x.data(), tape.data(), dhNext.data(), dy.data(),
               dh.data(), dx.data(), dParams.data(), B);
  };
  step();  // warm-up: sizes the workspace
  for (auto _ : state) {
    step();
    benchmark::ClobberMemory();
  }
  setCounters(state, B, gruFlops(n, nIn, e.nOut(), B));
}

void registerAll() {
  namespace fs = std::filesystem;
  std::vector<fs::path> cells;
  for (const auto& entry : fs::directory_iterator(gCellsDir))
    if (entry.path().extension() == ".cell") cells.push_back(entry.path());
  std::sort(cells.begin(), cells.end());
  for (const fs::path& p : cells) {
    std::string name = "BM_Compile/" + p.stem().string();
    benchmark::RegisterBenchmark(name.c_str(), BM_Compile, p.string())
        ->Unit(benchmark::kMillisecond);
  }
  for (int k : {25, 50, 100, 200, 1000}) {
    std::string name = "BM_CompileChain/";
    name += std::to_string(k);
    benchmark::RegisterBenchmark(name.c_str(), BM_CompileChain, k)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
  }
  for (int64_t n : kSizes)
    for (int64_t B : kBatches) {
      // Appended piecewise: `"/" + std::to_string(n)` trips GCC 12's -Wrestrict false positive.
      std::string dims = "/";
      dims += std::to_string(n);
      dims += "/";
      dims += std::to_string(B);
      for (const char* cell : {"gru", "dale_rnn"})
        benchmark::RegisterBenchmark(("BM_Generated/" + std::string(cell) + dims).c_str(),
                                     BM_Generated, std::string(cell), n, B)
            ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BM_EigenGru" + dims).c_str(), BM_EigenGru, n, B)
          ->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags, removed before Google Benchmark sees the rest.
  bool verifyOnly = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verify") == 0) {
      verifyOnly = true;
    } else if (std::strncmp(argv[i], "--cells=", 8) == 0) {
      gCellsDir = argv[i] + 8;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;

  try {
    verifyEigenGru();
    if (verifyOnly) return 0;
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    registerAll();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const std::exception& ex) {
    die(ex.what());
  }
  return 0;
}
