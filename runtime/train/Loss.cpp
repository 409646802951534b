#include "train/Loss.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cellc::runtime {

namespace {

const LossKind kKinds[] = {LossKind::Mse, LossKind::MseLast, LossKind::CrossEntropy,
                           LossKind::CrossEntropyLast};

bool lastOnly(LossKind k) { return k == LossKind::MseLast || k == LossKind::CrossEntropyLast; }

// Class weights of one trial's term: m target (m = 1 without masks or at the last step only).
double weight(const TrialBatch& b, const LossSpec& spec, int64_t t, int64_t i) {
  const double m = b.masks.empty() || lastOnly(spec.kind) ? 1.0 : b.masks[t][i];
  return m * b.targets[t][i];
}

}  // namespace

const char* lossKindName(LossKind k) {
  switch (k) {
    case LossKind::Mse: return "mse";
    case LossKind::MseLast: return "mse_last";
    case LossKind::CrossEntropy: return "cross_entropy";
    case LossKind::CrossEntropyLast: return "cross_entropy_last";
  }
  return "?";
}

std::optional<LossKind> parseLossKind(const std::string& name) {
  for (LossKind k : kKinds)
    if (name == lossKindName(k)) return k;
  return std::nullopt;
}

bool isClassification(LossKind k) { return k == LossKind::CrossEntropy || k == LossKind::CrossEntropyLast; }

const ir::Slot& lossOutput(const ir::Layout& L, const LossSpec& spec) {
  if (spec.outputSlot < 0 || spec.outputSlot >= static_cast<int>(L.outputs.size()))
    throw std::invalid_argument("loss: the cell has no output number " + std::to_string(spec.outputSlot));
  return L.outputs[spec.outputSlot];
}

bool lossAt(const LossSpec& spec, const TrialBatch& b, int64_t t) {
  return !lastOnly(spec.kind) || t == b.steps - 1;
}

double lossDenominator(const LossSpec& spec, const ir::Slot& out, const TrialBatch& b) {
  if (spec.kind == LossKind::MseLast) return static_cast<double>(b.batch * out.size);
  if (isClassification(spec.kind)) {
    double s = 0;
    for (int64_t t = 0; t < b.steps; ++t)
      if (lossAt(spec, b, t))
        for (int64_t i = 0; i < b.batch * out.size; ++i) s += weight(b, spec, t, i);
    return s > 0 ? s : 1;
  }
  if (b.masks.empty()) return static_cast<double>(b.steps * b.batch * out.size);
  double s = 0;
  for (const auto& m : b.masks)
    for (double v : m) s += v;
  return s > 0 ? s : 1;
}

void checkTargets(const ir::Slot& out, const LossSpec& spec, const TrialBatch& b) {
  for (int64_t t = 0; t < b.steps; ++t) {
    if (!lossAt(spec, b, t)) continue;
    if (static_cast<int64_t>(b.targets.at(t).size()) != out.size * b.batch)
      throw std::invalid_argument("targets of step " + std::to_string(t) + " have " +
                                  std::to_string(b.targets[t].size()) + " values, output " + out.name +
                                  " has " + std::to_string(out.size * b.batch));
    if (isClassification(spec.kind))
      for (double v : b.targets[t])
        if (!(v >= 0))
          throw std::invalid_argument(std::string(lossKindName(spec.kind)) + ": a target of step " + std::to_string(t) +
                                      " is " + std::to_string(v) + "; class weights are one-hot (or at least 0)");
  }
}

