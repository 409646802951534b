// cellc's side of the PyTorch comparison (bench/torch_baseline.py, bench/compare.py): training steps
// per second of one cell over a grid of widths n and batches B, at T steps, with the trainer's own
// parts (Bptt with its memory budget, Adam), float32, n_in = n_out = 1, a readout and MSE at every
// step, zero noise. Also the matmul FLOPs of a step (the GEMM kernels of the forward and backward
// plans) and this build's SGEMM rate (1024^3, Eigen through cellc_gemm_f32) on 1 and on all threads,
// so that a step's matmul rate can be read as a fraction of it.
//
// usage: cellc_bench_grid --out FILE.json [--cells gru,pbrc] [--n 32,100] [--batch 1,16]
//        [--steps 100] [--min-time 0.3] [--repeats 3] [--threads 0] [--memory-budget-mb 1024]
//        [--max-gb 4] [--blas /path/to/libopenblas.so.0]
// Each point is timed in --repeats windows of at least --min-time seconds, and the fastest counts:
// on a shared machine another tenant's burst only slows a window down (one grid run had a point
// 6x slower than the same point alone). torch_baseline.py does the same.
//        [--segment-gemms auto|on|off] [--shards 0]
// --segment-gemms forces BPTT's backward plan (runtime/train/Bptt.h): weight gradients per segment
// (on) or per step (off); auto chooses by batch, as training does. --shards forces BPTT's batch
// shards (1: none); 0 chooses as training does.
// Points whose BPTT memory exceeds --max-gb are skipped and reported as such.
// The roofline (bench/Roofline.h): the run also measures the machine's SGEMM rate through --blas
// (OpenBLAS; scripts/bench_grid.sh passes the one it unpacks) and its DRAM bandwidth, and gives
// each point its bound (GEMM or memory) and the fraction of it reached.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "Roofline.h"
#include "blas/FloatMode.h"
#include "blas/GemmEntries.h"
#include "blas/Threads.h"
#include "driver/Compile.h"
#include "params/Init.h"
#include "pipeline/Hoist.h"
#include "sema/Program.h"
#include "train/Bptt.h"
#include "train/Optimizer.h"

using namespace cellc;
using namespace cellc::runtime;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

StepIR lowerCell(const std::string& name, const Overrides& o) {
  std::string err;
  SourceFile f = SourceFile::load(std::string(CELLC_SOURCE_DIR) + "/cells/" + name + ".cell", &err);
  if (!err.empty()) throw std::runtime_error(err);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, o, d);
  if (!p) throw std::runtime_error("cannot load cell " + name);
  return lower(*p);
}

// Matmul FLOPs of one forward or backward call: 2 M N K per GEMM kernel (batched products count
// once per batch element).
double gemmFlops(const StepIR& ir, const codegen::FunctionPlan& fp, int64_t batch) {
  double f = 0;
  for (const codegen::Kernel& k : fp.kernels) {
    if (k.kind != codegen::Kernel::Kind::Gemm) continue;
    const ir::Node& n = ir.g[k.node];
    const double outN = static_cast<double>(n.shape.numel()) * (n.shape.batched ? batch : 1);
    const double depth = n.op == ir::Op::MatMul ? static_cast<double>(ir.g[n.in[0]].shape.dims.back())
                                                 : static_cast<double>(batch);  // BatchOuterSum
    f += 2 * outN * depth;
  }
  return f;
}

