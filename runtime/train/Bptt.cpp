#include "train/Bptt.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "blas/Threads.h"
#include "blas/WorkPool.h"
#include "train/BatchShards.h"

namespace cellc::runtime {

namespace {

void checkBatch(const ir::Layout& L, const TrialBatch& b, int64_t batch, int64_t steps) {
  if (b.batch != batch || b.steps != steps)
    throw std::invalid_argument("batch of " + std::to_string(b.batch) + " x " + std::to_string(b.steps) +
                                " steps given to a BPTT set up for " + std::to_string(batch) + " x " +
                                std::to_string(steps));
  if (static_cast<int64_t>(b.inputs.size()) != steps)
    throw std::invalid_argument("batch has " + std::to_string(b.inputs.size()) + " input steps, expected " +
                                std::to_string(steps));
  for (const auto& in : b.inputs)
    if (static_cast<int64_t>(in.size()) != L.inputSize * batch)
      throw std::invalid_argument("an input step has " + std::to_string(in.size()) + " values, the cell takes " +
                                  std::to_string(L.inputSize * batch));
}

}  // namespace

template <class T>
int64_t batchShards(const StepKernel<T>& kernel, int64_t batch) {
  if (batch < kAutoShards * kMinShardTrials) return 1;
  // A shard's products too large: they split between the threads themselves, better.
  if ((batch / kAutoShards) * kernel.traits().productWorkPerTrial > kMaxShardProductWork) return 1;
  return kAutoShards;
}

int64_t bpttBytes(int64_t steps, int64_t segment, int64_t stateN, int64_t tapeN, int64_t outputN,
                  int64_t elementBytes, int64_t segmentN) {
  const int64_t nSeg = (steps + segment - 1) / segment;
  return elementBytes *
         ((nSeg - 1) * stateN + (segment + 1) * stateN + segment * (tapeN + outputN + segmentN));
}

template <class T>
Bptt<T>::Bptt(StepKernel<T>& kernel, int64_t batch, int64_t steps, int64_t segment,
              int64_t memoryBudgetBytes, SegmentGemms gemms, int64_t shards, bool inputStage)
    : kernel_(kernel),
      batch_(batch),
      steps_(steps),
      segment_(segment),
      wantSegment_(gemms == SegmentGemms::On ||
                   (gemms == SegmentGemms::Auto &&
                    (batch <= kSegmentGemmMaxBatch ||
                     kernel.traits().weightGradientElements >= kSegmentGemmMinElements))),
      omegaBatch_(batch) {
  if (batch <= 0 || steps <= 0) throw std::invalid_argument("BPTT needs a positive batch and step count");
  const ir::Layout& L = kernel.layout();
  zerosNoise_ = L.defaultNoise<T>(batch);  // 0 for normal noise, 1 for dropout masks
  shards = std::min(batch, shards > 0 ? shards : batchShards(kernel, batch));
  if (shards > 1) {
    // Each shard keeps the whole batch's backward plan and gets its share of the memory budget.
    const SegmentGemms plan = wantSegment_ ? SegmentGemms::On : SegmentGemms::Off;
    for (int64_t s = 0; s < shards; ++s) {
      const int64_t rows = shardFirst(batch, shards, s + 1) - shardFirst(batch, shards, s);
      shards_.push_back(
          std::make_unique<Bptt>(kernel, rows, steps, segment, memoryBudgetBytes / shards, plan, 1, inputStage));
      shards_.back()->omegaBatch_ = batch;
    }
    segment_ = shards_[0]->segment();
    return;
  }
  // The input stage never runs with the segment plan (both take the weight gradients out of the step).
  if (inputStage && !wantSegment_) {
    stagedW_ = kernel.traits().stagedWidth;
    stagedReadBack_ = kernel.traits().stagedReadBack;
    chunk_ = std::clamp<int64_t>(kStagedChunkBytes / std::max<int64_t>(1, batch * stagedW_ * sizeof(T)), 1, steps);
  }
  if (segment_ <= 0) {
    const int64_t S = L.stateSize * batch, O = L.outputSize * batch;
    const int64_t segN = segmentN();
    const int64_t staged = stagedBytes();
    auto bytes = [&](int64_t k) { return bpttBytes(steps, k, S, tapeN(), O, sizeof(T), segN) + staged; };
    // The least memory: about sqrt(T s / (s + tape + out + seg)). Then the longest segment within
    // the budget, if any is longer: each step more in a segment is one less to recompute.
    const double s = static_cast<double>(S), perStep = s + static_cast<double>(tapeN() + O + segN);
    const int64_t least = std::clamp<int64_t>(
        static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(steps) * s / perStep))), 1, steps);
    segment_ = least;
    for (int64_t k = steps; k > least; --k)
      if (bytes(k) <= memoryBudgetBytes) {
        segment_ = k;
        break;
      }
  }
  segment_ = std::clamp<int64_t>(segment_, 1, steps);
}

