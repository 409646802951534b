// Writing `cellc unroll`'s output folder (the file conventions are in UnrollFiles.h): every result
// file in the precision's dtype, all moved into place together or none, never over an input file.
#pragma once

#include <string>
#include <vector>

#include "unroll/UnrollCompute.h"

namespace cellc::runtime {

// Writes the outputs, the final states and (with a loss) loss.npy and every gradient into outDir
// (created if missing) and returns what it wrote. Throws UnrollError, leaving outDir as it was.
template <class T>
std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout& layout, const UnrollInputs<T>& in,
                                            const UnrollResult<T>& result,
                                            const std::string& inDir, const std::string& outDir);

extern template std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout&,
                                                            const UnrollInputs<float>&,
                                                            const UnrollResult<float>&,
                                                            const std::string&, const std::string&);
extern template std::vector<WrittenFile> writeUnrollOutputs(const ir::Layout&,
                                                            const UnrollInputs<double>&,
                                                            const UnrollResult<double>&,
                                                            const std::string&, const std::string&);

}  // namespace cellc::runtime
