#include "codegen/EmitLLVM.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>

#include "codegen/LoopGroups.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/MDBuilder.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

namespace cellc::codegen {
namespace {

using ir::Node;
using ir::NodeId;
using ir::Op;
using llvm::Value;

// An index into a value: the batch index (null for unbatched values) and one index per axis.
struct Index {
  Value* batch = nullptr;
  std::vector<Value*> dims;
  bool operator<(const Index& o) const {
    return std::tie(batch, dims) < std::tie(o.batch, o.dims);
  }
};

class Emitter {
 public:
  Emitter(llvm::LLVMContext& ctx, llvm::Module& m, const StepIR& ir, Precision p)
      : ctx_(ctx), m_(m), b_(ctx), ir_(ir), g_(ir.g) {
    T_ = p == Precision::F64 ? b_.getDoubleTy() : b_.getFloatTy();
    i64_ = b_.getInt64Ty();
    i32_ = b_.getInt32Ty();
    ptr_ = b_.getPtrTy();
    auto* gemmTy = llvm::FunctionType::get(
        b_.getVoidTy(), {i32_, i32_, i64_, i64_, i64_, ptr_, i64_, ptr_, i64_, T_, ptr_, i64_}, false);
    gemm_ = llvm::Function::Create(gemmTy, llvm::Function::ExternalLinkage,
                                   p == Precision::F64 ? "cellc_gemm_f64" : "cellc_gemm_f32", m_);
    parallel_ = llvm::Function::Create(
        llvm::FunctionType::get(b_.getVoidTy(), {ptr_, ptr_, i64_, i64_}, false),
        llvm::Function::ExternalLinkage, "cellc_parallel_batch", m_);
    llvm::FastMathFlags fmf;
    fmf.setAllowContract(true);  // FMA where the target has it: last-bit differences only
    b_.setFastMathFlags(fmf);
  }

  // One function per plan. A plan of more than kKernelsPerPart kernels is emitted as parts, one
  // function each (never inlined), called in order: LLVM's function passes grow superlinearly with
  // a function's size (a 200-statement chain took 3.5 s in one function), and kernels share
  // nothing but memory, so the split costs one call per part. The cells in cells/ have at most
  // 43 kernels per plan and are emitted whole.
  static constexpr size_t kKernelsPerPart = 48;

  void function(const std::string& name, const FunctionPlan& fp) {
    fp_ = &fp;
    const size_t nk = fp.kernels.size();
    if (nk <= kKernelsPerPart) {
      newFunction(name, llvm::Function::ExternalLinkage);
      body(0, nk);
      b_.CreateRetVoid();
      return;
    }
    std::vector<llvm::Function*> parts;
    for (size_t first = 0, last; first < nk; first = last) {
      last = first;  // whole loop groups, up to kKernelsPerPart kernels (more if one group is)
      while (last < nk && (last == first || groupEnd(last) - first <= kKernelsPerPart)) last = groupEnd(last);
      llvm::Function* part = newFunction(name + ".part" + std::to_string(parts.size()),
                                         llvm::Function::InternalLinkage);
      part->addFnAttr(llvm::Attribute::NoInline);
      body(first, last);
      b_.CreateRetVoid();
      parts.push_back(part);
    }
    llvm::Function* top = newFunction(name, llvm::Function::ExternalLinkage);
    for (llvm::Function* part : parts) b_.CreateCall(part, {top->getArg(0), top->getArg(1)});
    b_.CreateRetVoid();
  }

  // A function `void name(ptr bufs, i64 batch, i64 x extraArgs)` with the builder at the end of its
  // entry block, where batch_ and bufs_ (the buffers' bases, loaded from bufs) are its own.
  llvm::Function* newFunction(const std::string& name, llvm::Function::LinkageTypes linkage,
                              int extraArgs = 0) {
    std::vector<llvm::Type*> args{ptr_, i64_};
    args.insert(args.end(), static_cast<size_t>(extraArgs), i64_);
    fn_ = llvm::Function::Create(llvm::FunctionType::get(b_.getVoidTy(), args, false), linkage, name, m_);
    fn_->addFnAttr(llvm::Attribute::NoUnwind);
    fn_->addFnAttr(llvm::Attribute::NoFree);
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn_));
    batch_ = fn_->getArg(1);
    batch_->setName("batch");
    for (int i = 0; i < static_cast<int>(Buf::kCount); ++i) {
      Value* slot = b_.CreateConstInBoundsGEP1_64(ptr_, fn_->getArg(0), i);
      bufs_[i] = b_.CreateLoad(ptr_, slot, bufName(static_cast<Buf>(i)));
    }
    return fn_;
  }

  // The end of the loop group (codegen/LoopGroups.h) that begins at kernel i.
  size_t groupEnd(size_t i) const {
    for (++i; i < fp_->kernels.size() && fp_->kernels[i].fusedWithPrev; ++i) {}
    return i;
  }

