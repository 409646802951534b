// Optimizers over the flat double master copy of a cell's params (the layout's param buffer).
//
// Sgd is pycog's rule: the gradient is scaled by min(1, clip / ||g||_2), the norm taken over every
// trainable element at once, then theta -= lr g. Adam is Kingma & Ba (2015) as optax.adam computes
// it (bias-corrected moments, eps outside the square root), optionally after the same global-norm
// clipping (optax.chain(clip_by_global_norm(c), adam(...))).
//
// A FreezeMask marks elements that never move: their gradient is ignored everywhere, including in
// the global norm, and Adam keeps their moments at zero. Whole params (a fixed readout) or parts
// of one (a fixed connectivity mask) can be frozen.
//
// save/load write and read the optimizer's whole state (step count, last norm, moments) so that
// a loaded optimizer continues bit for bit as the saved one would have. Hyperparameters and the
// freeze mask are configuration, not state: the caller constructs the optimizer with them again.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "ir/Step.h"

namespace cellc::runtime {

struct FreezeMask {
  // One byte per param element, 1 = frozen. Empty means "nothing frozen" for params of any size.
  std::vector<uint8_t> frozen;

  // Nothing frozen, for `size` elements.
  static FreezeMask none(size_t size);

  // Freezes the whole param `paramName`. An empty mask first grows to layout.paramSize; a
  // non-empty one must already have that size. Throws std::invalid_argument naming an unknown
  // param (and listing the known ones) or a size mismatch. Returns *this for chaining.
  FreezeMask& freeze(const ir::Layout& layout, const std::string& paramName);
  // Freezes the elements of `paramName` where elementMask is nonzero (C order over the param's
  // shape, elementMask.size() == the param's size); already frozen elements stay frozen.
  FreezeMask& freezeWhere(const ir::Layout& layout, const std::string& paramName,
                          const std::vector<uint8_t>& elementMask);

  size_t size() const { return frozen.size(); }
  bool isFrozen(size_t i) const { return !frozen.empty() && frozen[i] != 0; }
  size_t frozenCount() const;
};

class Optimizer {
 public:
  // moments: how many per-element state vectors the kind keeps. Throws std::invalid_argument on
  // a negative or non-finite lr or a non-finite clipNorm.
  Optimizer(double lr, double clipNorm, FreezeMask mask, int moments);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = default;
  Optimizer& operator=(const Optimizer&) = default;

  // One update. params.size() must equal grad.size() and the mask's size (or, with an empty mask,
  // the size of the first step's params, which the optimizer then keeps); std::invalid_argument
  // otherwise. A non-finite gradient element (not frozen) throws std::domain_error naming its
  // index, and then nothing changes: neither params nor the optimizer's state.
  void step(std::vector<double>& params, const std::vector<double>& grad);

  virtual std::string kind() const = 0;  // "sgd", "adam"

  // The whole state, in a binary format that round-trips exactly (little-endian): "CELLCOPT",
  // u32 version 1, u32 + bytes kind, i64 element count (-1: not known yet), i64 steps, f64 last
  // norm, u32 moment count, then each moment's doubles. load checks the magic, version, kind,
  // element count (against the mask or earlier steps, when known) and moment count, and throws
  // std::runtime_error saying what is wrong; on a throw *this is unchanged.
  void save(std::ostream& out) const;
  void load(std::istream& in);
  // The same through a string (the bytes a Checkpoint stores).
  std::string saveToString() const;
  void loadFromString(const std::string& bytes);

  int64_t steps() const { return steps_; }          // updates done
  // ||g||_2 over the unfrozen elements of the last step's gradient, before clipping.
  double lastGradNorm() const { return lastNorm_; }
  double learningRate() const { return lr_; }
  void setLearningRate(double lr);
  double clipNorm() const { return clip_; }
  const FreezeMask& mask() const { return mask_; }
  int64_t size() const { return size_; }  // element count, -1 until known

 protected:
  // Applies the update with the clipped gradient grad[i] * scale to every unfrozen element;
  // steps_ is already incremented and the moments sized.
  virtual void apply(std::vector<double>& params, const std::vector<double>& grad,
                     double scale) = 0;

  double lr_, clip_;
  FreezeMask mask_;
  int64_t size_ = -1;
  int64_t steps_ = 0;
  double lastNorm_ = 0;
  // Per-element state vectors (Adam: m and v), each of size_ elements once that is known; saved
  // and loaded generically.
  std::vector<std::vector<double>> moments_;
};

class Sgd final : public Optimizer {
 public:
  // clipNorm <= 0: no clipping.
  explicit Sgd(double lr, double clipNorm = 0, FreezeMask mask = {});
  std::string kind() const override { return "sgd"; }

 protected:
  void apply(std::vector<double>& params, const std::vector<double>& grad, double scale) override;
};

class Adam final : public Optimizer {
 public:
  explicit Adam(double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
                FreezeMask mask = {}, double clipNorm = 0);
  std::string kind() const override { return "adam"; }

  double beta1() const { return b1_; }
  double beta2() const { return b2_; }
  double eps() const { return eps_; }
  // Empty until the element count is known.
  const std::vector<double>& firstMoment() const { return moments_[0]; }
  const std::vector<double>& secondMoment() const { return moments_[1]; }

 protected:
  void apply(std::vector<double>& params, const std::vector<double>& grad, double scale) override;

 private:
  double b1_, b2_, eps_;
};

// "sgd" or "adam" (Adam with its default betas and eps); std::invalid_argument otherwise.
std::unique_ptr<Optimizer> makeOptimizer(const std::string& kind, double lr, double clipNorm = 0,
                                         FreezeMask mask = {});

}  // namespace cellc::runtime
