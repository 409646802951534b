// Phase 2 of `cellc unroll` (UnrollFiles.h): the sequence from the arrays read, forwardSequence,
// the loss and its output adjoints, backwardSequence.
#include "unroll/UnrollCompute.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace cellc::runtime {

namespace {

// The arrays as a Sequence: params, initial states (a file, else the declared value), and the
// inputs and noise per step.
template <class T>
Sequence<T> sequenceOf(const ir::Layout& L, const UnrollInputs<T>& in) {
  const int64_t steps = in.steps, B = in.batch;
  Sequence<T> seq;
  seq.batch = B;
  seq.params.assign(static_cast<size_t>(L.paramSize), T(0));
  for (const ir::Slot& s : L.params) {
    const std::vector<T>& v = in.arrays.at(s.name + ".npy");
    std::copy(v.begin(), v.end(), seq.params.begin() + s.offset);
  }
  seq.initialState.assign(static_cast<size_t>(L.stateSize * B), T(0));
  for (const ir::Slot& s : L.states) {
    T* dst = seq.initialState.data() + B * s.offset;
    if (const std::vector<T>* v = in.find(s.name + ".npy"))
      std::copy(v->begin(), v->end(), dst);
    else
      L.fillDeclaredState(s, seq.params.data(), B, dst);
  }
  // [T, B, dims...] per slot -> per step, slot i at B * offset.
  auto perStep = [&](const std::vector<ir::Slot>& slots, int64_t roleSize, bool optional) {
    std::vector<std::vector<T>> bufs;
    bool any = false;
    for (const ir::Slot& s : slots) any = any || in.find(s.name + ".npy");
    if (optional && !any) return bufs;
    // A missing noise array holds its default (0, or 1 for a dropout mask: every unit kept).
    std::vector<T> fill = &slots == &L.noises ? L.defaultNoise<T>(B)
                                             : std::vector<T>(static_cast<size_t>(roleSize * B));
    bufs.assign(static_cast<size_t>(steps), fill);
    for (const ir::Slot& s : slots)
      if (const std::vector<T>* v = in.find(s.name + ".npy"))
        for (int64_t t = 0; t < steps; ++t)
          std::copy_n(v->data() + t * B * s.size, B * s.size,
                      bufs[static_cast<size_t>(t)].data() + B * s.offset);
    return bufs;
  };
  seq.inputs = perStep(L.inputs, L.inputSize, false);
  seq.noise = perStep(L.noises, L.noiseSize, true);
  return seq;
}

// The loss of the trajectory (adjoints, mse or mse_last as in UnrollFiles.h); fills its adjoints
// with respect to every step's outputs and the final state.
template <class T>
double lossAndAdjoints(const ir::Layout& L, const UnrollInputs<T>& in, const Trajectory<T>& traj,
                       std::vector<std::vector<T>>& dOut, std::vector<T>& dFinal) {
  const int64_t steps = in.steps, B = in.batch;
  double lossValue = 0;
  if (in.loss == LossKind::Adjoints) {
    for (const ir::Slot& s : L.outputs)
      if (const std::vector<T>* d = in.find("d_" + s.name + ".npy"))
        for (int64_t t = 0; t < steps; ++t) {
          const T* src = d->data() + t * B * s.size;
          const T* y = traj.outputs[static_cast<size_t>(t)].data() + B * s.offset;
          T* dst = dOut[static_cast<size_t>(t)].data() + B * s.offset;
          for (int64_t i = 0; i < B * s.size; ++i) {
            dst[i] = src[i];
            lossValue += static_cast<double>(src[i]) * static_cast<double>(y[i]);
          }
        }
    for (const ir::Slot& s : L.states)
      if (const std::vector<T>* d = in.find("d_final_" + s.name + ".npy")) {
        const T* h = traj.finalState().data() + B * s.offset;
        T* dst = dFinal.data() + B * s.offset;
        for (int64_t i = 0; i < B * s.size; ++i) {
          dst[i] = (*d)[static_cast<size_t>(i)];
          lossValue += static_cast<double>((*d)[static_cast<size_t>(i)]) * static_cast<double>(h[i]);
        }
      }
    return lossValue;
  }
  const bool last = in.loss == LossKind::MseLast;
  for (const ir::Slot& s : L.outputs) {
    const std::vector<T>* target = in.find("target_" + s.name + ".npy");
    if (!target) continue;
    const std::vector<T>* mask = last ? nullptr : in.find("mask_" + s.name + ".npy");
    const int64_t perStepN = B * s.size;
    const double count = static_cast<double>(last ? perStepN : steps * perStepN);
    for (int64_t t = last ? steps - 1 : 0; t < steps; ++t) {
      const int64_t base = last ? 0 : t * perStepN;
      const T* y = traj.outputs[static_cast<size_t>(t)].data() + B * s.offset;
      T* dst = dOut[static_cast<size_t>(t)].data() + B * s.offset;
      for (int64_t i = 0; i < perStepN; ++i) {
        double m = mask ? static_cast<double>((*mask)[static_cast<size_t>(base + i)]) : 1.0;
        double r = static_cast<double>(y[i]) -
                   static_cast<double>((*target)[static_cast<size_t>(base + i)]);
        lossValue += m * r * r / count;
        dst[i] = static_cast<T>(2.0 * m * r / count);
      }
    }
  }
  return lossValue;
}

}  // namespace

template <class T>
UnrollResult<T> computeUnroll(StepKernel<T>& kernel, const ir::Layout& L,
                              const UnrollInputs<T>& in) {
  const int64_t steps = in.steps, B = in.batch;
  const Sequence<T> seq = sequenceOf(L, in);
  UnrollResult<T> r;
  try {
    r.trajectory = forwardSequence(kernel, seq);
  } catch (const std::invalid_argument& e) {
    throw UnrollError(std::string("unroll: internal error in the forward pass: ") + e.what());
  }
  if (in.loss == LossKind::None) return r;

  std::vector<std::vector<T>> dOut(static_cast<size_t>(steps),
                                   std::vector<T>(static_cast<size_t>(L.outputSize * B)));
  std::vector<T> dFinal(static_cast<size_t>(L.stateSize * B), T(0));
  r.loss = lossAndAdjoints(L, in, r.trajectory, dOut, dFinal);
  SequenceGradients<T>& grads = r.gradients;
  try {
    grads = backwardSequence(kernel, seq, r.trajectory, dOut, dFinal);
  } catch (const std::invalid_argument& e) {
    throw UnrollError(std::string("unroll: internal error in the backward pass: ") + e.what());
  }
  // A param the initial state starts from gets that state's gradient, summed over the batch.
  for (const ir::Slot& s : L.states) {
    if (s.initParam < 0 || in.find(s.name + ".npy")) continue;
    const ir::Slot& p = L.params.at(static_cast<size_t>(s.initParam));
    const T* dInit = grads.dInitialState.data() + B * s.offset;
    for (int64_t i = 0; i < s.size; ++i) {
      double sum = 0;
      for (int64_t b = 0; b < B; ++b) sum += static_cast<double>(dInit[b * s.size + i]);
      grads.dParams[static_cast<size_t>(p.offset + i)] += static_cast<T>(sum);
    }
  }
  return r;
}

template UnrollResult<float> computeUnroll(StepKernel<float>&, const ir::Layout&,
                                           const UnrollInputs<float>&);
template UnrollResult<double> computeUnroll(StepKernel<double>&, const ir::Layout&,
                                            const UnrollInputs<double>&);

}  // namespace cellc::runtime
