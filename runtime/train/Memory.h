// Memory estimates before allocation: the bytes a training run, an evaluation or an unroll will
// hold at once, from the kernel's tape size and the layout's sizes times the steps and the batch,
// checked against the memory the machine has. Sizes within range can still be far beyond memory
// (a batch of 10^7, a [B, n, n] trace at n = 10^4); the entry points (cellc run, cellc unroll,
// the Python bindings) call requireMemory first, so such a request fails at once with the bytes
// it needs, the bytes there are and the settings that set them, instead of std::bad_alloc midway.
//
// Each estimate counts the buffers that grow with the steps, the batch or the params; scratch of
// a step's size and the compiled code are left out, so the numbers are a little low, never high.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/StepKernel.h"

namespace cellc::runtime {

// The memory a new allocation may take: the least of MemAvailable in /proc/meminfo (else the
// physical memory), a cgroup's limit less its use, and the address-space limit (ulimit -v) less
// what the process maps. An empty source: not known (then nothing is refused).
struct MachineMemory {
  int64_t bytes = 0;
  std::string source;  // which bound it is: "MemAvailable in /proc/meminfo", ...
};
MachineMemory machineMemory();  // readMachineMemory, read at most once a second
MachineMemory readMachineMemory();

// A computation's buffers by part, in bytes. Products saturate at INT64_MAX: sizes whose bytes
// overflow 64 bits are simply more than any machine has.
class MemoryEstimate {
 public:
  struct Part {
    std::string what;
    int64_t bytes;
  };
  // `count` buffers of `elements` elements of `elementBytes` bytes each.
  void add(std::string what, int64_t count, int64_t elements, int64_t elementBytes);
  void addBytes(std::string what, int64_t bytes);
  void add(const MemoryEstimate& other);
  int64_t bytes() const;
  const std::vector<Part>& parts() const { return parts_; }

 private:
  std::vector<Part> parts_;
};

// Thrown by requireMemory. what(): "<operation> needs about 12.0 GB (...) of memory, but the machine
// has 3.1 GB (..., MemAvailable in /proc/meminfo). The largest buffers: ... The sizes come from
// <keys>: lower them".
struct OutOfMemoryError : std::runtime_error {
  OutOfMemoryError(const std::string& message, int64_t neededBytes, int64_t availableBytes)
      : std::runtime_error(message), needed(neededBytes), available(availableBytes) {}
  int64_t needed, available;
};

// Throws OutOfMemoryError when `need` exceeds `machine` (memory not known: never).
// `operation` names what would run ("training phase 'train'", "cellc unroll"); `keys` the
// settings that set the sizes, as the caller's user spells them ("train.batch = 64, ...").
void requireMemory(const MemoryEstimate& need, const std::string& operation, const std::string& keys,
                   const MachineMemory& machine = machineMemory());

// "12.0 GB (12,884,901,888 bytes)", and its first part alone.
std::string bytesText(int64_t bytes);
std::string humanBytes(int64_t bytes);

// An unroll of `steps` steps over a batch (runtime/unroll/Unroll.h): the sequence's inputs and
// noise, the trajectory's states, tapes and outputs, and with gradients the output adjoints and
// the input gradients.
template <class T>
MemoryEstimate unrollMemory(const StepKernel<T>& kernel, int64_t steps, int64_t batch, bool gradients);

// Training (runtime/train/Trainer.h) on float32 kernels: the params in double with their copies
// (best, last good, gradient, the optimizer's moments), a training batch (inputs and targets in
// double, noise), BPTT's states, tapes and outputs as it plans them (the longest segment within
// memoryBudgetBytes, or the one that needs least), and a validation batch's forward.
struct TrainingSizes {
  int64_t steps = 0, batch = 0, validationBatch = 0;
  int64_t memoryBudgetBytes = 0;
  int optimizerMoments = 0;  // Adam: 2, SGD: 0
};
MemoryEstimate trainingMemory(const StepKernel<float>& kernel, const TrainingSizes& sizes);

// The forward of `batch` fresh trials (validation, the test stage): the batch in double, its
// noise, every step's outputs.
MemoryEstimate evaluationMemory(const StepKernel<float>& kernel, int64_t steps, int64_t batch);

}  // namespace cellc::runtime