template <class T>
void Bptt<T>::setOmega(const OmegaSpec& o) {
  omega_ = o;
  for (auto& s : shards_) s->setOmega(o);
}

template <class T>
std::vector<T> Bptt<T>::initialState(const std::vector<T>& params) const {
  return kernel_.layout().declaredState(params.data(), batch_);
}

template <class T>
int64_t Bptt<T>::tapeN() const {
  return stagedW_ ? kernel_.stagedTapeSize(batch_) : kernel_.tapeSize(batch_);
}

template <class T>
void Bptt<T>::setInputStageChunk(int64_t steps) {
  chunk_ = std::clamp<int64_t>(steps, 1, steps_);
  for (auto& s : shards_) s->setInputStageChunk(steps);
}

template <class T>
int64_t Bptt<T>::stagedBytes() const {
  return 2 * chunk_ * batch_ * stagedW_ * static_cast<int64_t>(sizeof(T));
}

template <class T>
void Bptt<T>::prologue(const std::vector<T>& params) {
  hoisted_.resize(static_cast<size_t>(kernel_.traits().hoistedSize));
  kernel_.run(Stage::Prologue, {.params = params.data(), .hoisted = hoisted_.data()});
  chunkFrom_ = chunkTo_ = adjFrom_ = adjTo_ = 0;  // no chunk staged for these params yet
  dirtyFrom_ = dirtyTo_ = 0;
  dStagedBuf_.resize(static_cast<size_t>(chunk_ * batch_ * stagedW_));
}

template <class T>
void Bptt<T>::gatherInputs(const TrialBatch& b, int64_t t0, int64_t t1) {
  // Steps [t0, t1) as one batch of (t1 - t0) x B rows: input slot i's [B, size] block of step t
  // goes to rows (t - t0) * B .. of that slot's region (rows * offset on).
  const ir::Layout& L = kernel_.layout();
  const int64_t rows = (t1 - t0) * batch_;
  chunkInput_.resize(static_cast<size_t>(L.inputSize * rows));
  for (const ir::Slot& in : L.inputs)
    for (int64_t t = t0; t < t1; ++t)
      std::copy_n(b.inputs[t].begin() + batch_ * in.offset, batch_ * in.size,
                  chunkInput_.begin() + rows * in.offset + (t - t0) * batch_ * in.size);
}

template <class T>
T* Bptt<T>::stagedRows(const std::vector<T>& params, const TrialBatch& b, int64_t t) {
  if (t < chunkFrom_ || t >= chunkTo_) {
    chunkFrom_ = t / chunk_ * chunk_;
    chunkTo_ = std::min(steps_, chunkFrom_ + chunk_);
    gatherInputs(b, chunkFrom_, chunkTo_);
    stagedBuf_.resize(static_cast<size_t>(chunk_ * batch_ * stagedW_));
    kernel_.run(Stage::InputPrologue, {.params = params.data(),
                                       .hoisted = hoisted_.data(),
                                       .input = chunkInput_.data(),
                                       .staged = stagedBuf_.data(),
                                       .batch = (chunkTo_ - chunkFrom_) * batch_});
  }
  return stagedBuf_.data() + (t - chunkFrom_) * batch_ * stagedW_;
}

