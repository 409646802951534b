// Backpropagation through time with bounded memory, for any compiled cell.
//
// Memory: storing every step's state and tape costs T * (state + tape + output [+ segment rows,
// below]). When that fits in the memory budget (kDefaultMemoryBudgetMb unless set), the forward
// keeps all of it and the backward recomputes nothing. Beyond the budget (a plastic cell's
// [B, n, n] trace: PBRC n = 256, B = 64, T = 500 needs 8.4 GB per copy) the forward keeps only the
// states at segment boundaries (every K steps) and the last segment's tapes; the backward
// recomputes the other segments one at a time from their boundaries and walks each in reverse. Memory is about (T / K) * state +
// K * (state + tape + output [+ segment rows]); K is the largest that fits the budget (fewer
// segments, less to recompute), or the one that minimizes memory, about sqrt(T * state / (state +
// tape)), when none does. The recomputation costs (1 - K / T) of a forward pass.
//
// The buffers live as long as the Bptt object, so that repeated calls reuse their pages.
//
// The step's sequence-invariant part (pipeline/Hoist.h) is computed once per call (the kernel's
// prologue), read by every step, recomputed segments included; its adjoint accumulates over the
// backward walk and reaches the params once at the end (the epilogue).
//
// At small batches (B <= kSegmentGemmMaxBatch), weight gradients of per-step products
// (pipeline/SegmentGemm.h) are formed once per segment of the walk: each backward step writes
// their operands into the segment buffer (kernel.segmentSize(B) elements a step, then counted in
// the memory budget), and one GEMM per product over the segment's steps x B rows adds them up
// (the kernel's segmentEpilogue). At larger batches the per-step backward forms them, a GEMM with
// K = B each, and nothing of the segment plan is made.
//
// Batch shards: a batch of at least 2 * kMinShardTrials trials whose step has small products is
// cut into kAutoShards shards of consecutive trials. Each shard runs the whole BPTT of its trials
// (its own buffers, within its share of the memory budget) as one chunk of the work pool
// (blas/WorkPool.h), so on two threads they run side by side (when the kernel's calls may run at
// once, StepKernel::concurrentCalls; else one after the other); their losses and gradients are
// summed in shard order. Each shard computes the step's invariant part itself (the prologue and
// epilogue, small where shards run), so no shard waits for another within a call. One join per
// call instead of one per product: the products of a small step (copy-first's 128 x 48 x 48) are
// too small to share, so without shards one core did all the work.
//
// The shard count follows the batch and the cell, never the thread count or the machine: a run's
// numbers are the same on one thread or two, in a sweep of one job or two, on resume with other
// threads (one thread runs the shards one after the other, at a small cost: 5-7% at n = 48-100,
// B = 64). They differ from an unsharded run's in the last bits (the sums over the batch are
// split). train.batch_shards sets another count.
//
// The input stage (pipeline/InputStage.h; asked for with inputStage, when the kernel has one and
// the segment plan does not run): the step's products of inputs and params alone run once per
// chunk of steps over its steps x B rows (the kernel's InputPrologue) into a staged buffer the
// steps read; the backward writes their adjoints to a buffer of the same size, and when the walk
// leaves the chunk one product per weight gradient over its rows adds them up (InputEpilogue).
// A chunk is kStagedChunkBytes of staged rows, so both buffers stay in cache: staged for the
// whole sequence at once (copy-first, T = 300, B = 64, H = 48: 11 MB a buffer), the walk ran at
// 0.78x the per-step products' speed. The backward stages a chunk again (the forward moved on)
// only when it or the input epilogue reads the staged values (KernelTraits::stagedReadBack);
// both buffers count against the memory budget.
//
// Dropout on recurrent units is generic: a mask multiplies the chosen state slots before each step
// (inverted dropout: kept units scaled by 1 / (1 - p)); the backward multiplies their adjoints by
// the same mask.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/StepKernel.h"
#include "train/Loss.h"

