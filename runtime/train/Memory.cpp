#include "train/Memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "train/Bptt.h"

namespace cellc::runtime {

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
using Wide = long double;  // products of sizes: past 2^63 they saturate instead of wrapping

int64_t saturate(Wide x) { return x >= static_cast<Wide>(kMax) ? kMax : x <= 0 ? 0 : static_cast<int64_t>(x); }

// A kernel's per-batch size (tape, segment rows: fixed + batch * perTrial) without asking the
// kernel at a batch whose product would overflow its int64 arithmetic.
template <class F>
Wide perBatch(F size, int64_t batch) {
  if (batch <= (int64_t{1} << 24)) return static_cast<Wide>(size(batch));
  const Wide fixed = static_cast<Wide>(size(0)), one = static_cast<Wide>(size(1));
  return fixed + static_cast<Wide>(batch) * (one - fixed);
}

// What BPTT (train/Bptt.h) holds for `batch` trials: bpttBytes at the segment length its
// constructor picks: every step when that fits the budget, else the longest segment within it
// (about the budget), or the least-memory length about sqrt(T s / (s + tape + out + seg)).
// Computed in long double so that huge sizes saturate (bpttBytes itself is checked against this
// in tests/runtime/test_memory.cpp).
Wide bpttHeld(const StepKernel<float>& k, int64_t batch, int64_t steps, int64_t budget) {
  const ir::Layout& L = k.layout();
  const Wide B = static_cast<Wide>(batch), T = static_cast<Wide>(steps);
  const Wide S = static_cast<Wide>(L.stateSize) * B, O = static_cast<Wide>(L.outputSize) * B;
  const Wide tape = perBatch([&](int64_t b) { return k.tapeSize(b); }, batch);
  const bool segmentPlan = batch <= kSegmentGemmMaxBatch || k.traits().weightGradientElements >= kSegmentGemmMinElements;
  const Wide seg = segmentPlan ? perBatch([&](int64_t b) { return k.segmentSize(b); }, batch) : 0;
  auto bytes = [&](Wide K) {
    const Wide nSeg = std::ceil(T / K);
    return Wide(sizeof(float)) * ((nSeg - 1) * S + (K + 1) * S + K * (tape + O + seg));
  };
  const Wide all = bytes(T);
  if (all <= static_cast<Wide>(budget)) return all;
  const Wide perStep = S + tape + O + seg;
  const Wide least = std::clamp<Wide>(std::round(std::sqrt(T * S / std::max<Wide>(perStep, 1))), 1, T);
  return std::max(bytes(least), std::min(all, static_cast<Wide>(budget)));
}

std::string withCommas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace

MachineMemory machineMemory() {
  // Read at most once a second: a sweep checks every run of its grid before it starts one.
  static std::mutex mu;
  static MachineMemory cached;
  static std::chrono::steady_clock::time_point at;
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  if (!cached.source.empty() && now - at < std::chrono::seconds(1)) return cached;
  cached = readMachineMemory();
  at = now;
  return cached;
}

namespace {

// A number from a one-line file (cgroup limits); -1 when missing or not a number ("max").
int64_t numberIn(const char* path) {
  std::ifstream in(path);
  long long v = -1;
  if (!(in >> v)) return -1;
  return v;
}

}  // namespace

MachineMemory readMachineMemory() {
  MachineMemory m;
  auto consider = [&](Wide bytes, const std::string& source) {
    const int64_t b = saturate(bytes);
    if (m.source.empty() || b < m.bytes) m = {b, source};
  };
  {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
      long long kb = 0;
      if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kb) == 1 && kb > 0)
        consider(static_cast<Wide>(kb) * 1024, "MemAvailable in /proc/meminfo");
    }
  }
  if (m.source.empty()) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) consider(static_cast<Wide>(pages) * page, "physical memory");
  }
  // A container's limit (cgroup v2, then v1, as the process sees its cgroup's root), less what
  // the group uses already.
  const int64_t v2 = numberIn("/sys/fs/cgroup/memory.max");
  if (v2 > 0) consider(static_cast<Wide>(v2) - std::max<int64_t>(0, numberIn("/sys/fs/cgroup/memory.current")),
                       "the cgroup's memory.max less its use");
  const int64_t v1 = numberIn("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (v1 > 0 && v1 < (int64_t{1} << 62))
    consider(static_cast<Wide>(v1) - std::max<int64_t>(0, numberIn("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
             "the cgroup's memory.limit_in_bytes less its use");
  // The address-space limit (ulimit -v), less what the process maps already.
  struct rlimit as {};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    long long pages = 0;
    std::ifstream statm("/proc/self/statm");
    statm >> pages;
    consider(static_cast<Wide>(as.rlim_cur) - static_cast<Wide>(pages) * ::sysconf(_SC_PAGE_SIZE),
             "the address-space limit (ulimit -v) less what the process maps");
  }
  return m;
}

void MemoryEstimate::add(std::string what, int64_t count, int64_t elements, int64_t elementBytes) {
  addBytes(std::move(what), saturate(static_cast<Wide>(count) * static_cast<Wide>(elements) *
                                     static_cast<Wide>(elementBytes)));
}

void MemoryEstimate::addBytes(std::string what, int64_t bytes) {
  if (bytes > 0) parts_.push_back({std::move(what), bytes});
}

void MemoryEstimate::add(const MemoryEstimate& other) {
  parts_.insert(parts_.end(), other.parts_.begin(), other.parts_.end());
}

int64_t MemoryEstimate::bytes() const {
  Wide sum = 0;
  for (const Part& p : parts_) sum += static_cast<Wide>(p.bytes);
  return saturate(sum);
}

std::string humanBytes(int64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes == kMax) return "more than 9.2 EB";
  if (b >= 1e12) std::snprintf(buf, sizeof buf, "%.1f TB", b / 1e12);
  else if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  return buf;
}

