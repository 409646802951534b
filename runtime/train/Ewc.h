// Elastic weight consolidation (Kirkpatrick et al. 2017), over the flat param vector.
//
// After a task is learned, its solution theta* and the diagonal of the empirical Fisher F at
// theta* are consolidated; training on later tasks adds (lambda/2) sum_i F_i (theta_i - theta*_i)^2
// per consolidated task to the loss. Several tasks stack (one term each, every term with its own
// anchor, Fisher and lambda), as in the paper's sequential-task experiments.
//
// The Fisher comes from per-trial gradients g_k of the task's loss at theta* (batch 1):
// F = (1/K) sum_k g_k^2, element by element (FisherAccumulator).
//
// The course form (pycog's course trainer, ../shared/reference/pycog.md section 4, as its code
// reads): the "Fisher" is not kept from the task but recomputed at every later training step, at
// the current params on the current minibatch, as F = (d/dtheta sum_{t,b,i} log softmax(z)_i)^2 / M
// with M = T B N_out terms; the penalty weighs it by a 0/1 selector of the params it covers
// (pycog: W_in, W_rec and W_out). The course code also differentiates through F (second
// derivatives cellc does not derive): here F is a constant of the step.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace cellc::runtime {

enum class EwcForm : uint32_t {
  Fisher = 0,  // Kirkpatrick et al.: the task's diagonal Fisher at the anchor
  Course = 1,  // pycog's course trainer: F recomputed at every step (above), times `fisher` as a selector
};

struct Consolidated {
  std::vector<double> anchor;  // theta*_task
  std::vector<double> fisher;  // diagonal Fisher at the anchor, >= 0 (Course: each param's weight, 0 or 1)
  double lambda = 0;
  std::string task;            // a name, for messages and logs
  EwcForm form = EwcForm::Fisher;
};

class Ewc {
 public:
  // Throws std::invalid_argument when anchor and fisher differ in size, the size differs from
  // the tasks already added, lambda is negative or not finite, or an entry is not finite.
  void add(Consolidated c);

  // sum over tasks of (lambda/2) sum_i F_i (theta_i - theta*_i)^2; 0 without tasks. A Course
  // task's F_i is stepFisher[i] times its selector: stepFisher is required when one is held
  // (needsStepFisher), the current step's F from the course's objective.
  double penalty(const std::vector<double>& params, const std::vector<double>* stepFisher = nullptr) const;
  // grad += sum over tasks of lambda F_i (theta_i - theta*_i) (F constant: no gradient through it).
  void addGradient(const std::vector<double>& params, std::vector<double>& grad,
                   const std::vector<double>* stepFisher = nullptr) const;
  // Every size must equal size() (when there are tasks): std::invalid_argument otherwise.
  bool needsStepFisher() const;

  size_t tasks() const { return tasks_.size(); }
  size_t size() const { return tasks_.empty() ? 0 : tasks_[0].anchor.size(); }  // 0: no tasks
  const std::vector<Consolidated>& consolidated() const { return tasks_; }
  void clear() { tasks_.clear(); }

  // Exact round trip, little-endian binary: "CELLCEWC", u32 version 2, u64 tasks, u64 elements,
  // then per task u32 + bytes name, u32 form, f64 lambda, the anchor's and the Fisher's doubles
  // (version 1, read too: no form, every task Fisher). load
  // replaces every task; it throws std::runtime_error on anything save could not have written
  // (and leaves *this unchanged then).
  void save(std::ostream& out) const;
  void load(std::istream& in);
  std::string saveToString() const;
  void loadFromString(const std::string& bytes);  // also refuses trailing bytes

 private:
  std::vector<Consolidated> tasks_;
};

class FisherAccumulator {
 public:
  explicit FisherAccumulator(size_t n);

  // F += g^2 element by element; g.size() must be n (std::invalid_argument), every entry finite
  // (std::domain_error; nothing is added then).
  void addTrialGradient(const std::vector<double>& g);
  // The mean of g^2 over the trials added; std::logic_error before the first trial.
  std::vector<double> fisher() const;
  int64_t trials() const { return trials_; }
  size_t size() const { return sum_.size(); }

 private:
  std::vector<double> sum_;
  int64_t trials_ = 0;
};

}  // namespace cellc::runtime
