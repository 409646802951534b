// Optimizers: freeze masks, SGD with global-norm clipping (pycog), Adam (Kingma & Ba; optax.adam).
#include "io/Binary.h"
#include "train/Optimizer.h"
#include "train/UpdateKernels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <istream>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace cellc::runtime {
namespace {

constexpr char kOptMagic[8] = {'C', 'E', 'L', 'L', 'C', 'O', 'P', 'T'};
constexpr uint32_t kOptVersion = 1;

[[noreturn]] void bad(const std::string& why) {
  throw std::runtime_error("optimizer state: " + why);
}

// Little-endian values (io/Binary.h); readers name this state in their messages.
constexpr const char* kContext = "optimizer state";
using binary::putF64;
using binary::putU32;
using binary::putU64;

const ir::Slot& findParam(const ir::Layout& layout, const std::string& name) {
  if (const ir::Slot* s = layout.find(ir::Role::Param, name)) {
    if (s->offset < 0 || s->size < 0 || s->offset + s->size > layout.paramSize)
      throw std::invalid_argument("freeze: param '" + name + "' lies outside the layout");
    return *s;
  }
  std::string known;
  for (const ir::Slot& s : layout.params) known += (known.empty() ? "" : ", ") + s.name;
  throw std::invalid_argument("freeze: unknown param '" + name + "' (the cell's params: " +
                              (known.empty() ? "none" : known) + ")");
}

void prepare(FreezeMask& m, const ir::Layout& layout) {
  if (m.frozen.empty()) {
    m.frozen.assign(static_cast<size_t>(layout.paramSize), 0);
  } else if (m.frozen.size() != static_cast<size_t>(layout.paramSize)) {
    throw std::invalid_argument("freeze: the mask has " + std::to_string(m.frozen.size()) +
                                " elements, the layout's params " +
                                std::to_string(layout.paramSize));
  }
}

}  // namespace

// --- FreezeMask ---

FreezeMask FreezeMask::none(size_t size) {
  FreezeMask m;
  m.frozen.assign(size, 0);
  return m;
}

FreezeMask& FreezeMask::freeze(const ir::Layout& layout, const std::string& paramName) {
  const ir::Slot& s = findParam(layout, paramName);
  prepare(*this, layout);
  std::fill_n(frozen.begin() + s.offset, s.size, uint8_t{1});
  return *this;
}

FreezeMask& FreezeMask::freezeWhere(const ir::Layout& layout, const std::string& paramName,
                                    const std::vector<uint8_t>& elementMask) {
  const ir::Slot& s = findParam(layout, paramName);
  if (elementMask.size() != static_cast<size_t>(s.size))
    throw std::invalid_argument("freeze: the element mask for '" + paramName + "' has " +
                                std::to_string(elementMask.size()) + " elements, the param " +
                                std::to_string(s.size));
  prepare(*this, layout);
  for (size_t i = 0; i < elementMask.size(); ++i)
    if (elementMask[i]) frozen[static_cast<size_t>(s.offset) + i] = 1;
  return *this;
}

size_t FreezeMask::frozenCount() const {
  return static_cast<size_t>(std::count_if(frozen.begin(), frozen.end(),
                                           [](uint8_t b) { return b != 0; }));
}

// --- Optimizer ---

Optimizer::Optimizer(double lr, double clipNorm, FreezeMask mask, int moments)
    : lr_(lr), clip_(clipNorm), mask_(std::move(mask)), moments_(static_cast<size_t>(moments)) {
  setLearningRate(lr);
  if (!std::isfinite(clipNorm))
    throw std::invalid_argument("optimizer: the clip norm must be finite (<= 0: no clipping)");
  if (!mask_.frozen.empty()) {
    size_ = static_cast<int64_t>(mask_.frozen.size());
    for (auto& m : moments_) m.assign(mask_.frozen.size(), 0.0);
  }
}