  // Kernels [first, last) of the current plan into the function newFunction just began, a loop
  // group at a time.
  void body(size_t first, size_t last) {
    llvm::MDBuilder md(ctx_);
    llvm::MDNode* domain = md.createAnonymousAliasScopeDomain("cellc");
    for (size_t ki = first; ki < last; ki = groupEnd(ki)) {
      std::vector<const Kernel*> group;
      for (size_t i = ki; i < groupEnd(ki); ++i) group.push_back(&fp_->kernels[i]);
      memo_.clear();
      // A kernel's output never overlaps what it reads (every node has a region of its own), nor
      // what the other kernels of its group read or write: each kernel's stores are in an alias
      // scope of its own, and every load is outside all of them. LLVM vectorizes without overlap
      // checks, and keeps a row sum in a register beside the group's other stores.
      // With the state adjoint in place (codegen/InPlaceAdjoint.h) the adjoint leaves are loaded
      // from d_state, which the group's d_state writers store to: those loads are in the writers'
      // scopes (so every other access is known apart from them) and outside the others' only.
      std::vector<llvm::Metadata*> all, dState, notDState;
      scopes_.clear();
      for (size_t i = 0; i < group.size(); ++i) {
        scopes_.push_back(llvm::MDNode::get(ctx_, {md.createAnonymousAliasScope(domain, "kernel")}));
        all.push_back(scopes_.back()->getOperand(0));
        (group[i]->out.buf == Buf::DState ? dState : notDState).push_back(all.back());
      }
      loadScopes_ = llvm::MDNode::get(ctx_, all);
      dStateScopes_ = dState.empty() ? nullptr : llvm::MDNode::get(ctx_, dState);
      dStateLoadScopes_ = llvm::MDNode::get(ctx_, notDState);
      // Work only the input adjoint needs runs when the caller gave a d_input buffer.
      llvm::BasicBlock* skip = nullptr;
      if (group[0]->inputAdjointOnly) {
        auto* run = llvm::BasicBlock::Create(ctx_, "dinput", fn_);
        skip = llvm::BasicBlock::Create(ctx_, "dinput.skip", fn_);
        b_.CreateCondBr(b_.CreateIsNotNull(bufs_[static_cast<int>(Buf::DInput)]), run, skip);
        b_.SetInsertPoint(run);
      }
      if (splitsOverBatch(group)) outlineOverBatch(group, ki);
      else emitGroup(group);
      if (skip) {
        b_.CreateBr(skip);
        b_.SetInsertPoint(skip);
      }
    }
  }

  void emitGroup(const std::vector<const Kernel*>& group) {
    if (group.size() == 1) {
      scope_ = scopes_[0];
      return kernel(*group[0]);
    }
    // Each reduction's output is zeroed first (or added to), then one pass over [B, p, q] computes
    // every kernel's element at (b, r, c), in the order and with the sums it has alone.
    const std::array<int64_t, 2> space = *loopSpace(g_, *group[0]);
    for (size_t i = 0; i < group.size(); ++i) {
      scope_ = scopes_[i];
      if (group[i]->kind == Kernel::Kind::Reduce) zeroOutput(*group[i]);
    }
    batchLoop([&](Value* b) {
      for (auto [first, end] : columnBlocks(group, space[1]))
        loop(c64(space[0]), [&](Value* r) {
          loop(c64(end), [&](Value* c) {
            memo_.clear();
            for (size_t i = 0; i < group.size(); ++i) {
              scope_ = scopes_[i];
              element(*group[i], b, r, c);
            }
          }, "c", c64(first), unrollColumns(group, end - first));
        }, "r");
    });
  }

  // Kernel k's work at (b, r, c) of its loop space (codegen::loopSpace).
  void element(const Kernel& k, Value* b, Value* r, Value* c) {
    switch (k.kind) {
      case Kernel::Kind::Pointwise: case Kernel::Kind::Copy:
        return pointwiseElement(k, Index{b, {r, c}}, k.kind == Kernel::Kind::Pointwise);
      case Kernel::Kind::Reduce:
        if (g_[k.node].op == Op::MatMul) return matVecElement(k, b, r, c);
        return reduceElement(k, Index{b, {r, c}});
      case Kernel::Kind::Gemm: break;
    }
    throw ir::InternalError("codegen: a product in a loop group");
  }

  void kernel(const Kernel& k) {
    switch (k.kind) {
      case Kernel::Kind::Pointwise: pointwise(k, true); break;
      case Kernel::Kind::Copy: pointwise(k, false); break;
      case Kernel::Kind::Reduce: reduce(k); break;
      case Kernel::Kind::Gemm: gemm(k); break;
    }
  }

  // ---- kernels split over the batch between threads -----------------------------------------

  // Elements a kernel touches per batch element: its output, or its matrix / reduced operand.
  int64_t elementsPerBatch(const Kernel& k) const {
    const Node& n = g_[k.node];
    int64_t e = n.shape.numel();
    for (NodeId i : n.in) e = std::max(e, g_[i].shape.numel());
    return e;
  }
  int64_t elementsPerBatch(const std::vector<const Kernel*>& group) const {
    int64_t e = 0;
    for (const Kernel* k : group) e += elementsPerBatch(*k);
    return e;
  }

  // A kernel whose batch elements are independent (batched output, each batch element writing
  // only its own rows) and large enough per batch element to be worth threads at some batch:
  // a Hebbian trace's [B, n, n] update and products. GEMMs thread themselves; reductions over the
  // batch write shared rows.
  // A loop group splits when each of its kernels could.
  bool splitsOverBatch(const Kernel& k) const {
    if (k.kind == Kernel::Kind::Gemm || !g_[k.node].shape.batched) return false;
    return elementsPerBatch(k) >= kOutlineElements;
  }
  bool splitsOverBatch(const std::vector<const Kernel*>& group) const {
    for (const Kernel* k : group)
      if (!splitsOverBatch(*k)) return false;
    return true;
  }
  static constexpr int64_t kOutlineElements = 1024;