template <class T>
T* Bptt<T>::adjointRows(const std::vector<T>& params, const TrialBatch& b, int64_t t) {
  if (t < adjFrom_ || t >= adjTo_) {
    flushStaged(params, b);
    adjFrom_ = t / chunk_ * chunk_;
    adjTo_ = std::min(steps_, adjFrom_ + chunk_);
  }
  dirtyTo_ = dirtyFrom_ < dirtyTo_ ? dirtyTo_ : t + 1;  // the walk goes down: [t, dirtyTo_)
  dirtyFrom_ = t;
  return dStagedBuf_.data() + (t - adjFrom_) * batch_ * stagedW_;
}

template <class T>
void Bptt<T>::flushStaged(const std::vector<T>& params, const TrialBatch& b) {
  if (dirtyFrom_ >= dirtyTo_) return;
  // The input epilogue of the steps whose adjoints are in (a run of the adjoint chunk's rows),
  // with their staged values when it reads them (staged again if a walk moved on).
  const T* staged = stagedReadBack_ ? stagedRows(params, b, dirtyFrom_) : nullptr;
  gatherInputs(b, dirtyFrom_, dirtyTo_);
  kernel_.run(Stage::InputEpilogue, {.params = params.data(),
                                     .hoisted = hoisted_.data(),
                                     .input = chunkInput_.data(),
                                     .dParams = dParams_.data(),
                                     .dHoisted = dHoisted_.data(),
                                     .staged = const_cast<T*>(staged),
                                     .dStaged = dStagedBuf_.data() + (dirtyFrom_ - adjFrom_) * batch_ * stagedW_,
                                     .batch = (dirtyTo_ - dirtyFrom_) * batch_});
  dirtyFrom_ = dirtyTo_ = 0;
}

template <class T>
const T* Bptt<T>::maskAt(const std::vector<std::vector<T>>& masks, int64_t t) const {
  if (masks.empty()) return nullptr;
  return masks.size() == 1 ? masks[0].data() : masks[t].data();
}

template <class T>
const T* Bptt<T>::maskedState(const T* state, const T* mask) {
  if (!mask) return state;  // read in place: no per-step copy of the state
  const size_t n = static_cast<size_t>(kernel_.layout().stateSize * batch_);
  in_.resize(n);
  for (size_t i = 0; i < n; ++i) in_[i] = state[i] * mask[i];
  return in_.data();
}

template <class T>
void Bptt<T>::step(const std::vector<T>& params, const T* state, const TrialBatch& b,
                   const std::vector<std::vector<T>>& noise, const std::vector<std::vector<T>>& masks,
                   int64_t t, T* next, T* output, T* tape) {
  const T* in = maskedState(state, maskAt(masks, t));
  inputBuf_.assign(b.inputs[t].begin(), b.inputs[t].end());
  const T* nz = noise.empty() ? zerosNoise_.data() : noise[t].data();
  kernel_.run(stagedW_ ? Stage::ForwardStaged : Stage::ForwardHoisted,
              {.params = params.data(),
               .hoisted = hoisted_.data(),
               .state = in,
               .input = inputBuf_.data(),
               .noise = nz,
               .tape = tape,
               .stateNext = next,
               .output = output,
               .staged = stagedW_ ? stagedRows(params, b, t) : nullptr,
               .batch = batch_});
}