std::string bytesText(int64_t bytes) {
  return humanBytes(bytes) + (bytes == kMax ? " (past 2^63 bytes)" : " (" + withCommas(bytes) + " bytes)");
}

void requireMemory(const MemoryEstimate& need, const std::string& operation, const std::string& keys,
                   const MachineMemory& machine) {
  const int64_t bytes = need.bytes();
  if (machine.source.empty() || bytes <= machine.bytes) return;
  // The parts, largest first: the first one or two say what to shrink.
  std::vector<MemoryEstimate::Part> parts = need.parts();
  std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
  std::ostringstream os;
  os << operation << " needs about " << bytesText(bytes) << " of memory, but the machine has "
     << humanBytes(machine.bytes) << " (" << withCommas(machine.bytes) << " bytes, " << machine.source
     << "). The largest buffers: ";
  for (size_t i = 0; i < parts.size() && i < 3; ++i)
    os << (i ? "; " : "") << parts[i].what << " " << humanBytes(parts[i].bytes);
  os << ". The sizes come from " << keys << ": lower them";
  throw OutOfMemoryError(os.str(), bytes, machine.bytes);
}

template <class T>
MemoryEstimate unrollMemory(const StepKernel<T>& kernel, int64_t steps, int64_t batch, bool gradients) {
  const ir::Layout& L = kernel.layout();
  const int64_t e = sizeof(T);
  MemoryEstimate m;
  auto perStep = [&](int64_t size) { return saturate(static_cast<Wide>(size) * static_cast<Wide>(batch)); };
  m.add("params", 1, L.paramSize, e);
  m.add("inputs (T x B x inputs)", steps, perStep(L.inputSize), e);
  m.add("noise (T x B x noise)", steps, perStep(L.noiseSize), e);
  m.add("states (T + 1 x B x states)", saturate(static_cast<Wide>(steps) + 1), perStep(L.stateSize), e);
  m.add("tapes (T x tape of B trials)", steps, saturate(perBatch([&](int64_t b) { return kernel.tapeSize(b); }, batch)), e);
  m.add("outputs (T x B x outputs)", steps, perStep(L.outputSize), e);
  if (gradients) {
    m.add("output adjoints (T x B x outputs)", steps, perStep(L.outputSize), e);
    m.add("input gradients (T x B x inputs)", steps, perStep(L.inputSize), e);
    m.add("param gradients", 1, L.paramSize, e);
  }
  return m;
}

template MemoryEstimate unrollMemory(const StepKernel<float>&, int64_t, int64_t, bool);
template MemoryEstimate unrollMemory(const StepKernel<double>&, int64_t, int64_t, bool);

MemoryEstimate evaluationMemory(const StepKernel<float>& kernel, int64_t steps, int64_t batch) {
  const ir::Layout& L = kernel.layout();
  auto perStep = [&](int64_t size) { return saturate(static_cast<Wide>(size) * static_cast<Wide>(batch)); };
  MemoryEstimate m;
  m.add("a batch's inputs and targets in double (T x B x (inputs + outputs))", steps,
        perStep(L.inputSize + L.outputSize), sizeof(double));
  m.add("a batch's noise (T x B x noise)", steps, perStep(L.noiseSize), sizeof(float));
  // Every step's outputs, in float and again in double for the loss.
  m.add("a batch's outputs (T x B x outputs)", steps, perStep(L.outputSize), sizeof(float) + sizeof(double));
  return m;
}

MemoryEstimate trainingMemory(const StepKernel<float>& kernel, const TrainingSizes& s) {
  const ir::Layout& L = kernel.layout();
  MemoryEstimate m;
  // params, best, last good and the gradient in double, the optimizer's moments; two float copies.
  m.add("params and their copies", 4 + s.optimizerMoments, L.paramSize, sizeof(double));
  m.add("params in float", 2, L.paramSize, sizeof(float));
  auto perStep = [&](int64_t size) { return saturate(static_cast<Wide>(size) * static_cast<Wide>(s.batch)); };
  m.add("training batch: inputs and targets in double (T x B x (inputs + outputs))", s.steps,
        perStep(L.inputSize + L.outputSize), sizeof(double));
  m.add("training noise (T x B x noise)", s.steps, perStep(L.noiseSize), sizeof(float));
  m.addBytes("BPTT's states, tapes and outputs (T x B, within the memory budget)",
             saturate(bpttHeld(kernel, s.batch, s.steps, s.memoryBudgetBytes)));
  MemoryEstimate validation = evaluationMemory(kernel, s.steps, s.validationBatch);
  for (const MemoryEstimate::Part& p : validation.parts()) m.addBytes("validation: " + p.what, p.bytes);
  return m;
}

}  // namespace cellc::runtime