  // The kernel (or loop group) as its own function fn(bufs, batch, b0, b1) over batch elements
  // [b0, b1), called through cellc_parallel_batch, which splits the batch between threads when the
  // work is large.
  void outlineOverBatch(const std::vector<const Kernel*>& group, size_t index) {
    llvm::BasicBlock* callerBlock = b_.GetInsertBlock();
    llvm::Function* caller = fn_;
    Value* callerBatch = batch_;
    Value* callerBufs[static_cast<int>(Buf::kCount)];
    std::copy(std::begin(bufs_), std::end(bufs_), std::begin(callerBufs));

    llvm::Function* f = newFunction(caller->getName().str() + ".k" + std::to_string(index),
                                    llvm::Function::InternalLinkage, 2);
    bLo_ = f->getArg(2);
    bHi_ = f->getArg(3);
    memo_.clear();
    emitGroup(group);
    b_.CreateRetVoid();

    fn_ = caller;
    batch_ = callerBatch;
    bLo_ = bHi_ = nullptr;
    std::copy(std::begin(callerBufs), std::end(callerBufs), std::begin(bufs_));
    memo_.clear();
    b_.SetInsertPoint(callerBlock);
    Value* elements = b_.CreateMul(batch_, c64(elementsPerBatch(group)));
    b_.CreateCall(parallel_, {f, caller->getArg(0), batch_, elements});
  }

 private:
  // ---- addressing ----------------------------------------------------------------------------

  Value* c64(int64_t v) { return llvm::ConstantInt::get(i64_, v); }
  Value* cT(double v) { return llvm::ConstantFP::get(T_, v); }

  // Element pointer of `idx` in a value of shape `s` living at `p`.
  // Offsets are non-negative and far below 2^63: the arithmetic is marked as not wrapping, so that
  // LLVM can tell how two accesses to one buffer relate (the state adjoint read and written in
  // place at one element, codegen/InPlaceAdjoint.h) without checks at run time.
  Value* address(const Place& p, const Shape& s, const Index& idx) {
    auto add = [&](Value* a, Value* b) { return b_.CreateAdd(a, b, "", true, true); };
    auto mul = [&](Value* a, Value* b) { return b_.CreateMul(a, b, "", true, true); };
    Value* off = add(c64(p.fixed), mul(batch_, c64(p.perBatch)));
    if (s.batched && idx.batch)
      off = add(off, mul(idx.batch, c64(p.batchStride ? p.batchStride : s.numel())));
    int64_t stride = 1;
    for (int ax = s.rank() - 1; ax >= 0; --ax) {
      if (s.dims[ax] != 1) off = add(off, mul(idx.dims[ax], c64(stride)));
      stride *= s.dims[ax];
    }
    return b_.CreateInBoundsGEP(T_, bufs_[static_cast<int>(p.buf)], off);
  }

  // Base pointer of a batch element (or of the whole value when unbatched).
  Value* base(const Place& p, const Shape& s, Value* batchIdx) {
    Index idx{batchIdx, std::vector<Value*>(s.rank(), c64(0))};
    return address(p, s, idx);
  }

  // ---- loops ---------------------------------------------------------------------------------

  // The inner loop over a row's q columns, once vectorized, is unrolled whole when a kernel in it
  // sums over the rows into a value indexed by the column (a column sum, a transposed trace
  // product) and q is at most kUnrollColumns (wider loops run in blocks of columns that are:
  // columnBlocks): those q sums then stay in registers across the row loop instead of being
  // loaded and stored at every row (LLVM promotes them once the column loop is straight-line
  // code). PBRC's copy-first step (n = 48): 13.1-13.2 to 15.9 steps/s. Only such loops: unrolling
  // costs compile time. Each element's sum keeps its order: no bit changes.
  static constexpr int64_t kUnrollColumns = 64;
  bool unrollColumns(const std::vector<const Kernel*>& kernels, int64_t q) const {
    if (q > kUnrollColumns) return false;
    for (const Kernel* k : kernels)
      if (sumsIntoColumns(*k)) return true;
    return false;
  }
  // A reduction over a [p, q] loop whose output is indexed by the column: it adds to the same q
  // outputs at every row.
  bool sumsIntoColumns(const Kernel& k) const {
    if (k.kind != Kernel::Kind::Reduce) return false;
    const Node& n = g_[k.node];
    if (n.op == Op::Sum) return n.a0 == 0 && g_[n.in[0]].shape.rank() == 2;
    if (n.op != Op::MatMul) return false;
    const bool matLeft = g_[n.in[0]].shape.rank() == 2;
    const NodeId M = matLeft ? n.in[0] : n.in[1];
    const bool viaTranspose = g_[M].op == Op::Transpose && g_[M].shape.rank() == 2;
    return matLeft == viaTranspose;  // y = M^T v or v M: the output index is M's storage column
  }

