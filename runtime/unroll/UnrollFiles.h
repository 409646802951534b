// `cellc unroll` as a library: unroll a compiled cell over a folder of named .npy arrays and write
// its outputs, final states, a loss and every gradient as .npy files, so that a user can compare a
// cell with another framework (PyTorch, JAX) on their own data.
//
// Input folder (T steps, B sequences; T and B come from the first input, every array must agree):
//   <param>.npy          every param, exactly the param's shape (a scalar param: shape ())
//   <input>.npy          every input, [T, B, dims...]
//   <state>.npy          optional initial state, [B, dims...] (default: the declared initial value,
//                        a number filled or the named param broadcast over the batch)
//   <noise>.npy          optional, [T, B, dims...] (default: zeros)
//   loss adjoints:       d_<output>.npy [T, B, dims...] (missing ones are zero),
//                        d_final_<state>.npy [B, dims...];
//                        loss = sum_t <d_y_t, y_t> + sum_s <d_final_s, s_T>
//   loss mse:            target_<output>.npy [T, B, dims...], optional mask_<output>.npy (same shape);
//                        loss = sum over outputs with a target of sum(mask (y - target)^2) / (T B units)
//   loss mse_last:       target_<output>.npy [B, dims...] against the last step;
//                        loss = sum over outputs with a target of sum((y_T - target)^2) / (B units)
// Output folder (created if missing; the files appear together or not at all, in the precision's
// dtype; an output that is one of the input files read, also through a link, is refused):
//   <output>.npy [T, B, dims...], final_<state>.npy [B, dims...]; with a loss also loss.npy (0-d),
//   grad_<param>.npy, grad_<input>.npy [T, B, dims...], grad_init_<state>.npy [B, dims...]. A param
//   that a state starts from (when no <state>.npy overrides it) gets the batch-summed gradient of
//   that initial state added to its own.
//
// Every problem (a missing or malformed array, a wrong shape, NaN or Inf, ...) is an UnrollError
// whose message names the file and says why. Every check happens before the first file is written,
// and a failed write (a full disk) leaves the output folder exactly as it was.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/Step.h"
#include "pipeline/StepKernel.h"

namespace cellc::runtime {

struct UnrollError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class LossKind {
  Auto,      // Adjoints if the folder holds a d_<output>.npy or a d_final_<state>.npy, else None
  Adjoints,
  Mse,
  MseLast,
  None,      // forward only: no loss, no gradients
};
const char* lossName(LossKind k);                  // "auto", "adjoints", "mse", "mse_last", "none"
std::optional<LossKind> parseLoss(const std::string& name);  // nullopt for an unknown name

struct UnrollOptions {
  LossKind loss = LossKind::Auto;
  // Called once per warning (an unknown or ignored .npy file in the input folder), as it arises.
  // Warnings are also collected in UnrollSummary::warnings.
  std::function<void(const std::string&)> onWarning;
};

struct WrittenFile {
  std::string path;
  std::vector<int64_t> shape;
};

struct UnrollSummary {
  int64_t steps = 0, batch = 0;
  std::string precision;           // "f64" or "f32"
  LossKind loss = LossKind::None;  // as resolved (never Auto)
  std::optional<double> lossValue;
  std::vector<WrittenFile> written;
  std::vector<std::string> warnings;
};

// Reads inDir, runs the kernel forward over the T steps (and backward when there is a loss),
// writes outDir. `layout` must be the kernel's layout. Throws UnrollError.
template <class T>
UnrollSummary unrollFiles(StepKernel<T>& kernel, const ir::Layout& layout,
                          const UnrollOptions& options, const std::string& inDir,
                          const std::string& outDir);

extern template UnrollSummary unrollFiles(StepKernel<float>&, const ir::Layout&,
                                          const UnrollOptions&, const std::string&,
                                          const std::string&);
extern template UnrollSummary unrollFiles(StepKernel<double>&, const ir::Layout&,
                                          const UnrollOptions&, const std::string&,
                                          const std::string&);

}  // namespace cellc::runtime