template <class T>
void Bptt<T>::forward(const std::vector<T>& params, const TrialBatch& b,
                      const std::vector<std::vector<T>>& noise,
                      const std::vector<std::vector<T>>& masks,
                      std::vector<std::vector<T>>& outputs, std::vector<T>* finalState,
                      std::vector<std::vector<T>>* states) {
  const ir::Layout& L = kernel_.layout();
  checkBatch(L, b, batch_, steps_);
  if (!shards_.empty()) return forwardShards(params, b, noise, masks, outputs, finalState, states);
  prologue(params);
  std::vector<T> state = initialState(params), next(state.size());
  std::vector<T> tape(tapeN() + 1);
  outputs.assign(steps_, std::vector<T>(L.outputSize * batch_));
  if (states) states->assign(steps_, {});
  for (int64_t t = 0; t < steps_; ++t) {
    step(params, state.data(), b, noise, masks, t, next.data(), outputs[t].data(), tape.data());
    std::swap(state, next);
    if (states) (*states)[t] = state;
  }
  if (finalState) *finalState = state;
}

template <class T>
BpttResult<T> Bptt<T>::lossAndGradient(const std::vector<T>& params, const TrialBatch& b,
                                       const LossSpec& spec,
                                       const std::vector<std::vector<T>>& noise,
                                       const std::vector<std::vector<T>>& masks, bool keepOutputs) {
  const ir::Layout& L = kernel_.layout();
  checkBatch(L, b, batch_, steps_);
  const ir::Slot& out = lossOutput(L, spec);
  checkTargets(out, spec, b);
  const double denom = lossDenominator(spec, out, b);
  if (!shards_.empty()) return runShards(params, b, spec, noise, masks, keepOutputs, denom);
  return run(params, b, spec, noise, masks, keepOutputs, denom);
}

