// `weight_histogram` (E2): the entries of the trained effective recurrent matrix (the one the
// cell's spectral_radius initializer names), excitatory and inhibitory columns apart, in one
// histogram with shared bins. The paper's claim: the distributions look alike across K.
#include <algorithm>
#include <cmath>

#include "analysis/Analysis.h"
#include "params/Init.h"

namespace cellc::runtime {

namespace {

using json = nlohmann::json;

// The index of the param whose effective matrix the cell names, or -1.
int64_t effectiveParam(const Model& m) {
  for (size_t p = 0; p < m.ir.layout.params.size(); ++p)
    if (m.ir.effective[p] >= 0 && m.ir.layout.params[p].shape.rank() == 2) return static_cast<int64_t>(p);
  return -1;
}

json stats(std::vector<double> v) {
  if (v.empty()) return json::object();
  double sum = 0, sq = 0;
  int64_t zeros = 0;
  for (double x : v) sum += x, sq += x * x, zeros += x == 0;
  const double n = static_cast<double>(v.size()), mean = sum / n;
  std::sort(v.begin(), v.end());
  auto q = [&](double f) { return v[static_cast<size_t>(f * (n - 1))]; };
  return {{"mean", mean}, {"std", std::sqrt(std::max(0.0, sq / n - mean * mean))},
          {"zero_fraction", static_cast<double>(zeros) / n}, {"q05", q(0.05)}, {"median", q(0.5)},
          {"q95", q(0.95)}, {"entries", v.size()}};
}

class WeightHistogram : public Analysis {
 public:
  void check(const AnalysisContext& c) const override {
    if (effectiveParam(c.model) < 0)
      c.fail("kind", "the cell must name its effective recurrent matrix (spectral_radius(..., W))");
    const int64_t bins = c.spec.bins;
    if (bins < 1 || bins > 100000) c.fail("bins", "takes 1 to 100000 bins");
    const double f = c.spec.excitatory;
    if (f <= 0 || f >= 1) c.fail("excitatory", "is a fraction between 0 and 1");
  }

  json run(const AnalysisContext& c) const override {
    const int64_t p = effectiveParam(c.model);
    const ir::Slot& slot = c.model.ir.layout.params[p];
    const int64_t rows = slot.shape.dims[0], cols = slot.shape.dims[1];
    const int64_t nE = static_cast<int64_t>(std::floor(c.spec.excitatory * static_cast<double>(cols)));
    std::vector<double> w = effectiveMatrix(c.model.ir, c.params, static_cast<size_t>(p));
    std::vector<double> e, in;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) (k < nE ? e : in).push_back(w[r * cols + k]);
    const int64_t bins = c.spec.bins;
    auto [lo, hi] = std::minmax_element(w.begin(), w.end());
    const double a = *lo, b = *hi > *lo ? *hi : *lo + 1;
    std::vector<double> edges(bins + 1), he(bins, 0), hi_(bins, 0);
    for (int64_t k = 0; k <= bins; ++k) edges[k] = a + (b - a) * static_cast<double>(k) / static_cast<double>(bins);
    auto bin = [&](double x) { return std::clamp<int64_t>(static_cast<int64_t>((x - a) / (b - a) * static_cast<double>(bins)), 0, bins - 1); };
    for (double x : e) he[bin(x)] += 1;
    for (double x : in) hi_[bin(x)] += 1;
    c.save("weight_edges", {bins + 1}, edges);
    c.save("weight_hist_e", {bins}, he);
    c.save("weight_hist_i", {bins}, hi_);
    c.save("weight_matrix", {rows, cols}, w);
    json j;
    j["matrix"] = slot.name;
    j["measured"] = {{"excitatory", stats(e)}, {"inhibitory", stats(in)}};
    j["paper_claim"] = "The distributions of trained recurrent weights look alike whatever the number of sequences K (seed 000, section 3.2, Fig 4).";
    return j;
  }
};

}  // namespace

std::unique_ptr<Analysis> makeWeightHistogram() { return std::make_unique<WeightHistogram>(); }

}  // namespace cellc::runtime
