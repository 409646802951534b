// LLVM IR for the forward and backward step functions of a plan. Both functions have the C ABI
//   void NAME(T* const* bufs, int64_t batch)
// where bufs[i] is the base of buffer codegen::Buf(i) (null where unused). Fused pointwise kernels
// become loop nests over batch x units that LLVM vectorizes; matrix products call cellc_gemm_f32
// or cellc_gemm_f64 (Eigen, resolved by the JIT from this process).
#pragma once

#include <memory>
#include <string>

#include "codegen/Plan.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace cellc::codegen {

enum class Precision { F32, F64 };

// Which functions a module holds: a whole step (forward, backward, and the plan's Omega, prologue,
// epilogue and segment stages), only the backward and segment stage of a plan with deferred
// weight gradients, or the forward, backward and input stage of a staged plan; the last two are
// compiled on demand beside a step that has the rest (jit/Jit.h).
enum class Functions { Step, SegmentBackward, Staged };

// Builds a module with `<prefix>_forward`, `<prefix>_backward`, ... as `which` says.
std::unique_ptr<llvm::Module> emitModule(llvm::LLVMContext& ctx, const StepIR& ir,
                                         const Plan& plan, Precision precision,
                                         const std::string& prefix, Functions which = Functions::Step);

}  // namespace cellc::codegen