template <class T>
BpttResult<T> Bptt<T>::run(const std::vector<T>& params, const TrialBatch& b, const LossSpec& spec,
                           const std::vector<std::vector<T>>& noise,
                           const std::vector<std::vector<T>>& masks, bool keepOutputs, double denom) {
  const ir::Layout& L = kernel_.layout();
  const int64_t S = L.stateSize * batch_, O = L.outputSize * batch_;
  const int64_t segN = segmentN();
  BpttResult<T> res;
  res.segment = segment_;
  const int64_t K = segment_, nSeg = (steps_ + K - 1) / K, lastStart = (nSeg - 1) * K;
  auto size = [](std::vector<std::vector<T>>& v, int64_t count, int64_t n) {
    v.resize(static_cast<size_t>(count));
    for (auto& x : v) x.resize(static_cast<size_t>(n));
  };
  size(boundary_, nSeg - 1, S);
  size(segStates_, K + 1, S);
  size(segTapes_, K, tapeN() + 1);
  size(segOutputs_, K, O);
  segmentBuf_.resize(static_cast<size_t>(K * segN));
  res.peakBytes = bpttBytes(steps_, K, S, tapeN(), O, sizeof(T), segN) + stagedBytes();
  // The sequence-invariant part, once: every step (recomputed segments too) reads these values.
  prologue(params);
  dHoisted_.assign(hoisted_.size(), T(0));

  // Forward. Before the last segment, states ping-pong in segStates_[0..1] (tape and output go to
  // the slots of step 0, overwritten later) and each segment's first state is kept; the last
  // segment's states, tapes and outputs are kept for the backward.
  std::vector<T> init = initialState(params);
  std::copy(init.begin(), init.end(), segStates_[0].begin());
  if (keepOutputs) res.outputs.assign(steps_, {});
  for (int64_t t = 0; t < steps_; ++t) {
    const bool last = t >= lastStart;
    const int64_t k = last ? t - lastStart : 0;
    if (!last && t % K == 0) boundary_[t / K] = segStates_[0];
    step(params, segStates_[k].data(), b, noise, masks, t, segStates_[k + 1].data(),
         segOutputs_[k].data(), segTapes_[k].data());
    res.loss += stepLoss<T>(spec, L, b, t, segOutputs_[k].data(), denom, nullptr);
    if (keepOutputs) res.outputs[t] = segOutputs_[k];
    if (!last) std::swap(segStates_[0], segStates_[1]);
  }

  // Backward, one segment at a time from the last; the others are recomputed from their boundary.
  // The input adjoint is never read here: the kernel skips it when it can (null).
  // The state adjoint in place when the kernel allows (StepKernel::adjointInPlace): one buffer.
  const bool inPlace = kernel_.traits().adjointInPlace;
  std::vector<T> dState(S, T(0)), dIn(inPlace ? 0 : S), adjOut(O);
  const bool skipInputAdjoint = kernel_.traits().inputAdjointOptional;
  std::vector<T> dInputBuf(skipInputAdjoint ? 0 : L.inputSize * batch_);
  T* const dInput = skipInputAdjoint ? nullptr : dInputBuf.data();
  std::vector<T>& dParams = dParams_;  // a member: flushStaged adds to it
  dParams.assign(static_cast<size_t>(L.paramSize), T(0));
  for (int64_t seg = nSeg - 1; seg >= 0; --seg) {
    const int64_t t0 = seg * K, t1 = std::min(steps_, t0 + K);
    if (seg != nSeg - 1) {
      std::swap(segStates_[0], boundary_[seg]);
      for (int64_t t = t0; t < t1; ++t) {
        int64_t k = t - t0;
        step(params, segStates_[k].data(), b, noise, masks, t, segStates_[k + 1].data(),
             segOutputs_[k].data(), segTapes_[k].data());
      }
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      int64_t k = t - t0;
      stepLoss<T>(spec, L, b, t, segOutputs_[k].data(), denom, adjOut.data());
      const T* m = maskAt(masks, t);
      const T* in = maskedState(segStates_[k].data(), m);
      inputBuf_.assign(b.inputs[t].begin(), b.inputs[t].end());
      const T* nz = noise.empty() ? zerosNoise_.data() : noise[t].data();
      // This step's staged adjoints go to its rows of the adjoint chunk (reduced by flushStaged
      // when the walk leaves it); its staged values, when the backward reads them, from the
      // staged chunk (staged again if the forward moved on).
      T* const dStaged = stagedW_ ? adjointRows(params, b, t) : nullptr;
      T* const staged = stagedW_ && stagedReadBack_ ? stagedRows(params, b, t) : nullptr;
      if (omega_.lambda > 0) omegaStep(params, in, nz, segTapes_[k].data(), staged, dState, dParams, res);
      T* const out = inPlace ? dState.data() : dIn.data();
      // The segment stage when the weight gradients are deferred (it reads segment and k; the
      // per-step stage ignores them).
      kernel_.run(segN ? Stage::BackwardSegment : stagedW_ ? Stage::BackwardStaged : Stage::BackwardHoisted,
                  {.params = params.data(),
                   .hoisted = hoisted_.data(),
                   .state = in,
                   .input = inputBuf_.data(),
                   .noise = nz,
                   .tape = segTapes_[k].data(),
                   .dStateNext = dState.data(),
                   .dOutput = adjOut.data(),
                   .dState = out,
                   .dInput = stagedW_ ? nullptr : dInput,  // the staged step has none
                   .dParams = dParams.data(),
                   .dHoisted = dHoisted_.data(),
                   .segment = segmentBuf_.data(),
                   .staged = staged,
                   .dStaged = dStaged,
                   .k = k,
                   .batch = batch_});
      // The adjoint of the unmasked state: the mask multiplied it on the way in.
      if (m)
        for (int64_t i = 0; i < S; ++i) dState[i] = out[i] * m[i];
      else if (!inPlace)
        std::swap(dState, dIn);
    }
    // The segment's weight gradients, one product each over its steps x B rows.
    if (segN)
      kernel_.run(Stage::SegmentEpilogue, {.params = params.data(),
                                           .hoisted = hoisted_.data(),
                                           .dParams = dParams.data(),
                                           .dHoisted = dHoisted_.data(),
                                           .segment = segmentBuf_.data(),
                                           .steps = t1 - t0,
                                           .batch = batch_});
  }

  // The staged values' adjoints of the last chunk walked, to the params (and hoisted values).
  if (stagedW_) flushStaged(params, b);
  // The invariant part's adjoint, summed over the steps, flows back to the params once.
  kernel_.run(Stage::Epilogue, {.params = params.data(),
                                .hoisted = hoisted_.data(),
                                .dParams = dParams.data(),
                                .dHoisted = dHoisted_.data()});

  res.dParams.assign(dParams.begin(), dParams.end());
  // States that start from a param: their adjoint at t = 0, summed over the batch, is that
  // param's gradient too.
  for (const ir::Slot& st : L.states) {
    if (st.initParam < 0) continue;
    const ir::Slot& p = L.params[st.initParam];
    for (int64_t bb = 0; bb < batch_; ++bb)
      for (int64_t i = 0; i < st.size; ++i)
        res.dParams[p.offset + i] += dState[batch_ * st.offset + bb * st.size + i];
  }
  return res;
}