void Optimizer::setLearningRate(double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    throw std::invalid_argument("optimizer: the learning rate must be finite and >= 0, not " +
                                std::to_string(lr));
  lr_ = lr;
}

void Optimizer::step(std::vector<double>& params, const std::vector<double>& grad) {
  if (params.size() != grad.size())
    throw std::invalid_argument("optimizer step: " + std::to_string(params.size()) +
                                " params but " + std::to_string(grad.size()) + " gradients");
  if (size_ >= 0 && params.size() != static_cast<size_t>(size_))
    throw std::invalid_argument("optimizer step: " + std::to_string(params.size()) +
                                " params, the optimizer has " + std::to_string(size_));
  const size_t n = grad.size();
  // The global norm over unfrozen elements; every one must be finite.
  double sumsq = 0, maxAbs = 0;
  for (size_t i = 0; i < n; ++i) {
    if (mask_.isFrozen(i)) continue;
    double g = grad[i];
    if (!std::isfinite(g))
      throw std::domain_error("optimizer step: gradient element " + std::to_string(i) + " is " +
                              std::to_string(g));
    sumsq += g * g;
    maxAbs = std::max(maxAbs, std::fabs(g));
  }
  double norm = std::sqrt(sumsq);
  if (!std::isfinite(norm)) {  // finite elements whose squares overflow: scale first
    double s = 0;
    for (size_t i = 0; i < n; ++i)
      if (!mask_.isFrozen(i)) s += (grad[i] / maxAbs) * (grad[i] / maxAbs);
    norm = maxAbs * std::sqrt(s);
  }
  // pycog: g * min(1, maxnorm / norm), one factor for every element.
  double scale = 1;
  if (clip_ > 0 && norm > clip_) scale = clip_ / norm;

  if (size_ < 0) {
    size_ = static_cast<int64_t>(n);
    for (auto& m : moments_) m.assign(n, 0.0);
  }
  ++steps_;
  lastNorm_ = norm;
  apply(params, grad, scale);
}

void Optimizer::save(std::ostream& out) const {
  out.write(kOptMagic, sizeof kOptMagic);
  putU32(out, kOptVersion);
  std::string k = kind();
  putU32(out, static_cast<uint32_t>(k.size()));
  out.write(k.data(), static_cast<std::streamsize>(k.size()));
  putU64(out, static_cast<uint64_t>(size_));
  putU64(out, static_cast<uint64_t>(steps_));
  putF64(out, lastNorm_);
  putU32(out, static_cast<uint32_t>(moments_.size()));
  for (const auto& m : moments_)
    for (double x : m) putF64(out, x);
  if (!out) throw std::runtime_error("optimizer state: write failed");
}

void Optimizer::load(std::istream& in) {
  binary::Reader r(in, kContext);
  char magic[sizeof kOptMagic];
  r.bytes(magic, sizeof magic, "magic");
  if (!std::equal(magic, magic + sizeof magic, kOptMagic)) bad("not cellc optimizer state");
  uint32_t version = r.u32("version");
  if (version != kOptVersion)
    bad("unsupported version " + std::to_string(version) + " (this build reads version " +
        std::to_string(kOptVersion) + ")");
  uint32_t klen = r.u32("kind");
  if (klen > 64) bad("corrupt (kind name of " + std::to_string(klen) + " bytes)");
  std::string k(klen, '\0');
  r.bytes(k.data(), klen, "kind");
  if (k != kind()) bad("saved by an optimizer of kind '" + k + "', this one is '" + kind() + "'");
  auto savedSize = static_cast<int64_t>(r.u64("element count"));
  if (savedSize < -1) bad("corrupt (element count " + std::to_string(savedSize) + ")");
  if (savedSize >= 0 && size_ >= 0 && savedSize != size_)
    bad("saved for " + std::to_string(savedSize) + " elements, this optimizer has " +
        std::to_string(size_));
  auto steps = static_cast<int64_t>(r.u64("step count"));
  if (steps < 0) bad("corrupt (step count " + std::to_string(steps) + ")");
  if (savedSize < 0 && steps != 0) bad("corrupt (steps taken but no element count)");
  double lastNorm = r.f64("last norm");
  uint32_t nm = r.u32("moment count");
  if (nm != moments_.size())
    bad("holds " + std::to_string(nm) + " moment vectors, a '" + kind() + "' optimizer keeps " +
        std::to_string(moments_.size()));
  uint64_t per = savedSize < 0 ? 0 : static_cast<uint64_t>(savedSize);
  std::vector<std::vector<double>> moments;
  for (uint32_t j = 0; j < nm; ++j) moments.push_back(r.doubles(per, "moments"));

  // Commit (nothing below throws).
  if (savedSize >= 0) {
    size_ = savedSize;
    moments_ = std::move(moments);
  } else if (size_ >= 0) {
    for (auto& m : moments_) m.assign(static_cast<size_t>(size_), 0.0);
  }
  steps_ = steps;
  lastNorm_ = lastNorm;
}