  // The column ranges [first, end) a [p, q] loop runs as, each over all p rows: one, or blocks of
  // kUnrollColumns (the last shorter) when q is wider and a kernel sums into columns, so that each
  // block's column sums stay in registers (unrollColumns). Only when no kernel sums along a row:
  // every column sum (and every sum over the batch) still adds its rows in order, so no bits
  // change; a row sum would be cut into per-block partial sums. Copy-first PBRC at n = 100, D = 1
  // (the backward's second trace group, 64 + 36 columns): 3.48-3.62 to 3.82-3.87 steps/s,
  // alternated, same metrics; the plastic GRUs' profiles did not move.
  std::vector<std::pair<int64_t, int64_t>> columnBlocks(const std::vector<const Kernel*>& kernels,
                                                        int64_t q) const {
    bool columnSum = false;
    for (const Kernel* k : kernels) {
      if (k->kind != Kernel::Kind::Reduce) continue;
      if (sumsIntoColumns(*k)) columnSum = true;
      else if (g_[k->node].op != Op::SumBatch) return {{0, q}};
    }
    if (q <= kUnrollColumns || !columnSum) return {{0, q}};
    std::vector<std::pair<int64_t, int64_t>> blocks;
    for (int64_t c = 0; c < q; c += kUnrollColumns) blocks.emplace_back(c, std::min(q, c + kUnrollColumns));
    return blocks;
  }

  // for (i = start; i < n; ++i) body(i); start 0 unless given. unrollVectorized: the loop, once
  // vectorized, is unrolled whole (a constant trip count of a few vectors).
  void loop(Value* n, const std::function<void(Value*)>& body, const char* name = "i",
            Value* start = nullptr, bool unrollVectorized = false) {
    if (!start) start = c64(0);
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, std::string(name) + ".loop", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, std::string(name) + ".exit", fn_);
    Value* nonEmpty = b_.CreateICmpSLT(start, n);
    b_.CreateCondBr(nonEmpty, header, exit);
    b_.SetInsertPoint(header);
    llvm::PHINode* i = b_.CreatePHI(i64_, 2, name);
    i->addIncoming(start, pre);
    body(i);
    Value* next = b_.CreateAdd(i, c64(1), "", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    auto* latch = b_.CreateCondBr(b_.CreateICmpSLT(next, n), header, exit);
    if (unrollVectorized) {
      auto selfRef = [&](std::vector<llvm::Metadata*> ops) {
        auto temp = llvm::MDNode::getTemporary(ctx_, {});
        ops.insert(ops.begin(), temp.get());
        llvm::MDNode* id = llvm::MDNode::getDistinct(ctx_, ops);
        id->replaceOperandWith(0, id);
        return id;
      };
      llvm::MDNode* full = llvm::MDNode::get(ctx_, {llvm::MDString::get(ctx_, "llvm.loop.unroll.full")});
      llvm::MDNode* fw = llvm::MDNode::get(
          ctx_, {llvm::MDString::get(ctx_, "llvm.loop.vectorize.followup_vectorized"), full});
      latch->setMetadata(llvm::LLVMContext::MD_loop, selfRef({fw}));
    }
    b_.SetInsertPoint(exit);
  }

  // Loops over every element of a shape (batch outermost, last axis innermost).
  // unrollInner: the innermost loop is unrolled whole once vectorized (unrollColumns).
  void loopNest(const Shape& s, const std::function<void(const Index&)>& body, bool unrollInner = false) {
    std::function<void(Index, int)> rec = [&](Index idx, int ax) {
      if (ax == s.rank()) return body(idx);
      loop(c64(s.dims[ax]), [&](Value* i) {
        Index next = idx;
        next.dims.push_back(i);
        rec(next, ax + 1);
      }, "i", nullptr, unrollInner && ax == s.rank() - 1);
    };
    if (s.batched) batchLoop([&](Value* b) { rec(Index{b, {}}, 0); });
    else rec(Index{}, 0);
  }

  // Over the batch elements this function handles: all of them, or [b0, b1) in an outlined kernel.
  void batchLoop(const std::function<void(Value*)>& body) { loop(bHi_ ? bHi_ : batch_, body, "b", bLo_); }

  // A reduction's sum (`sum` true) may be reassociated: a row sum then vectorizes with several
  // partial sums instead of one chain of dependent adds, each waiting on the last (the trace
  // product's row sums were a PBRC step's slowest loops). The order is fixed by the target's
  // vector width, as FMA contraction is: results differ from a plain left-to-right sum in the last
  // bits and from machine to machine, never from run to run.
  // takeMax: combine with what is there by std::max (old < v ? v : old) instead of adding.
  void store(const Place& p, const Shape& s, const Index& idx, Value* v, bool accumulate, bool sum = false,
             bool takeMax = false) {
    Value* addr = address(p, s, idx);
    if (accumulate) {
      auto* old = b_.CreateLoad(T_, addr);
      old->setMetadata(llvm::LLVMContext::MD_alias_scope, scope_);
      // Nothing another kernel of the group stores is read here.
      if (scopes_.size() > 1) old->setMetadata(llvm::LLVMContext::MD_noalias, otherScopes());
      if (takeMax) {
        v = select(b_.CreateFCmpOLT(old, v), v, old);
      } else {
        v = b_.CreateFAdd(old, v);
        if (sum) llvm::cast<llvm::Instruction>(v)->setHasAllowReassoc(true);
      }
    }
    auto* st = b_.CreateStore(v, addr);
    st->setMetadata(llvm::LLVMContext::MD_alias_scope, scope_);
    if (scopes_.size() > 1) st->setMetadata(llvm::LLVMContext::MD_noalias, otherScopes());
  }