template <class T>
std::pair<int64_t, int64_t> Bptt<T>::shardRows(int64_t s) const {
  const int64_t shards = static_cast<int64_t>(shards_.size());
  return {shardFirst(batch_, shards, s), shardFirst(batch_, shards, s + 1)};
}

template <class T>
typename Bptt<T>::ShardInput Bptt<T>::shardInput(int64_t s, const TrialBatch& b, const LossSpec* spec,
                                                 const std::vector<std::vector<T>>& noise,
                                                 const std::vector<std::vector<T>>& masks) const {
  const ir::Layout& L = kernel_.layout();
  const auto [b0, b1] = shardRows(s);
  ShardInput in{{}, sliceSteps<T>(L.noises, L.noiseSize, batch_, b0, b1, noise),
                sliceSteps<T>(L.states, L.stateSize, batch_, b0, b1, masks)};
  in.trials.batch = b1 - b0;
  in.trials.steps = b.steps;
  in.trials.inputs = sliceSteps<double>(L.inputs, L.inputSize, batch_, b0, b1, b.inputs);
  if (spec) {
    const std::vector<ir::Slot> one = oneSlot(lossOutput(L, *spec).size);
    in.trials.targets = sliceSteps<double>(one, one[0].size, batch_, b0, b1, b.targets);
    in.trials.masks = sliceSteps<double>(one, one[0].size, batch_, b0, b1, b.masks);
  }
  return in;
}

// Runs f(s) for every shard on the work pool (one after the other when the kernel's calls may not
// run at once). An exception in any (a bad input, memory) reaches the caller after every shard
// has stopped: a chunk must not throw into the pool.
template <class F>
static void eachShard(int64_t shards, bool concurrent, F&& f) {
  forChunksRethrowing(shards, concurrent ? threads() : 1, std::forward<F>(f));
}