double sgemmRate(int threads) {
  const int64_t n = 1024;
  setThreads(threads);
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  cellc_gemm_f32(0, 0, n, n, n, a.data(), n, b.data(), n, 0.f, c.data(), n);
  int reps = 0;
  auto t0 = Clock::now();
  while (since(t0) < 0.5 || reps < 2) {
    cellc_gemm_f32(0, 0, n, n, n, a.data(), n, b.data(), n, 0.f, c.data(), n);
    ++reps;
  }
  return 2.0 * n * n * n * reps / since(t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out, cells = "dale_rnn,gru,brc,nbrc,pbrc", ns = "32,100,256,1024", batches = "1,16,64", blas;
  int64_t steps = 100, budgetMb = kDefaultMemoryBudgetMb, shards = 0;
  double minTime = 0.3, maxGb = 4;
  int threads = 0, repeats = 3;
  SegmentGemms gemms = SegmentGemms::Auto;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--out") out = v;
    else if (k == "--cells") cells = v;
    else if (k == "--n") ns = v;
    else if (k == "--batch") batches = v;
    else if (k == "--steps") steps = std::stoll(v);
    else if (k == "--min-time") minTime = std::stod(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--repeats") repeats = std::max(1, std::stoi(v));
    else if (k == "--memory-budget-mb") budgetMb = std::stoll(v);
    else if (k == "--max-gb") maxGb = std::stod(v);
    else if (k == "--shards") shards = std::stoll(v);
    else if (k == "--blas") blas = v;
    else if (k == "--segment-gemms" && (v == "auto" || v == "on" || v == "off"))
      gemms = v == "on" ? SegmentGemms::On : v == "off" ? SegmentGemms::Off : SegmentGemms::Auto;
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (out.empty()) {
    std::cerr << "usage: cellc_bench_grid --out FILE.json [--cells ..] [--n ..] [--batch ..]\n";
    return 2;
  }
  const int all = hardwareThreads(), used = threads > 0 ? threads : all;
  // The machine's limits on the threads the points use (bench/Roofline.h).
  const double cellcSgemm = sgemmRate(used), blasSgemm = bench::blasSgemmGflops(blas, used);
  const double peakGflops = std::max(cellcSgemm, blasSgemm);
  const bench::MemoryLevels mem = bench::MemoryLevels::measure(used);
  const double streamGBs = mem.dramGBs;
  std::fprintf(stderr,
               "limits on %d thread(s): SGEMM %.1f GFLOP/s (cellc %.1f, BLAS %.1f), triad L2 %.1f GB/s (%.1f MB), "
               "L3 %.1f GB/s (%.1f MB), DRAM %.1f GB/s\n",
               used, peakGflops, cellcSgemm, blasSgemm, mem.l2GBs, static_cast<double>(mem.l2Bytes) / 1e6, mem.l3GBs,
               static_cast<double>(mem.l3Bytes) / 1e6, streamGBs);
  std::ostringstream js;
  js << "{\"threads\": " << used << ", \"sgemm_gflops\": {\"1\": " << sgemmRate(1)
     << ", \"" << all << "\": " << sgemmRate(all) << "}, \"limits\": {\"threads\": " << used
     << ", \"sgemm_gflops_cellc\": " << cellcSgemm << ", \"sgemm_gflops_blas\": " << blasSgemm
     << ", \"blas\": \"" << blas << "\", \"stream_triad_gbs\": " << streamGBs << ", \"l2_triad_gbs\": " << mem.l2GBs
     << ", \"l3_triad_gbs\": " << mem.l3GBs << ", \"l2_bytes\": " << mem.l2Bytes << ", \"l3_bytes\": " << mem.l3Bytes
     << "}, \"points\": [";
  setThreads(threads);
  const FlushDenormals flush;  // as the trainer runs (train.flush_denormals)
  bool first = true;
  for (const std::string& cell : split(cells))
    for (const std::string& nStr : split(ns))
      for (const std::string& bStr : split(batches)) {
        const int64_t n = std::stoll(nStr), B = std::stoll(bStr);
        auto t0 = Clock::now();
        StepIR ir = lowerCell(cell, {{"n", static_cast<double>(n)}, {"n_in", 1}, {"n_out", 1}});
        auto k = compileCell<float>(ir);
        const double compileS = since(t0);
        std::vector<double> params;
        std::mt19937_64 rng(1);
        t0 = Clock::now();
        initParams(ir, params, rng);
        const double initS = since(t0);
        Bptt<float> bptt(*k, B, steps, 0, budgetMb << 20, gemms, shards);
        const int64_t S = ir.layout.stateSize * B;
        const double gb = static_cast<double>(
            bpttBytes(steps, bptt.segment(), S, k->tapeSize(B), ir.layout.outputSize * B, sizeof(float),
                      bptt.segmentGemms() ? k->segmentSize(B) : 0)) / 1e9;
        if (gb > maxGb) {  // PBRC at n = 1024: a 256 MB trace per step and batch 64
          js << (first ? "" : ",") << "\n {\"cell\": \"" << cell << "\", \"n\": " << n << ", \"batch\": " << B
             << ", \"steps\": " << steps << ", \"skipped\": \"needs " << gb << " GB\"}";
          first = false;
          std::fprintf(stderr, "%s n=%lld B=%lld: skipped, BPTT needs %.1f GB (--max-gb)\n", cell.c_str(),
                       static_cast<long long>(n), static_cast<long long>(B), gb);
          continue;
        }
        TrialBatch tb;
        tb.batch = B, tb.steps = steps;
        std::normal_distribution<double> nd;
        for (int64_t t = 0; t < steps; ++t) {
          tb.inputs.emplace_back(B), tb.targets.emplace_back(B);
          for (int64_t b = 0; b < B; ++b) tb.inputs[t][b] = nd(rng), tb.targets[t][b] = nd(rng);
        }
        Adam adam(1e-3);
        auto trainStep = [&] {
          std::vector<float> p(params.begin(), params.end());
          BpttResult<float> r = bptt.lossAndGradient(p, tb, LossSpec{}, {}, {});
          adam.step(params, r.dParams);
          return r;
        };
        BpttResult<float> r = trainStep();  // warm-up
        double rate = 0;
        for (int w = 0; w < repeats; ++w) {
          int64_t reps = 0;
          t0 = Clock::now();
          while (since(t0) < minTime || reps < 1) {
            trainStep();
            ++reps;
          }
          rate = std::max(rate, static_cast<double>(reps) / since(t0));
        }
        // The plan's node ids are those of the step as compiled (hoisted), not of `ir`.
        const auto& plan = k->plan();
        const StepIR compiled = hoist(ir);
        const double flops = static_cast<double>(steps) *
                             (gemmFlops(compiled, plan.forward, B) + gemmFlops(compiled, plan.backward, B));
        // The roofline: the larger of the GEMM time and the memory time bounds a training step.
        const double bytes = bench::bytesPerTrainingStep(steps, k->tapeSize(B), S, ir.layout.outputSize * B,
                                                         ir.layout.paramSize, sizeof(float), bptt.segmentGemms());
        // The working set of a time step: what BPTT holds (states, tapes, outputs), the params and
        // their gradient (Adam's moments are touched once per training step, not per time step).
        const double working = static_cast<double>(r.peakBytes) + 2.0 * ir.layout.paramSize * sizeof(float);
        const auto [level, levelGBs] = mem.levelFor(working);
        const double gemmS = flops / (peakGflops * 1e9), memS = bytes / (levelGBs * 1e9);
        const bool gemmBound = gemmS >= memS;
        js << (first ? "" : ",") << "\n {\"cell\": \"" << cell << "\", \"n\": " << n << ", \"batch\": " << B
           << ", \"steps\": " << steps << ", \"steps_per_s\": " << rate << ", \"matmul_flops\": " << flops
           << ", \"bytes\": " << bytes << ", \"bound\": \"" << (gemmBound ? std::string("gemm") : std::string("memory (") + level + ")")
           << "\", \"bound_fraction\": " << std::max(gemmS, memS) * rate
           << ", \"segment\": " << r.segment << ", \"shards\": " << bptt.shards() << ", \"segment_gemms\": " << (bptt.segmentGemms() ? "true" : "false")
           << ", \"peak_bytes\": " << r.peakBytes
           << ", \"compile_s\": " << compileS << ", \"init_s\": " << initS << "}";
        first = false;
        std::fprintf(stderr, "%s n=%lld B=%lld: %.4g steps/s (segment %lld%s, %lld shards, %.0f MB, compile %.0f ms, init %.0f ms)\n",
                     cell.c_str(), static_cast<long long>(n), static_cast<long long>(B), rate,
                     static_cast<long long>(r.segment), bptt.segmentGemms() ? ", weight gradients per segment" : "",
                     static_cast<long long>(bptt.shards()), static_cast<double>(r.peakBytes) / 1e6, compileS * 1e3,
                     initS * 1e3);
      }
  js << "\n]}\n";
  std::ofstream(out) << js.str();
  return 0;
}