namespace cellc::runtime {

struct DropoutSpec {
  double p = 0;                  // probability of dropping a unit; 0: off
  bool perStep = false;          // a new mask every step (default: one mask per trial)
  std::vector<int> stateSlots;   // which states get the mask; empty: every rank-1 state
};

// pycog's vanishing-gradient regularizer (Pascanu, Mikolov & Bengio 2013): with v = dE/dx_{t+1}
// and w = v^T dx_{t+1}/dx_t for one state x, Omega = (1 / (T B)) sum_t sum_b (|w|^2 / |v|^2 - 1)^2,
// added to the loss with weight lambda; its gradient holds v and x constant, as pycog's does. It
// keeps gradients from vanishing over long delays. The kernel must carry the Omega function
// (compileCell(ir, true)).
struct OmegaSpec {
  double lambda = 0;  // 0: off
  int stateSlot = 0;
};

template <class T>
struct BpttResult {
  double loss = 0;   // including lambda * Omega
  double omega = 0;  // Omega itself
  std::vector<double> dParams;   // including initial states that come from params
  std::vector<std::vector<T>> outputs;  // [T][outputSize * B], when asked for
  int64_t segment = 0;           // the segment length used
  int64_t peakBytes = 0;         // bytes held for states, tapes and outputs at the peak
};

// The default memory budget of BPTT's states, tapes and outputs (TrainConfig::memoryBudgetMb,
// train.memory_budget_mb).
inline constexpr int64_t kDefaultMemoryBudgetMb = 1024;

// The largest batch whose weight gradients BPTT forms per segment (one GEMM over its steps x B
// rows) rather than per step. Measured (bench/cellc_bench_grid, T = 100, float32, both threads of
// a 2-core machine other jobs shared; per point the two plans back to back, two rounds; gru and
// dale_rnn at n = 100 and 256, nbrc at 256), the segment plan over the per-step one: B = 1
// 1.13-1.48x, B = 2 1.09-1.22x, B = 4 1.07-1.19x, B = 8 0.93-1.12x, B = 16 0.84-1.19x (4 of 5
// points below 1). It costs steps x B x (its operands' widths) of memory more.
inline constexpr int64_t kSegmentGemmMaxBatch = 4;

// The staged rows of one input-stage chunk (above), in bytes.
inline constexpr int64_t kStagedChunkBytes = int64_t{1} << 18;

// At any batch, BPTT forms weight gradients per segment when one of them has at least this many
// elements (StepKernel::weightGradientElements): a per-step GEMM with K = B then reads and writes
// an [n, n] result larger than a core's cache at every step. Measured the same way at n = 1024
// (two rounds, background jobs stopped), the segment plan over the per-step one: B = 16 gru
// 1.00-1.21x, nbrc 1.13-1.14x, dale_rnn 0.99-1.03x; B = 64 gru 1.03-1.07x, nbrc 1.01-1.05x,
// dale_rnn 0.97-0.98x. At n <= 256 (65,536 elements) it lost for B >= 8 (above). The line
// between is not measured: 2^19 elements, a 2 MB float32 result.
inline constexpr int64_t kSegmentGemmMinElements = int64_t{1} << 19;

// Which backward plan BPTT runs: by batch (kSegmentGemmMaxBatch), or one forced (tests, benchmarks).
enum class SegmentGemms { Auto, On, Off };

// The fewest trials a batch shard gets (above).
inline constexpr int64_t kMinShardTrials = 8;

// How many shards BPTT cuts a batch into by default: two, the cores of the machines this was
// measured on. More shards of fewer trials cost on two threads (n = 48-100, B = 64, steps/s of 2
// shards -> 4 -> 8: nbrc 687 -> 631 -> 494, gru 519 -> 474 -> 373 at n = 48).
inline constexpr int64_t kAutoShards = 2;

// The most multiply-adds of one product in a shard (its trials x the kernel's
// productWorkPerTrial). Beyond it the products share their chunks between threads
// (blas/Gemm.cpp), and that pays more. Measured (bench/cellc_bench_grid, T = 100, Zen 5, 2 cores,
// alternating, two rounds, steps/s without shards -> with two): n = 100, B = 64 (a shard's
// product 0.3M): dale_rnn 190 -> 334, gru 62 -> 112, nbrc 86 -> 165, pbrc 6.8 -> 10.0; n = 256,
// B = 64 (2.1M): dale_rnn 50-60 -> 62-66, gru 17.5-20.7 -> 22.9-24.5, nbrc 24-30 -> 35-37;
// n = 256, B = 16 (0.5M) about even; n = 1024, B = 16 (8.4M): dale_rnn 13.6-14.0 -> 10.7-11.2,
// gru 4.3-4.5 -> 2.9; n = 1024, B = 64 (34M): dale_rnn 5.0-5.1 -> 1.1.
inline constexpr int64_t kMaxShardProductWork = int64_t{1} << 22;

// The shard count BPTT chooses for a batch: kAutoShards, as long as each gets kMinShardTrials
// trials and its products stay within kMaxShardProductWork; else 1.
template <class T>
int64_t batchShards(const StepKernel<T>& kernel, int64_t batch);

template <class T>
class Bptt {
 public:
  // segment 0: the largest that fits memoryBudgetBytes (all T steps when they fit); else as given.
  // shards 0: batchShards(kernel, batch); 1: none; else as given (at most batch).
  Bptt(StepKernel<T>& kernel, int64_t batch, int64_t steps, int64_t segment = 0,
       int64_t memoryBudgetBytes = kDefaultMemoryBudgetMb << 20, SegmentGemms gemms = SegmentGemms::Auto,
       int64_t shards = 0, bool inputStage = false);

