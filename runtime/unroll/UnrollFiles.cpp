// `cellc unroll` as a library; the file conventions are in UnrollFiles.h.
//
// The run has three phases, so that a failure never leaves a half-written output folder:
//   1. read (UnrollInputs.cpp): scan the folder, resolve the loss, read and check every array
//      (shape, T and B, finite);
//   2. compute (UnrollCompute.cpp): forwardSequence, the loss and its output adjoints,
//      backwardSequence;
//   3. write (UnrollOutputs.cpp): every result file through npy::write into a staging folder, then
//      all moved into place together (io::StagedFiles), never over one of the input files.
#include "unroll/UnrollFiles.h"

#include <type_traits>

#include "unroll/UnrollOutputs.h"

namespace cellc::runtime {

const char* lossName(LossKind k) {
  switch (k) {
    case LossKind::Auto: return "auto";
    case LossKind::Adjoints: return "adjoints";
    case LossKind::Mse: return "mse";
    case LossKind::MseLast: return "mse_last";
    case LossKind::None: return "none";
  }
  return "?";
}

std::optional<LossKind> parseLoss(const std::string& name) {
  for (LossKind k : {LossKind::Auto, LossKind::Adjoints, LossKind::Mse, LossKind::MseLast,
                     LossKind::None})
    if (name == lossName(k)) return k;
  return std::nullopt;
}

namespace {

template <class T>
constexpr const char* precisionName() {
  return std::is_same_v<T, float> ? "f32" : "f64";
}

}  // namespace

template <class T>
UnrollSummary unrollFiles(StepKernel<T>& kernel, const ir::Layout& layout,
                          const UnrollOptions& options, const std::string& inDir,
                          const std::string& outDir) {
  UnrollInputs<T> in = readUnrollInputs(kernel, layout, options, inDir);
  UnrollResult<T> result = computeUnroll(kernel, layout, in);
  UnrollSummary s;
  s.written = writeUnrollOutputs(layout, in, result, inDir, outDir);
  s.steps = in.steps;
  s.batch = in.batch;
  s.precision = precisionName<T>();
  s.loss = in.loss;
  s.lossValue = result.loss;
  s.warnings = std::move(in.warnings);
  return s;
}

template UnrollSummary unrollFiles(StepKernel<float>&, const ir::Layout&, const UnrollOptions&,
                                   const std::string&, const std::string&);
template UnrollSummary unrollFiles(StepKernel<double>&, const ir::Layout&, const UnrollOptions&,
                                   const std::string&, const std::string&);

}  // namespace cellc::runtime