template <class T>
BpttResult<T> Bptt<T>::runShards(const std::vector<T>& params, const TrialBatch& b, const LossSpec& spec,
                                 const std::vector<std::vector<T>>& noise,
                                 const std::vector<std::vector<T>>& masks, bool keepOutputs, double denom) {
  const ir::Layout& L = kernel_.layout();
  const int64_t shards = static_cast<int64_t>(shards_.size());
  std::vector<BpttResult<T>> parts(static_cast<size_t>(shards));
  eachShard(shards, kernel_.traits().concurrentCalls, [&](int64_t s) {
    const ShardInput in = shardInput(s, b, &spec, noise, masks);
    parts[s] = shards_[s]->run(params, in.trials, spec, in.noise, in.masks, keepOutputs, denom);
  });
  BpttResult<T> res;
  res.segment = parts[0].segment;
  res.dParams.assign(static_cast<size_t>(L.paramSize), T(0));
  if (keepOutputs) res.outputs.assign(steps_, std::vector<T>(static_cast<size_t>(L.outputSize * batch_)));
  for (int64_t s = 0; s < shards; ++s) {
    const BpttResult<T>& p = parts[s];
    res.loss += p.loss;
    res.omega += p.omega;
    res.peakBytes += p.peakBytes;
    for (size_t i = 0; i < res.dParams.size(); ++i) res.dParams[i] += p.dParams[i];
    const auto [b0, b1] = shardRows(s);
    if (keepOutputs)
      for (int64_t t = 0; t < steps_; ++t) placeRows(L.outputs, batch_, b0, b1, p.outputs[t].data(), res.outputs[t].data());
  }
  return res;
}

template <class T>
void Bptt<T>::forwardShards(const std::vector<T>& params, const TrialBatch& b,
                            const std::vector<std::vector<T>>& noise,
                            const std::vector<std::vector<T>>& masks,
                            std::vector<std::vector<T>>& outputs, std::vector<T>* finalState,
                            std::vector<std::vector<T>>* states) {
  const ir::Layout& L = kernel_.layout();
  const int64_t shards = static_cast<int64_t>(shards_.size());
  struct Part {
    std::vector<std::vector<T>> outputs, states;
    std::vector<T> finalState;
  };
  std::vector<Part> parts(static_cast<size_t>(shards));
  eachShard(shards, kernel_.traits().concurrentCalls, [&](int64_t s) {
    const ShardInput in = shardInput(s, b, nullptr, noise, masks);
    Part& p = parts[s];
    shards_[s]->forward(params, in.trials, in.noise, in.masks, p.outputs,
                        finalState ? &p.finalState : nullptr, states ? &p.states : nullptr);
  });
  outputs.assign(steps_, std::vector<T>(static_cast<size_t>(L.outputSize * batch_)));
  if (finalState) finalState->assign(static_cast<size_t>(L.stateSize * batch_), T(0));
  if (states) states->assign(steps_, std::vector<T>(static_cast<size_t>(L.stateSize * batch_)));
  for (int64_t s = 0; s < shards; ++s) {
    const auto [b0, b1] = shardRows(s);
    const Part& p = parts[s];
    for (int64_t t = 0; t < steps_; ++t) {
      placeRows(L.outputs, batch_, b0, b1, p.outputs[t].data(), outputs[t].data());
      if (states) placeRows(L.states, batch_, b0, b1, p.states[t].data(), (*states)[t].data());
    }
    if (finalState) placeRows(L.states, batch_, b0, b1, p.finalState.data(), finalState->data());
  }
}

