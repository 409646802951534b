// Training steps per second with the generic trainer's parts (BPTT with segments, optimizer), at
// E1's settings (dale_rnn, N = 100, T = 100, batch 20, SGD) and copy-first's (T = 300, D = 32,
// H = 48, batch 128, Adam; nbrc and the plastic cells), and where the time goes: the kernels'
// forward (including the segment recomputation) and backward, the optimizer, and the rest (data,
// BPTT bookkeeping).
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "blas/Threads.h"
#include "driver/Compile.h"
#include "params/Init.h"
#include "sema/Program.h"
#include "tasks/Tasks.h"
#include "train/Bptt.h"
#include "train/Optimizer.h"

using namespace cellc;
using namespace cellc::runtime;

namespace {

using Clock = std::chrono::steady_clock;

// Times every stage of the kernel it wraps: the per-step and segment stages as forward or
// backward work (the segment stage's GEMMs are backward work); prologue and epilogue untimed.
class TimedKernel : public ForwardingKernel<float> {
 public:
  using ForwardingKernel<float>::ForwardingKernel;
  void run(Stage stage, const StepArgs<float>& a) override {
    auto t0 = Clock::now();
    inner_.run(stage, a);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    switch (stage) {
      case Stage::Forward:
      case Stage::ForwardHoisted: fwd += dt; break;
      case Stage::Backward:
      case Stage::BackwardHoisted:
      case Stage::BackwardSegment:
      case Stage::SegmentEpilogue: bwd += dt; break;
      default: break;
    }
  }
  double fwd = 0, bwd = 0;
};

StepIR lowerCell(const std::string& name, const Overrides& o) {
  std::string err;
  SourceFile f = SourceFile::load(std::string(CELLC_SOURCE_DIR) + "/cells/" + name, &err);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, o, d);
  if (!p) throw std::runtime_error("cannot load " + name);
  return lower(*p);
}

void trainSteps(benchmark::State& state, const std::string& cell, const Overrides& o, const Task& task,
                int64_t batch, std::unique_ptr<Optimizer> opt) {
  StepIR ir = lowerCell(cell, o);
  auto compiled = compileCell<float>(ir);
  TimedKernel k(*compiled);
  std::vector<double> params;
  std::mt19937_64 rng(1);
  initParams(ir, params, rng);
  Bptt<float> bptt(k, batch, task.steps());
  {
    // One step first, untimed: the first call allocates and faults in the tape and the states
    // (180 MB for pbrc_split here), once per run in training, not once per step.
    std::mt19937_64 warm(2);
    TrialBatch b = task.sample(batch, warm);
    std::vector<float> p(params.begin(), params.end());
    bptt.lossAndGradient(p, b, task.loss(), {}, {});
    k.fwd = k.bwd = 0;
  }
  double optTime = 0, total = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    TrialBatch b = task.sample(batch, rng);
    std::vector<float> p(params.begin(), params.end());
    BpttResult<float> r = bptt.lossAndGradient(p, b, task.loss(), {}, {});
    auto t1 = Clock::now();
    opt->step(params, r.dParams);
    auto t2 = Clock::now();
    optTime += std::chrono::duration<double>(t2 - t1).count();
    total += std::chrono::duration<double>(t2 - t0).count();
    benchmark::DoNotOptimize(r.loss);
  }
  state.counters["steps"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["forward_share"] = k.fwd / total;
  state.counters["backward_share"] = k.bwd / total;
  state.counters["optimizer_share"] = optTime / total;
  state.counters["other_share"] = 1 - (k.fwd + k.bwd + optTime) / total;
  state.counters["segment"] = static_cast<double>(bptt.segment());
}

void BM_TrainStep_dale_rnn(benchmark::State& state) {
  SequenceTask task(SequenceSpec{});  // E1: T = 1000 ms at dt = 10: 100 steps
  FreezeMask frozen = FreezeMask::none(0);
  trainSteps(state, "dale_rnn.cell", {{"n", 100}, {"n_out", 10}}, task, 20,
             std::make_unique<Sgd>(1e-3, 1.0));
}

// Copy-first as published (E5: T = 300, D = 32, H = 48, batch 128, Adam), one cell per case:
// 15,625 of these steps are a full run.
void BM_TrainStep_copy_first(benchmark::State& state, const std::string& cell) {
  CopyFirstTask task({300, 32});
  Overrides dims = {{"n", 48}, {"n_in", 32}, {"n_out", 32}};
  if (cell == "pbrc_split.cell") dims["k"] = 24;
  trainSteps(state, cell, dims, task, 128, std::make_unique<Adam>(1e-3));
}