  // The state at t = 0 for these params: each state's number, or its param broadcast over the
  // batch.
  std::vector<T> initialState(const std::vector<T>& params) const;

  // Forward only (validation, analysis): outputs of every step and the final state; `states`,
  // when given, receives the state after every step ([T][stateSize * B]).
  void forward(const std::vector<T>& params, const TrialBatch& batch,
               const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
               std::vector<std::vector<T>>& outputs, std::vector<T>* finalState = nullptr,
               std::vector<std::vector<T>>* states = nullptr);

  // Loss and its gradient w.r.t. the params. noise: [T][noiseSize * B] or empty (zeros); masks:
  // dropout masks over the state buffer, none, one (per trial) or T (per step).
  BpttResult<T> lossAndGradient(const std::vector<T>& params, const TrialBatch& batch,
                                const LossSpec& loss, const std::vector<std::vector<T>>& noise,
                                const std::vector<std::vector<T>>& masks, bool keepOutputs = false);

  void setOmega(const OmegaSpec& o);
  int64_t segment() const { return segment_; }
  int64_t shards() const { return shards_.empty() ? 1 : static_cast<int64_t>(shards_.size()); }
  // Whether the backward runs the segment plan (the kernel has one, and the batch or a force
  // asks for it).
  bool segmentGemms() const { return segmentN() > 0; }
  // Whether the walk runs the kernel's input stage (inputStage asked, and the kernel has one).
  bool inputStage() const { return shards_.empty() ? stagedW_ > 0 : shards_[0]->inputStage(); }
  // Steps per input-stage chunk: from kStagedChunkBytes, or as set (tests, benchmarks).
  int64_t inputStageChunk() const { return shards_.empty() ? chunk_ : shards_[0]->inputStageChunk(); }
  void setInputStageChunk(int64_t steps);
  int64_t batch() const { return batch_; }
  int64_t steps() const { return steps_; }
  StepKernel<T>& kernel() { return kernel_; }

 private:
  // One forward step from state (read in place, or through its masked copy in in_ when dropout
  // masks it).
  void step(const std::vector<T>& params, const T* state, const TrialBatch& b,
            const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
            int64_t t, T* next, T* output, T* tape);
  // The hoisted values of these params, into hoisted_ (and no input-stage chunk staged yet).
  void prologue(const std::vector<T>& params);
  // Elements of one step's tape in the plan the walk runs.
  int64_t tapeN() const;
  // The input stage: step t's staged rows, its chunk staged first if it is not; step t's adjoint
  // rows (the input epilogue of the chunk before run first when t leaves it); the input epilogue
  // of the rows whose adjoints are in; the inputs of steps [t0, t1) as one batch; the bytes of both
  // chunk buffers.
  T* stagedRows(const std::vector<T>& params, const TrialBatch& b, int64_t t);
  T* adjointRows(const std::vector<T>& params, const TrialBatch& b, int64_t t);  // step t's adjoint rows
  void flushStaged(const std::vector<T>& params, const TrialBatch& b);
  void gatherInputs(const TrialBatch& b, int64_t t0, int64_t t1);
  int64_t stagedBytes() const;
  const T* maskAt(const std::vector<std::vector<T>>& masks, int64_t t) const;
  const T* maskedState(const T* state, const T* mask);

