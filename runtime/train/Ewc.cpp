// Elastic weight consolidation: the penalty, its gradient, saving, and the empirical Fisher.
#include "io/Binary.h"
#include "train/Ewc.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <istream>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace cellc::runtime {
namespace {

constexpr char kEwcMagic[8] = {'C', 'E', 'L', 'L', 'C', 'E', 'W', 'C'};
constexpr uint32_t kEwcVersion = 2;  // 1: without the form
constexpr uint32_t kMaxName = 1u << 16;

[[noreturn]] void bad(const std::string& why) { throw std::runtime_error("EWC state: " + why); }

// Little-endian values (io/Binary.h); readers name this state in their messages.
constexpr const char* kContext = "EWC state";
using binary::putF64;
using binary::putU32;
using binary::putU64;

// The checks add() makes, as a message ("" when valid).
std::string invalid(const Consolidated& c, size_t expected, bool haveExpected) {
  std::string name = "'" + c.task + "'";
  if (c.anchor.size() != c.fisher.size())
    return "task " + name + ": anchor has " + std::to_string(c.anchor.size()) +
           " elements, fisher " + std::to_string(c.fisher.size());
  if (haveExpected && c.anchor.size() != expected)
    return "task " + name + ": " + std::to_string(c.anchor.size()) +
           " elements, the tasks already consolidated have " + std::to_string(expected);
  if (!(c.lambda >= 0) || !std::isfinite(c.lambda))
    return "task " + name + ": lambda must be finite and >= 0";
  for (size_t i = 0; i < c.anchor.size(); ++i) {
    if (!std::isfinite(c.anchor[i]))
      return "task " + name + ": anchor element " + std::to_string(i) + " is not finite";
    if (!std::isfinite(c.fisher[i]) || c.fisher[i] < 0)
      return "task " + name + ": fisher element " + std::to_string(i) +
             " is not a finite number >= 0";
  }
  return "";
}

}  // namespace

void Ewc::add(Consolidated c) {
  std::string why = invalid(c, size(), !tasks_.empty());
  if (!why.empty()) throw std::invalid_argument("EWC: " + why);
  tasks_.push_back(std::move(c));
}

bool Ewc::needsStepFisher() const {
  return std::any_of(tasks_.begin(), tasks_.end(), [](const Consolidated& t) { return t.form == EwcForm::Course; });
}

namespace {

// Task t's F_i: its own, or (Course) the step's times its selector.
void checkStepFisher(const Ewc& e, const std::vector<double>* stepFisher, const char* what) {
  if (!e.needsStepFisher()) return;
  if (!stepFisher || stepFisher->size() != e.size())
    throw std::invalid_argument(std::string("EWC ") + what + ": a course-form task needs this step's Fisher of " +
                                std::to_string(e.size()) + " elements, got " +
                                (stepFisher ? std::to_string(stepFisher->size()) : std::string("none")));
}
double fisherOf(const Consolidated& t, const std::vector<double>* stepFisher, size_t i) {
  return t.form == EwcForm::Course ? (*stepFisher)[i] * t.fisher[i] : t.fisher[i];
}

}  // namespace

double Ewc::penalty(const std::vector<double>& params, const std::vector<double>* stepFisher) const {
  if (!tasks_.empty() && params.size() != size())
    throw std::invalid_argument("EWC penalty: " + std::to_string(params.size()) +
                                " params, the consolidated tasks have " + std::to_string(size()));
  checkStepFisher(*this, stepFisher, "penalty");
  double total = 0;
  for (const Consolidated& t : tasks_) {
    double s = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      double d = params[i] - t.anchor[i];
      s += fisherOf(t, stepFisher, i) * (d * d);
    }
    total += 0.5 * t.lambda * s;
  }
  return total;
}

void Ewc::addGradient(const std::vector<double>& params, std::vector<double>& grad,
                      const std::vector<double>* stepFisher) const {
  if (tasks_.empty()) return;
  if (params.size() != size() || grad.size() != size())
    throw std::invalid_argument("EWC gradient: " + std::to_string(params.size()) + " params and " +
                                std::to_string(grad.size()) +
                                " gradients, the consolidated tasks have " +
                                std::to_string(size()));
  checkStepFisher(*this, stepFisher, "gradient");
  for (const Consolidated& t : tasks_)
    for (size_t i = 0; i < params.size(); ++i)
      grad[i] += t.lambda * (fisherOf(t, stepFisher, i) * (params[i] - t.anchor[i]));
}

