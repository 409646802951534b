// Reading `cellc unroll`'s input folder (the file conventions are in UnrollFiles.h): which file
// means what, the loss the folder asks for, and every array the run uses read and checked (its
// shape, T and B, every value finite and representable in the precision) before anything runs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "unroll/UnrollFiles.h"

namespace cellc::runtime {

// The input folder as read.
template <class T>
struct UnrollInputs {
  LossKind loss = LossKind::None;                // as resolved (never Auto)
  int64_t steps = 0, batch = 0;                  // T and B
  std::map<std::string, std::vector<T>> arrays;  // file name ("x.npy") -> its values, checked
  std::vector<std::string> warnings;             // in the order they arose

  // The values of `file`, or nullptr when the folder does not hold it (or the loss does not use it).
  const std::vector<T>* find(const std::string& file) const {
    auto it = arrays.find(file);
    return it == arrays.end() ? nullptr : &it->second;
  }
};

// Reads inDir for `kernel`, whose layout `layout` must be. Each warning also goes to
// options.onWarning as it arises. Throws UnrollError.
template <class T>
UnrollInputs<T> readUnrollInputs(const StepKernel<T>& kernel, const ir::Layout& layout,
                                 const UnrollOptions& options, const std::string& inDir);

extern template UnrollInputs<float> readUnrollInputs(const StepKernel<float>&, const ir::Layout&,
                                                     const UnrollOptions&, const std::string&);
extern template UnrollInputs<double> readUnrollInputs(const StepKernel<double>&, const ir::Layout&,
                                                      const UnrollOptions&, const std::string&);

}  // namespace cellc::runtime