  // The scopes of the current group's other kernels: nothing the current kernel stores or adds
  // to is touched by them.
  llvm::MDNode* otherScopes() {
    std::vector<llvm::Metadata*> others;
    for (llvm::MDNode* sc : scopes_)
      if (sc != scope_) others.push_back(sc->getOperand(0));
    return llvm::MDNode::get(ctx_, others);
  }

  Value* load(Value* addr, Buf buf = Buf::kCount) {
    auto* l = b_.CreateLoad(T_, addr);
    if (buf == Buf::DState && dStateScopes_) {
      l->setMetadata(llvm::LLVMContext::MD_alias_scope, dStateScopes_);
      l->setMetadata(llvm::LLVMContext::MD_noalias, dStateLoadScopes_);
    } else if (loadScopes_) {
      l->setMetadata(llvm::LLVMContext::MD_noalias, loadScopes_);
    }
    return l;
  }

  // ---- pointwise values ----------------------------------------------------------------------

  // The index of an operand of shape `os` that broadcasts to a result indexed by `idx`.
  Index broadcastIndex(const Index& idx, const Shape& os) {
    Index out{os.batched ? idx.batch : nullptr, {}};
    int shift = static_cast<int>(idx.dims.size()) - os.rank();
    for (int ax = 0; ax < os.rank(); ++ax)
      out.dims.push_back(os.dims[ax] == 1 ? c64(0) : idx.dims[ax + shift]);
    return out;
  }

  Value* call(llvm::Intrinsic::ID id, Value* x) {
    return b_.CreateCall(llvm::Intrinsic::getDeclaration(&m_, id, {T_}), {x});
  }

  Value* exp(Value* x) { return call(llvm::Intrinsic::exp, x); }
  Value* select(Value* cond, Value* a, Value* b) { return b_.CreateSelect(cond, a, b); }
  Value* boolToT(Value* cond) { return select(cond, cT(1), cT(0)); }

  // The value of node `id` at `idx`. Placed nodes are loaded unless `self` asks to compute the
  // kernel's own node.
  Value* value(NodeId id, const Index& idx, bool self = false) {
    const Node& n = g_[id];
    if (!self) {
      auto it = fp_->placed.find(id);
      if (it != fp_->placed.end()) return load(address(it->second, n.shape, idx), it->second.buf);
    }
    auto key = std::make_pair(id, idx);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    Value* v = compute(n, idx);
    memo_[key] = v;
    return v;
  }

  Value* operand(const Node& n, size_t i, const Index& idx) {
    return value(n.in[i], broadcastIndex(idx, g_[n.in[i]].shape));
  }