template <class T>
double stepLoss(const LossSpec& spec, const ir::Layout& L, const TrialBatch& b, int64_t t,
                const T* output, double denom, T* adj) {
  const ir::Slot& out = lossOutput(L, spec);
  const int64_t n = b.batch * out.size;
  const T* y = output + b.batch * out.offset;
  if (adj) std::fill(adj, adj + L.outputSize * b.batch, T(0));
  if (!lossAt(spec, b, t)) return 0;
  T* dy = adj ? adj + b.batch * out.offset : nullptr;
  double sum = 0;
  if (isClassification(spec.kind)) {
    // Per trial: -sum_i w_i log p_i with log p = y - max - log sum exp(y - max).
    for (int64_t r = 0; r < b.batch; ++r) {
      const int64_t o = r * out.size;
      double m = static_cast<double>(y[o]), W = 0;
      for (int64_t i = 0; i < out.size; ++i) m = std::max(m, static_cast<double>(y[o + i]));
      double s = 0;
      for (int64_t i = 0; i < out.size; ++i) s += std::exp(static_cast<double>(y[o + i]) - m);
      const double logS = std::log(s);
      for (int64_t i = 0; i < out.size; ++i) {
        const double w = weight(b, spec, t, o + i);
        W += w;
        if (w != 0) sum -= w * (static_cast<double>(y[o + i]) - m - logS);
      }
      if (dy)
        for (int64_t i = 0; i < out.size; ++i) {
          const double p = std::exp(static_cast<double>(y[o + i]) - m) / s;
          dy[o + i] = static_cast<T>((p * W - weight(b, spec, t, o + i)) / denom);
        }
    }
    return sum / denom;
  }
  const std::vector<double>& target = b.targets[t];
  const double* mask = b.masks.empty() ? nullptr : b.masks[t].data();
  for (int64_t i = 0; i < n; ++i) {
    double m = mask ? mask[i] : 1.0;
    double d = static_cast<double>(y[i]) - target[i];
    sum += m * d * d;
    if (dy) dy[i] = static_cast<T>(2 * m * d / denom);
  }
  return sum / denom;
}

double lossValue(const LossSpec& spec, const ir::Layout& L, const TrialBatch& b,
                 const std::vector<std::vector<double>>& outputs) {
  const double denom = lossDenominator(spec, lossOutput(L, spec), b);
  double sum = 0;
  for (int64_t t = 0; t < b.steps; ++t) sum += stepLoss<double>(spec, L, b, t, outputs[t].data(), denom, nullptr);
  return sum;
}

void Accuracy::add(const Accuracy& o) {
  correct += o.correct;
  total += o.total;
  if (perClass.size() < o.perClass.size()) perClass.resize(o.perClass.size(), 0.0);
  for (size_t i = 0; i < o.perClass.size(); ++i) perClass[i] += o.perClass[i];
}

double Accuracy::chance() const {
  if (total <= 0) return 0;
  return *std::max_element(perClass.begin(), perClass.end()) / total;
}

Accuracy accuracyOf(const LossSpec& spec, const ir::Layout& L, const TrialBatch& b,
                    const std::vector<std::vector<double>>& outputs) {
  const ir::Slot& out = lossOutput(L, spec);
  Accuracy a;
  a.perClass.assign(static_cast<size_t>(out.size), 0.0);
  if (!isClassification(spec.kind)) return a;
  for (int64_t t = 0; t < b.steps; ++t) {
    if (!lossAt(spec, b, t)) continue;
    const double* y = outputs[t].data() + b.batch * out.offset;
    for (int64_t r = 0; r < b.batch; ++r) {
      const int64_t o = r * out.size;
      double W = 0;
      int64_t chosen = 0, wanted = 0;  // first maximum of each, as argmax
      for (int64_t i = 0; i < out.size; ++i) {
        W += weight(b, spec, t, o + i);
        if (y[o + i] > y[o + chosen]) chosen = i;
        if (b.targets[t][o + i] > b.targets[t][o + wanted]) wanted = i;
      }
      if (W <= 0) continue;
      a.total += W;
      a.perClass[static_cast<size_t>(wanted)] += W;
      if (chosen == wanted) a.correct += W;
    }
  }
  return a;
}

template double stepLoss<float>(const LossSpec&, const ir::Layout&, const TrialBatch&, int64_t, const float*,
                                double, float*);
template double stepLoss<double>(const LossSpec&, const ir::Layout&, const TrialBatch&, int64_t, const double*,
                                 double, double*);

}  // namespace cellc::runtime