template <class T>
void Bptt<T>::omegaStep(const std::vector<T>& params, const T* in, const T* noise, T* tape,
                        const T* staged, const std::vector<T>& dState, std::vector<T>& dParams, BpttResult<T>& res) {
  const ir::Layout& L = kernel_.layout();
  if (omega_.stateSlot < 0 || omega_.stateSlot >= static_cast<int>(L.states.size()))
    throw std::invalid_argument("Omega: the cell has no state number " + std::to_string(omega_.stateSlot));
  const ir::Slot& st = L.states[omega_.stateSlot];
  const int64_t S = L.stateSize * batch_, off = batch_ * st.offset, n = st.size;
  // v: the adjoint of the regularized state alone; w = v^T dx'/dx, through the transition only.
  std::vector<T> v(S, T(0)), w(S), dx(L.inputSize * batch_), scratch(L.paramSize, T(0));
  std::copy(dState.begin() + off, dState.begin() + off + batch_ * n, v.begin() + off);
  std::vector<T> noOut(L.outputSize * batch_, T(0)), dHoisted(hoisted_.size(), T(0));
  std::vector<T> dStaged(static_cast<size_t>(batch_ * stagedW_));  // discarded, as the param gradient
  // The tape is the walk's plan's: the staged backward when the input stage runs (the same w).
  kernel_.run(stagedW_ ? Stage::BackwardStaged : Stage::BackwardHoisted,
                                      {.params = params.data(),
                                       .hoisted = hoisted_.data(),
                                       .state = in,
                                       .input = inputBuf_.data(),
                                       .noise = noise,
                                       .tape = tape,
                                       .dStateNext = v.data(),
                                       .dOutput = noOut.data(),
                                       .dState = w.data(),
                                       .dInput = stagedW_ ? nullptr : dx.data(),
                                       .dParams = scratch.data(),
                                       .dHoisted = dHoisted.data(),
                                       .staged = const_cast<T*>(staged),
                                       .dStaged = dStaged.data(),
                                       .batch = batch_});
  const double scale = omega_.lambda / static_cast<double>(steps_ * omegaBatch_);
  std::vector<T> cot(S, T(0));
  for (int64_t bb = 0; bb < batch_; ++bb) {
    double vv = 0, ww = 0;
    for (int64_t i = 0; i < n; ++i) {
      double vi = v[off + bb * n + i], wi = w[off + bb * n + i];
      vv += vi * vi, ww += wi * wi;
    }
    if (!(vv > 1e-30)) continue;  // no gradient reaches this state here: nothing to regularize
    double r = ww / vv;
    res.omega += (r - 1) * (r - 1) / static_cast<double>(steps_ * omegaBatch_);
    res.loss += scale * (r - 1) * (r - 1);
    double k = scale * 4 * (r - 1) / vv;  // d/dw of scale (|w|^2/|v|^2 - 1)^2
    for (int64_t i = 0; i < n; ++i) cot[off + bb * n + i] = static_cast<T>(k * w[off + bb * n + i]);
  }
  kernel_.run(Stage::Omega, {.params = params.data(),
                             .state = in,
                             .input = inputBuf_.data(),
                             .noise = noise,
                             .dParams = dParams.data(),
                             .v = v.data(),
                             .cotangent = cot.data(),
                             .batch = batch_});
}

template <class T>
std::vector<std::vector<T>> dropoutMasks(const ir::Layout& L, const DropoutSpec& spec,
                                         int64_t batch, int64_t steps,
                                         const std::function<double()>& uniform01) {
  if (spec.p <= 0) return {};
  if (spec.p >= 1) throw std::invalid_argument("dropout p must be below 1");
  std::vector<int> slots = spec.stateSlots;
  if (slots.empty())
    for (size_t i = 0; i < L.states.size(); ++i)
      if (L.states[i].shape.rank() == 1) slots.push_back(static_cast<int>(i));
  const T keep = static_cast<T>(1 / (1 - spec.p));
  int64_t count = spec.perStep ? steps : 1;
  std::vector<std::vector<T>> masks(count, std::vector<T>(L.stateSize * batch, T(1)));
  for (auto& m : masks)
    for (int s : slots) {
      const ir::Slot& st = L.states.at(s);
      for (int64_t i = 0; i < batch * st.size; ++i)
        m[batch * st.offset + i] = uniform01() < spec.p ? T(0) : keep;
    }
  return masks;
}

template class Bptt<float>;
template class Bptt<double>;
template int64_t batchShards<float>(const StepKernel<float>&, int64_t);
template int64_t batchShards<double>(const StepKernel<double>&, int64_t);
template std::vector<std::vector<float>> dropoutMasks<float>(const ir::Layout&, const DropoutSpec&,
                                                             int64_t, int64_t,
                                                             const std::function<double()>&);
template std::vector<std::vector<double>> dropoutMasks<double>(const ir::Layout&, const DropoutSpec&,
                                                               int64_t, int64_t,
                                                               const std::function<double()>&);

}  // namespace cellc::runtime