  Value* compute(const Node& n, const Index& idx) {
    auto x = [&](size_t i) { return operand(n, i, idx); };
    switch (n.op) {
      case Op::Const: return cT(n.value);
      case Op::Eye: return boolToT(b_.CreateICmpEQ(idx.dims[0], idx.dims[1]));
      case Op::Dale: return select(b_.CreateICmpSLT(idx.dims[0], c64(n.a0)), cT(1), cT(-1));
      case Op::Neg: return b_.CreateFNeg(x(0));
      case Op::Exp: return exp(x(0));
      case Op::Log: return call(llvm::Intrinsic::log, x(0));
      case Op::Sqrt: return call(llvm::Intrinsic::sqrt, x(0));
      case Op::Abs: return call(llvm::Intrinsic::fabs, x(0));
      case Op::Tanh: {
        // tanh(x) = 1 - 2 / (exp(2x) + 1): no vector tanh in LLVM 19, exp vectorizes (libmvec).
        Value* e = exp(b_.CreateFMul(cT(2), x(0)));
        return b_.CreateFSub(cT(1), b_.CreateFDiv(cT(2), b_.CreateFAdd(e, cT(1))));
      }
      case Op::Sigmoid: return b_.CreateFDiv(cT(1), b_.CreateFAdd(cT(1), exp(b_.CreateFNeg(x(0)))));
      case Op::Softplus: {
        // log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), which cannot overflow.
        Value* v = x(0);
        Value* pos = select(b_.CreateFCmpOGT(v, cT(0)), v, cT(0));
        Value* e = exp(b_.CreateFNeg(call(llvm::Intrinsic::fabs, v)));
        return b_.CreateFAdd(pos, call(llvm::Intrinsic::log, b_.CreateFAdd(cT(1), e)));
      }
      case Op::Relu: {
        Value* v = x(0);
        return select(b_.CreateFCmpOGT(v, cT(0)), v, cT(0));
      }
      case Op::Add: return b_.CreateFAdd(x(0), x(1));
      case Op::Sub: return b_.CreateFSub(x(0), x(1));
      case Op::Mul: return b_.CreateFMul(x(0), x(1));
      case Op::Div: return b_.CreateFDiv(x(0), x(1));
      case Op::Pow: {
        auto* pow = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::pow, {T_});
        return b_.CreateCall(pow, {x(0), x(1)});
      }
      case Op::Min: {  // std::min: b < a ? b : a
        Value *a = x(0), *c = x(1);
        return select(b_.CreateFCmpOLT(c, a), c, a);
      }
      case Op::Max: {  // std::max: a < b ? b : a
        Value *a = x(0), *c = x(1);
        return select(b_.CreateFCmpOLT(a, c), c, a);
      }
      case Op::Lt: return boolToT(b_.CreateFCmpOLT(x(0), x(1)));
      case Op::Le: return boolToT(b_.CreateFCmpOLE(x(0), x(1)));
      case Op::Where: {  // c != 0, unordered: NaN picks a (numpy's truth of NaN)
        Value *c = x(0), *a = x(1), *other = x(2);
        return select(b_.CreateFCmpUNE(c, cT(0)), a, other);
      }
      case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
        return boolToT(b_.CreateFCmpOGT(x(0), cT(0)));
      case Op::Clip: {
        Value *v = x(0), *lo = x(1), *hi = x(2);
        Value* m = select(b_.CreateFCmpOLT(v, lo), lo, v);
        return select(b_.CreateFCmpOLT(hi, m), hi, m);
      }
      case Op::Outer: {
        const Shape &sa = g_[n.in[0]].shape, &sb = g_[n.in[1]].shape;
        Value* a = value(n.in[0], Index{sa.batched ? idx.batch : nullptr, {idx.dims[0]}});
        Value* c = value(n.in[1], Index{sb.batched ? idx.batch : nullptr, {idx.dims[1]}});
        return b_.CreateFMul(a, c);
      }
      case Op::Transpose: {
        const Shape& s = g_[n.in[0]].shape;
        return value(n.in[0], Index{s.batched ? idx.batch : nullptr, {idx.dims[1], idx.dims[0]}});
      }
      case Op::Slice: {
        Index i = idx;
        i.dims[n.a0] = b_.CreateAdd(i.dims[n.a0], c64(n.a1));
        return value(n.in[0], i);
      }
      case Op::Squeeze: {
        Index i = idx;
        i.dims.insert(i.dims.begin() + n.a0, c64(0));
        return value(n.in[0], i);
      }
      case Op::Unsqueeze: {
        Index i = idx;
        i.dims.erase(i.dims.begin() + n.a0);
        return value(n.in[0], i);
      }
      case Op::Pad: {
        // Branch-free: load at a clamped index, select zero outside [lo, lo + len).
        int64_t len = g_[n.in[0]].shape.dims[n.a0];
        Value* j = b_.CreateSub(idx.dims[n.a0], c64(n.a1));
        Value* inside = b_.CreateICmpULT(j, c64(len));
        Index i = idx;
        i.dims[n.a0] = select(inside, j, c64(0));
        return select(inside, value(n.in[0], i), cT(0));
      }
      case Op::Concat: {
        int ax = n.shape.rank() - 1;
        Value* result = nullptr;
        int64_t off = 0;
        for (size_t k = 0; k < n.in.size(); ++k) {
          int64_t len = g_[n.in[k]].shape.dims.back();
          Value* j = b_.CreateSub(idx.dims[ax], c64(off));
          Value* inside = b_.CreateICmpULT(j, c64(len));
          Index i = broadcastIndex(idx, g_[n.in[k]].shape);
          i.dims[ax] = select(inside, j, c64(0));
          Value* v = value(n.in[k], i);
          result = result ? select(inside, v, result) : v;
          off += len;
        }
        return result;
      }
      case Op::Broadcast: return x(0);
      case Op::MatMul: {
        // A small contraction, summed inline (codegen::isInlineMatMul): y = sum_k a[.., k] b[k, ..].
        const Shape &sa = g_[n.in[0]].shape, &sb = g_[n.in[1]].shape;
        const int64_t K = sa.dims.back();
        Value* sum = nullptr;
        for (int64_t k = 0; k < K; ++k) {
          Index ia{sa.batched ? idx.batch : nullptr, {}}, ib{sb.batched ? idx.batch : nullptr, {}};
          if (sa.rank() == 2) ia.dims.push_back(idx.dims[0]);
          ia.dims.push_back(c64(k));
          ib.dims.push_back(c64(k));
          if (sb.rank() == 2) ib.dims.push_back(idx.dims.back());
          Value* term = b_.CreateFMul(value(n.in[0], ia), value(n.in[1], ib));
          sum = sum ? b_.CreateFAdd(sum, term) : term;
        }
        return sum;
      }
      default:
        throw ir::InternalError(std::string("codegen: node of op ") + ir::opName(n.op) +
                                " must be materialized before use");
    }
  }

  // ---- kernels -------------------------------------------------------------------------------

  void pointwise(const Kernel& k, bool self) {
    loopNest(g_[k.node].shape, [&](const Index& idx) {
      memo_.clear();
      pointwiseElement(k, idx, self);
    });
  }

  void pointwiseElement(const Kernel& k, const Index& idx, bool self) {
    store(k.out, g_[k.node].shape, idx, value(k.node, idx, self), k.accumulate);
  }

  // A reduction's output before its sum: zero (a max: -inf), unless the kernel adds to what is there.
  void zeroOutput(const Kernel& k) {
    const Shape& out = g_[k.node].shape;
    const bool isMax = g_[k.node].op == Op::Amax;
    if (isMax && k.accumulate) throw ir::InternalError("codegen: a max reduction that adds to its output");
    Value* init = cT(isMax ? -std::numeric_limits<double>::infinity() : 0.0);
    if (!k.accumulate) loopNest(out, [&](const Index& idx) { store(k.out, out, idx, init, false); });
  }

  // y_b = M_b v_b (or v_b M_b) with the matrix computed inline (codegen::isBatchedMatVec). The
  // loops follow the matrix's storage (the transposed operand's source when it is a transpose),
  // so the inner loop reads contiguously.
  void batchedMatVec(const Kernel& k) {
    const std::array<int64_t, 2> space = *loopSpace(g_, k);  // the storage's [rows, columns]
    zeroOutput(k);
    batchLoop([&](Value* b) {
      for (auto [first, end] : columnBlocks({&k}, space[1]))
        loop(c64(space[0]), [&](Value* r) {
          loop(c64(end), [&](Value* c) {
            memo_.clear();
            matVecElement(k, b, r, c);
          }, "k", c64(first), unrollColumns({&k}, end - first));
        }, "r");
    });
  }

  // One term of a batched matrix-vector product: storage row r, column c of batch element b.
  void matVecElement(const Kernel& k, Value* b, Value* r, Value* c) {
    const Node& n = g_[k.node];
    const bool matLeft = g_[n.in[0]].shape.rank() == 2;
    const NodeId M = matLeft ? n.in[0] : n.in[1], v = matLeft ? n.in[1] : n.in[0];
    const bool viaTranspose = g_[M].op == Op::Transpose && g_[M].shape.rank() == 2;
    Value* row = viaTranspose ? c : r;  // M's own indices
    Value* col = viaTranspose ? r : c;
    Value* m = value(M, Index{b, {row, col}});
    Value* i = matLeft ? row : col;     // the output index; the other is contracted
    Value* kk = matLeft ? col : row;
    Value* x = value(v, Index{g_[v].shape.batched ? b : nullptr, {kk}});
    store(k.out, n.shape, Index{b, {i}}, b_.CreateFMul(m, x), true, true);
  }

  void reduce(const Kernel& k) {
    const Node& n = g_[k.node];
    if (n.op == Op::MatMul) return batchedMatVec(k);
    zeroOutput(k);
    const Shape& in = g_[n.in[0]].shape;
    loopNest(in, [&](const Index& idx) {
      memo_.clear();
      reduceElement(k, idx);
    }, in.rank() >= 1 && unrollColumns({&k}, in.dims.back()));
  }

  // One term of a sum: the operand at idx, added to the output element it reduces to.
  void reduceElement(const Kernel& k, const Index& idx) {
    const Node& n = g_[k.node];
    const Shape& out = n.shape;
    Value* v = value(n.in[0], idx);
    Index o{out.batched ? idx.batch : nullptr, {}};
    if ((n.op == Op::Sum || n.op == Op::Amax) && n.a0 >= 0) {
      o.dims = idx.dims;
      o.dims.erase(o.dims.begin() + n.a0);
    } else if (n.op == Op::SumBatch) {
      o.dims = idx.dims;
    }
    store(k.out, out, o, v, true, true, n.op == Op::Amax);
  }

  // A matrix operand as stored: its place, its stored shape, and whether it is read transposed.
  struct Mat {
    Place place;
    Shape stored;
    bool trans;
  };

  Mat mat(NodeId id) {
    const Node& n = g_[id];
    if (n.op == Op::Transpose && fp_->placed.count(n.in[0]))
      return {fp_->placed.at(n.in[0]), g_[n.in[0]].shape, true};
    if (!fp_->placed.count(id))
      throw ir::InternalError("codegen: matrix operand %" + std::to_string(id) + " is not materialized");
    return {fp_->placed.at(id), n.shape, false};
  }

  // packedAt >= 0: B's panels, packed by the prologue, at that offset of the hoisted buffer.
  void callGemm(bool ta, bool tb, Value* M, Value* N, Value* K, Value* A, int64_t lda, Value* B,
                int64_t ldb, bool accumulate, Value* C, int64_t ldc, bool segment = false,
                int64_t packedAt = -1) {
    const bool f64 = T_->isDoubleTy();
    std::vector<Value*> args{b_.getInt32(ta), b_.getInt32(tb), M, N, K, A, c64(lda), B, c64(ldb),
                             cT(accumulate ? 1.0 : 0.0), C, c64(ldc)};
    llvm::Function* f = gemm_;
    // Other entries (blas/Gemm.cpp), declared on use: a product over a segment's rows, and one
    // with a packed W.
    if (segment) {
      f = llvm::cast<llvm::Function>(
          m_.getOrInsertFunction(f64 ? "cellc_gemm_segment_f64" : "cellc_gemm_segment_f32", gemm_->getFunctionType())
              .getCallee());
    } else if (packedAt >= 0) {
      std::vector<llvm::Type*> params(gemm_->getFunctionType()->params());
      params.push_back(ptr_);
      f = llvm::cast<llvm::Function>(
          m_.getOrInsertFunction(f64 ? "cellc_gemm_packed_f64" : "cellc_gemm_packed_f32",
                                 llvm::FunctionType::get(b_.getVoidTy(), params, false))
              .getCallee());
      args.push_back(b_.CreateInBoundsGEP(T_, bufs_[static_cast<int>(Buf::Hoisted)], c64(packedAt)));
    }
    b_.CreateCall(f, args);
  }

  void gemm(const Kernel& k) {
    const Node& n = g_[k.node];
    Mat a = mat(n.in[0]), bm = mat(n.in[1]);
    const Shape& out = n.shape;
    // The row stride of a batched [B, n] operand or result: n, or the segment buffer's row width.
    auto rows = [](const Place& pl, int64_t cols) { return pl.batchStride ? pl.batchStride : cols; };
    if (n.op == Op::BatchOuterSum) {  // Y[m,p] = A^T B over the batch: K = batch
      int64_t m = out.dims[0], p = out.dims[1];
      // Operands in the segment buffer (the segment stage's product) or an adjoint in the d-staged
      // buffer (the input epilogue's): K = steps x B, a product in blocks of K.
      const bool segment = (a.place.buf == Buf::Segment && bm.place.buf == Buf::Segment) ||
                           a.place.buf == Buf::DStaged || bm.place.buf == Buf::DStaged;
      callGemm(true, false, c64(m), c64(p), batch_, base(a.place, a.stored, nullptr), rows(a.place, m),
               base(bm.place, bm.stored, nullptr), rows(bm.place, p), k.accumulate,
               base(k.out, out, nullptr), p, segment);
      return;
    }
    if (const std::optional<BatchedProduct> bp = batchedProduct(g_, *fp_, k.node)) {
      // Y[B, n] = X[B, k] op(W) for all b at once (y_b = A x_b, or y_b = x_b B).
      const Place &xp = fp_->placed.at(bp->x), &wp = fp_->placed.at(bp->w);
      callGemm(false, bp->wTrans, batch_, c64(bp->n), c64(bp->k), base(xp, g_[bp->x].shape, nullptr),
               rows(xp, bp->k), base(wp, g_[bp->w].shape, nullptr), bp->ldw, k.accumulate,
               base(k.out, out, nullptr), rows(k.out, bp->n), false, k.packedAt);
      return;
    }
    // Logical (per batch element) operands: A [m, kk] (a vector is [1, kk]), B [kk, p] (a vector
    // is [kk, 1]). Stored row-major; a transposed read flips the flag and the leading dimension.
    const Shape& la = g_[n.in[0]].shape;
    const Shape& lb = g_[n.in[1]].shape;
    int64_t m = la.rank() == 2 ? la.dims[0] : 1;
    int64_t kk = la.dims.back();
    int64_t p = lb.rank() == 2 ? lb.dims[1] : 1;
    int64_t lda = a.stored.rank() == 2 ? a.stored.dims[1] : kk;
    int64_t ldb = bm.stored.rank() == 2 ? bm.stored.dims[1] : 1;
    bool ta = a.trans, tb = bm.trans;
    const bool aB = a.stored.batched, bB = bm.stored.batched;
    if (a.place.batchStride || bm.place.batchStride || k.out.batchStride)
      throw ir::InternalError("codegen: a per-batch-element product in the segment buffer");
    auto one = [&](Value* bi) {
      callGemm(ta, tb, c64(m), c64(p), c64(kk), base(a.place, a.stored, aB ? bi : nullptr), lda,
               base(bm.place, bm.stored, bB ? bi : nullptr), ldb, k.accumulate,
               base(k.out, out, out.batched ? bi : nullptr), p);
    };
    if (out.batched) loop(batch_, one, "b");
    else one(nullptr);
  }

  llvm::LLVMContext& ctx_;
  llvm::Module& m_;
  llvm::IRBuilder<> b_;
  const StepIR& ir_;
  const ir::Graph& g_;
  llvm::Type *T_, *i64_, *i32_, *ptr_;
  llvm::Function* gemm_;
  llvm::Function* parallel_;  // cellc_parallel_batch
  llvm::Function* fn_ = nullptr;
  Value* bLo_ = nullptr;  // in an outlined kernel: its batch range [bLo_, bHi_); else null
  Value* bHi_ = nullptr;
  Value* batch_ = nullptr;
  Value* bufs_[static_cast<int>(Buf::kCount)] = {};
  const FunctionPlan* fp_ = nullptr;
  std::map<std::pair<NodeId, Index>, Value*> memo_;
  llvm::MDNode* scope_ = nullptr;  // the current kernel's alias scope (one of scopes_)
  std::vector<llvm::MDNode*> scopes_;  // the current loop group's, one per kernel
  llvm::MDNode* loadScopes_ = nullptr;  // all of scopes_: what loads do not alias
  llvm::MDNode* dStateScopes_ = nullptr;  // those of scopes_ whose kernel writes d_state (or null)
  llvm::MDNode* dStateLoadScopes_ = nullptr;  // the others
};

}  // namespace

std::unique_ptr<llvm::Module> emitModule(llvm::LLVMContext& ctx, const StepIR& ir,
                                         const Plan& plan, Precision precision,
                                         const std::string& prefix, Functions which) {
  auto m = std::make_unique<llvm::Module>(prefix, ctx);
  Emitter e(ctx, *m, ir, precision);
  if (which != Functions::SegmentBackward) e.function(prefix + "_forward", plan.forward);
  e.function(prefix + "_backward", plan.backward);
  if (which == Functions::Staged) {
    e.function(prefix + "_input_prologue", plan.inputPrologue);
    e.function(prefix + "_input_epilogue", plan.inputEpilogue);
  }
  if (which == Functions::Step) {
    if (plan.hasOmega) e.function(prefix + "_omega", plan.omega);
    if (plan.hasHoisted) {
      e.function(prefix + "_prologue", plan.prologue);
      e.function(prefix + "_epilogue", plan.epilogue);
    }
  }
  if (plan.hasSegment) e.function(prefix + "_segment", plan.segment);
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(*m, &os)) throw ir::InternalError("codegen produced invalid LLVM IR: " + os.str());
  return m;
}

}  // namespace cellc::codegen