// What bounds a copy-first step (results/speed/profile_pbrc_copy_first.md): one batch shard's
// (B = 64, as training runs it on each of two threads) forward and backward step on one thread,
// cycling through `states` distinct state and tape buffers: 1 keeps everything in cache (the
// kernels' own speed), 300 streams them as BPTT does over T = 300 (a [64, 48, 48] trace is 590 KB
// a step). Counters: microseconds per step, forward and backward.
void BM_CopyFirstKernels(benchmark::State& state, const std::string& cell) {
  const int64_t B = 64, states = state.range(0);
  Overrides dims = {{"n", 48}, {"n_in", 32}, {"n_out", 32}};
  if (cell == "pbrc_split.cell") dims["k"] = 24;
  std::unique_ptr<CompiledCell<float>> k = compileCell<float>(lowerCell(cell, dims));
  const ir::Layout& L = k->layout();
  const int saved = threads();
  setThreads(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 0.3f);
  auto vec = [&](int64_t size) {
    std::vector<float> v(static_cast<size_t>(size));
    for (float& x : v) x = normal(rng);
    return v;
  };
  std::vector<float> params = vec(L.paramSize), input = vec(L.inputSize * B),
                     noise(L.noiseSize * B + 1), out(L.outputSize * B),
                     dOut = vec(L.outputSize * B), dNext = vec(L.stateSize * B),
                     dState(L.stateSize * B), dParams(L.paramSize),
                     hoisted(k->traits().hoistedSize + 1), dHoisted(k->traits().hoistedSize + 1);
  std::vector<std::vector<float>> stateBufs(static_cast<size_t>(states + 1)), tape(static_cast<size_t>(states));
  for (auto& s : stateBufs) s = vec(L.stateSize * B);
  for (auto& t : tape) t.assign(static_cast<size_t>(k->tapeSize(B) + 1), 0.f);
  k->run(Stage::Prologue, {.params = params.data(), .hoisted = hoisted.data()});
  const bool inPlace = k->traits().adjointInPlace;
  double fwd = 0, bwd = 0;
  int64_t steps = 0;
  auto sequence = [&](bool timed) {
    auto t0 = Clock::now();
    for (int64_t t = 0; t < states; ++t)
      k->run(Stage::ForwardHoisted, {.params = params.data(),
                                     .hoisted = hoisted.data(),
                                     .state = stateBufs[t].data(),
                                     .input = input.data(),
                                     .noise = noise.data(),
                                     .tape = tape[t].data(),
                                     .stateNext = stateBufs[t + 1].data(),
                                     .output = out.data(),
                                     .batch = B});
    auto t1 = Clock::now();
    for (int64_t t = states - 1; t >= 0; --t) {
      k->run(Stage::BackwardHoisted, {.params = params.data(),
                                      .hoisted = hoisted.data(),
                                      .state = stateBufs[t].data(),
                                      .input = input.data(),
                                      .noise = noise.data(),
                                      .tape = tape[t].data(),
                                      .dStateNext = dNext.data(),
                                      .dOutput = dOut.data(),
                                      .dState = inPlace ? dNext.data() : dState.data(),
                                      .dParams = dParams.data(),
                                      .dHoisted = dHoisted.data(),
                                      .batch = B});
      if (!inPlace) std::swap(dNext, dState);  // as BPTT: one state-adjoint buffer when allowed
    }
    if (!timed) return;
    fwd += std::chrono::duration<double>(t1 - t0).count();
    bwd += std::chrono::duration<double>(Clock::now() - t1).count();
    steps += states;
  };
  sequence(false);  // warm-up: every page touched
  for (auto _ : state) sequence(true);
  setThreads(saved);
  state.counters["forward_us"] = fwd / static_cast<double>(steps) * 1e6;
  state.counters["backward_us"] = bwd / static_cast<double>(steps) * 1e6;
}

// A cell's params from its initializers at n = 1024 (issue 10's target: under a second): the
// QR of orthogonal() and the eigensolve of spectral_radius() dominate.
void BM_Init(benchmark::State& state, const std::string& cell) {
  StepIR ir = lowerCell(cell, {{"n", 1024}});
  std::vector<double> params;
  for (auto _ : state) {
    std::mt19937_64 rng(1);
    initParams(ir, params, rng);
    benchmark::DoNotOptimize(params.data());
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_Init, dale_rnn, "dale_rnn.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Init, gru, "gru.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Init, brc, "brc.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Init, nbrc, "nbrc.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Init, pbrc, "pbrc.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Init, plastic_gru, "plastic_gru.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainStep_dale_rnn)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep_copy_first, nbrc, "nbrc.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep_copy_first, pbrc, "pbrc.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep_copy_first, pbrc_split, "pbrc_split.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep_copy_first, plastic_gru_clip, "plastic_gru_clip.cell")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_CopyFirstKernels, nbrc, "nbrc.cell")->Arg(1)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_CopyFirstKernels, pbrc, "pbrc.cell")->Arg(1)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_CopyFirstKernels, plastic_gru_clip, "plastic_gru_clip.cell")->Arg(1)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime();