std::string Optimizer::saveToString() const {
  std::ostringstream out(std::ios::binary);
  save(out);
  return std::move(out).str();
}

void Optimizer::loadFromString(const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  // Trailing bytes are an error too, found only after load committed: restore then.
  int64_t size = size_, steps = steps_;
  double lastNorm = lastNorm_;
  std::vector<std::vector<double>> moments = moments_;
  load(in);
  if (in.peek() != std::char_traits<char>::eof()) {
    auto extra = bytes.size() - static_cast<size_t>(in.tellg());
    size_ = size;
    steps_ = steps;
    lastNorm_ = lastNorm;
    moments_ = std::move(moments);
    bad("corrupt (" + std::to_string(extra) + " bytes after the state)");
  }
}

// The mask's flags, or null when nothing is frozen (the update loops then have no branch).
static const uint8_t* frozenOrNull(const FreezeMask& mask) {
  return mask.frozenCount() == 0 ? nullptr : mask.frozen.data();
}

// --- Sgd ---

Sgd::Sgd(double lr, double clipNorm, FreezeMask mask)
    : Optimizer(lr, clipNorm, std::move(mask), 0) {}

void Sgd::apply(std::vector<double>& params, const std::vector<double>& grad, double scale) {
  kernels::sgd(params.data(), grad.data(), params.size(), lr_, scale, frozenOrNull(mask_));
}

// --- Adam ---

Adam::Adam(double lr, double beta1, double beta2, double eps, FreezeMask mask, double clipNorm)
    : Optimizer(lr, clipNorm, std::move(mask), 2), b1_(beta1), b2_(beta2), eps_(eps) {
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
    throw std::invalid_argument("adam: beta1 and beta2 must lie in [0, 1)");
  if (!(eps >= 0) || !std::isfinite(eps))
    throw std::invalid_argument("adam: eps must be finite and >= 0");
}

void Adam::apply(std::vector<double>& params, const std::vector<double>& grad, double scale) {
  std::vector<double>& m = moments_[0];
  std::vector<double>& v = moments_[1];
  const auto t = static_cast<double>(steps_);
  const double c1 = 1 - std::pow(b1_, t);  // optax: moment / (1 - decay ** count)
  const double c2 = 1 - std::pow(b2_, t);
  kernels::adam(params.data(), m.data(), v.data(), grad.data(), params.size(),
                {lr_, scale, b1_, b2_, c1, c2, eps_}, frozenOrNull(mask_));
}

std::unique_ptr<Optimizer> makeOptimizer(const std::string& kind, double lr, double clipNorm,
                                         FreezeMask mask) {
  if (kind == "sgd") return std::make_unique<Sgd>(lr, clipNorm, std::move(mask));
  if (kind == "adam")
    return std::make_unique<Adam>(lr, 0.9, 0.999, 1e-8, std::move(mask), clipNorm);
  throw std::invalid_argument("unknown optimizer '" + kind + "' (known: sgd, adam)");
}

}  // namespace cellc::runtime