  // The loss and gradient of this object's trials, as terms of a whole batch's: the loss's
  // denominator is the whole batch's (denom), and so is Omega's (omegaBatch_).
  BpttResult<T> run(const std::vector<T>& params, const TrialBatch& b, const LossSpec& loss,
                    const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
                    bool keepOutputs, double denom);
  BpttResult<T> runShards(const std::vector<T>& params, const TrialBatch& b, const LossSpec& loss,
                          const std::vector<std::vector<T>>& noise,
                          const std::vector<std::vector<T>>& masks, bool keepOutputs, double denom);
  // Shard s's trials [first, last) of the whole batch (shardRows), and its part of a batch
  // (targets and loss masks only with a loss), of the noise and of the dropout masks.
  struct ShardInput {
    TrialBatch trials;
    std::vector<std::vector<T>> noise, masks;
  };
  std::pair<int64_t, int64_t> shardRows(int64_t s) const;
  ShardInput shardInput(int64_t s, const TrialBatch& b, const LossSpec* loss,
                        const std::vector<std::vector<T>>& noise,
                        const std::vector<std::vector<T>>& masks) const;
  void forwardShards(const std::vector<T>& params, const TrialBatch& b,
                     const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
                     std::vector<std::vector<T>>& outputs, std::vector<T>* finalState,
                     std::vector<std::vector<T>>* states);

  // The segment plan's buffer elements per step, 0 when the per-step plan runs.
  int64_t segmentN() const { return wantSegment_ ? kernel_.segmentSize(batch_) : 0; }
  // Adds lambda * Omega's term of step t to res and dParams; v is the adjoint of state t + 1.
  void omegaStep(const std::vector<T>& params, const T* in, const T* noise, T* tape, const T* staged,
                 const std::vector<T>& v, std::vector<T>& dParams, BpttResult<T>& res);

  StepKernel<T>& kernel_;
  int64_t batch_, steps_, segment_;
  bool wantSegment_;
  int64_t omegaBatch_;  // the trials Omega is a mean over: the whole batch's, when this is a shard
  OmegaSpec omega_;
  std::vector<std::unique_ptr<Bptt>> shards_;  // empty: this object runs the whole batch
  std::vector<T> zerosNoise_, inputBuf_, in_;
  std::vector<T> hoisted_, dHoisted_;  // the kernel's sequence-invariant values and their adjoints
  // The input stage: its row width (0: off), steps per chunk, the staged chunk [chunkFrom_,
  // chunkTo_) and the steps of it whose adjoints are in [dirtyFrom_, dirtyTo_), the inputs of a
  // chunk as one batch, the staged values and their adjoints ([chunk_ * B, stagedW_]).
  int64_t stagedW_ = 0, chunk_ = 1, chunkFrom_ = 0, chunkTo_ = 0, dirtyFrom_ = 0, dirtyTo_ = 0;
  int64_t adjFrom_ = 0, adjTo_ = 0;  // the chunk the adjoint buffer holds rows of
  bool stagedReadBack_ = true;       // the backward reads the staged values (KernelTraits)
  std::vector<T> chunkInput_, stagedBuf_, dStagedBuf_;
  std::vector<T> dParams_;  // the gradient being summed (the input epilogue adds to it)
  // Kept between calls: boundary states, the current segment's states, tapes and outputs, and
  // its deferred weight-gradient operands (the kernel's segment buffer).
  std::vector<std::vector<T>> boundary_, segStates_, segTapes_, segOutputs_;
  std::vector<T> segmentBuf_;
};

// Bytes BPTT holds for a segment length K (the states at boundaries, one segment's states, tapes,
// outputs and segment-buffer rows of deferred weight gradients), given per-step sizes in elements.
int64_t bpttBytes(int64_t steps, int64_t segment, int64_t stateN, int64_t tapeN, int64_t outputN,
                  int64_t elementBytes, int64_t segmentN = 0);

// Dropout masks over a state buffer: 1 for units kept and slots not masked, 0 for dropped units
// scaled so that kept ones are 1 / (1 - p). One mask, or one per step.
template <class T>
std::vector<std::vector<T>> dropoutMasks(const ir::Layout& layout, const DropoutSpec& spec,
                                         int64_t batch, int64_t steps,
                                         const std::function<double()>& uniform01);

}  // namespace cellc::runtime