void Ewc::save(std::ostream& out) const {
  out.write(kEwcMagic, sizeof kEwcMagic);
  putU32(out, kEwcVersion);
  putU64(out, tasks_.size());
  putU64(out, size());
  for (const Consolidated& t : tasks_) {
    putU32(out, static_cast<uint32_t>(t.task.size()));
    out.write(t.task.data(), static_cast<std::streamsize>(t.task.size()));
    putU32(out, static_cast<uint32_t>(t.form));
    putF64(out, t.lambda);
    for (double x : t.anchor) putF64(out, x);
    for (double x : t.fisher) putF64(out, x);
  }
  if (!out) throw std::runtime_error("EWC state: write failed");
}

void Ewc::load(std::istream& in) {
  binary::Reader r(in, kContext);
  char magic[sizeof kEwcMagic];
  r.bytes(magic, sizeof magic, "magic");
  if (!std::equal(magic, magic + sizeof magic, kEwcMagic)) bad("not cellc EWC state");
  uint32_t version = r.u32("version");
  if (version != kEwcVersion && version != 1)
    bad("unsupported version " + std::to_string(version) + " (this build reads versions 1 to " +
        std::to_string(kEwcVersion) + ")");
  uint64_t ntasks = r.u64("task count");
  uint64_t n = r.u64("element count");
  if (ntasks == 0 && n != 0) bad("corrupt (elements but no tasks)");
  std::vector<Consolidated> tasks;
  for (uint64_t k = 0; k < ntasks; ++k) {  // each task holds bytes: a bad count hits the end
    Consolidated c;
    uint32_t len = r.u32("task name");
    if (len > kMaxName) bad("corrupt (task name of " + std::to_string(len) + " bytes)");
    c.task.resize(len);
    r.bytes(c.task.data(), len, "task name");
    if (version >= 2) {
      const uint32_t form = r.u32("form");
      if (form > static_cast<uint32_t>(EwcForm::Course)) bad("corrupt (form " + std::to_string(form) + ")");
      c.form = static_cast<EwcForm>(form);
    }
    c.lambda = r.f64("lambda");
    c.anchor = r.doubles(n, "anchor");
    c.fisher = r.doubles(n, "fisher");
    std::string why = invalid(c, n, true);
    if (!why.empty()) bad("corrupt (" + why + ")");
    tasks.push_back(std::move(c));
  }
  tasks_ = std::move(tasks);
}

std::string Ewc::saveToString() const {
  std::ostringstream out(std::ios::binary);
  save(out);
  return std::move(out).str();
}

void Ewc::loadFromString(const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  Ewc fresh;
  fresh.load(in);
  if (in.peek() != std::char_traits<char>::eof())
    bad("corrupt (" + std::to_string(bytes.size() - static_cast<size_t>(in.tellg())) +
        " bytes after the state)");
  tasks_ = std::move(fresh.tasks_);
}

FisherAccumulator::FisherAccumulator(size_t n) : sum_(n, 0.0) {}

void FisherAccumulator::addTrialGradient(const std::vector<double>& g) {
  if (g.size() != sum_.size())
    throw std::invalid_argument("Fisher: a gradient of " + std::to_string(g.size()) +
                                " elements, expected " + std::to_string(sum_.size()));
  for (size_t i = 0; i < g.size(); ++i)
    if (!std::isfinite(g[i]))
      throw std::domain_error("Fisher: gradient element " + std::to_string(i) + " is not finite");
  for (size_t i = 0; i < g.size(); ++i) sum_[i] += g[i] * g[i];
  ++trials_;
}

std::vector<double> FisherAccumulator::fisher() const {
  if (trials_ == 0) throw std::logic_error("Fisher: no trial gradients added");
  std::vector<double> f(sum_.size());
  const auto k = static_cast<double>(trials_);
  for (size_t i = 0; i < f.size(); ++i) f[i] = sum_[i] / k;
  return f;
}

}  // namespace cellc::runtime
