#include "jit/Jit.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "blas/GemmEntries.h"
#include "blas/HostCpu.h"
#include "blas/PackedGemm.h"
#include "blas/Threads.h"
#include "blas/WorkPool.h"
#include "llvm/Analysis/TargetLibraryInfo.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/ExecutionEngine/Orc/CompileUtils.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Object/ELFObjectFile.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Transforms/Utils/SplitModule.h"

namespace cellc {

struct JitSession {
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

namespace {

std::string errorText(llvm::Error err) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << err;
  return s;
}

template <class V>
V unwrap(llvm::Expected<V> v, const char* what) {
  if (!v) throw JitError(std::string(what) + ": " + errorText(v.takeError()));
  return std::move(*v);
}

// One-time process set-up: native target, and glibc's libmvec for vectorized exp/log.
void initLLVM() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::sys::DynamicLibrary::LoadLibraryPermanently("libmvec.so.1");
  });
}

std::unique_ptr<llvm::TargetMachine> hostMachine() {
  auto jtmb = unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  return unwrap(jtmb.createTargetMachine(), "creating the target machine");
}

// O3 for the host CPU, with calls to exp/log mapped to libmvec's vector variants (the TLI must
// be registered before the default function analyses).
void optimize(llvm::Module& m, llvm::TargetMachine& tm) {
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  for (llvm::Function& f : m) {
    if (f.isDeclaration()) continue;
    f.addFnAttr("target-cpu", tm.getTargetCPU());
    f.addFnAttr("target-features", tm.getTargetFeatureString());
  }
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  pto.SLPVectorization = true;
  // Interleaving and unrolling multiply the code of loops whose bodies are already vector-wide,
  // for little gain here and most of the compile time.
  pto.LoopInterleaving = false;
  pto.LoopUnrolling = false;
  llvm::PassBuilder pb(&tm, pto);
  llvm::Triple triple(m.getTargetTriple());
  llvm::TargetLibraryInfoImpl tlii(triple);
  tlii.addVectorizableFunctionsFromVecLib(llvm::TargetLibraryInfoImpl::LIBMVEC_X86, triple);
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(tlii); });
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(m, mam);
}

// Compiling a step is LLVM's O2 pipeline and instruction selection over its functions, about
// equal parts (a plastic cell's 110-150 ms on one thread, a GRU's 55). The functions share nothing
// but calls, so the module is split in pieces (llvm::SplitModule, functions dealt out by size) and
// each piece is optimized and compiled to an object in a context of its own (a bitcode round trip
// moves it there), the pieces side by side on the work pool's threads. The split does not follow
// the thread count: the same code on one thread or two.
constexpr unsigned kCompilePieces = 2;

std::unique_ptr<llvm::MemoryBuffer> compilePiece(const llvm::SmallVector<char, 0>& bitcode) {
  llvm::LLVMContext ctx;
  auto m = unwrap(llvm::parseBitcodeFile(
                      llvm::MemoryBufferRef(llvm::StringRef(bitcode.data(), bitcode.size()), "piece"), ctx),
                  "reading a piece of the module");
  auto tm = hostMachine();
  optimize(*m, *tm);
  llvm::orc::SimpleCompiler compile(*tm);
  return unwrap(compile(*m), "compiling a piece of the module");
}

std::vector<std::unique_ptr<llvm::MemoryBuffer>> compileInPieces(llvm::Module& m) {
  std::vector<llvm::SmallVector<char, 0>> pieces;
  llvm::SplitModule(
      m, kCompilePieces,
      [&](std::unique_ptr<llvm::Module> piece) {
        pieces.emplace_back();
        llvm::raw_svector_ostream os(pieces.back());
        llvm::WriteBitcodeToFile(*piece, os);
      },
      /*PreserveLocals=*/false, /*RoundRobin=*/true);
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects(pieces.size());
  forChunksRethrowing(static_cast<int64_t>(pieces.size()), threads(), [&](int64_t i) {
    objects[static_cast<size_t>(i)] = compilePiece(pieces[static_cast<size_t>(i)]);
  });
  return objects;
}

template <class T>
constexpr codegen::Precision precisionOf() {
  return std::is_same_v<T, double> ? codegen::Precision::F64 : codegen::Precision::F32;
}

// CELLC_PERF_MAP=1: every generated function's address, size and name is appended to
// /tmp/perf-PID.map, the file `perf report` reads to name JIT code (cell_backward.k3, an outlined
// loop group, rather than an address). Off by default: it writes outside the run folder.
bool perfMapWanted() {
  const char* v = std::getenv("CELLC_PERF_MAP");
  return v && *v && std::string(v) != "0";
}

// A function of a compiled object: its section, offset and size there, and whether it is
// global (then the JIT can look it up, and its address places the section's others).
struct PerfSymbol {
  std::string name;
  uint64_t object, section, offset, size;
  bool global;
};

void perfSymbols(const llvm::MemoryBuffer& buffer, uint64_t object, std::vector<PerfSymbol>& out) {
  auto obj = llvm::object::ObjectFile::createObjectFile(buffer.getMemBufferRef());
  if (!obj) return llvm::consumeError(obj.takeError());
  for (const llvm::object::SymbolRef& sym : (*obj)->symbols()) {
    auto type = sym.getType();
    auto name = sym.getName();
    auto value = sym.getValue();
    auto section = sym.getSection();
    auto flags = sym.getFlags();
    if (!type || !name || !value || !section || !flags || *type != llvm::object::SymbolRef::ST_Function ||
        *section == (*obj)->section_end()) {
      llvm::consumeError(type.takeError());
      llvm::consumeError(name.takeError());
      llvm::consumeError(value.takeError());
      llvm::consumeError(section.takeError());
      llvm::consumeError(flags.takeError());
      continue;
    }
    out.push_back({name->str(), object, (*section)->getIndex(), *value,
                   llvm::object::ELFSymbolRef(sym).getSize(),
                   (*flags & llvm::object::SymbolRef::SF_Global) != 0});
  }
}

void writePerfMap(llvm::orc::LLJIT& jit, const std::vector<PerfSymbol>& syms) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  FILE* f = std::fopen(("/tmp/perf-" + std::to_string(getpid()) + ".map").c_str(), "a");
  if (!f) return;
  // Each section's base, from a global function in it that the JIT resolves.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> bases;
  for (const PerfSymbol& g : syms) {
    if (!g.global || bases.count({g.object, g.section})) continue;
    auto addr = jit.lookup(g.name);
    if (!addr) {
      llvm::consumeError(addr.takeError());
      continue;
    }
    bases[{g.object, g.section}] = addr->getValue() - g.offset;
  }
  for (const PerfSymbol& s : syms)
    if (auto it = bases.find({s.object, s.section}); it != bases.end())
      std::fprintf(f, "%llx %llx %s\n", static_cast<unsigned long long>(it->second + s.offset),
                   static_cast<unsigned long long>(s.size), s.name.c_str());
  std::fclose(f);
}

// The step's module, emitted, optimized and added to a JIT of its own that resolves the GEMM
// and thread helpers from this process.
std::shared_ptr<JitSession> jitModule(const StepIR& ir, const codegen::Plan& plan, codegen::Precision precision,
                                      const std::string& prefix, codegen::Functions which) {
  // Before anything that runs the speed-tuned files: a clear error, not an illegal instruction.
  static const bool hostChecked = (checkHostCpu(), true);
  (void)hostChecked;
  initLLVM();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> m;
  try {
    m = codegen::emitModule(*ctx, ir, plan, precision, prefix, which);
  } catch (const ir::InternalError& e) {
    throw JitError(e.what());
  }
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects = compileInPieces(*m);

  auto jtmb = unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  auto session = std::make_shared<JitSession>();
  session->jit = unwrap(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(),
                        "creating the JIT");
  llvm::orc::LLJIT& jit = *session->jit;
  llvm::orc::JITDylib& lib = jit.getMainJITDylib();
  lib.addGenerator(unwrap(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                              jit.getDataLayout().getGlobalPrefix()),
                          "opening this process's symbols"));
  llvm::orc::SymbolMap gemms;
  gemms[jit.mangleAndIntern("cellc_gemm_f64")] = {llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_f64),
                                                  llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_gemm_f32")] = {llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_f32),
                                                  llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_gemm_segment_f64")] = {
      llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_segment_f64), llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_gemm_segment_f32")] = {
      llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_segment_f32), llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_gemm_packed_f64")] = {
      llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_packed_f64), llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_gemm_packed_f32")] = {
      llvm::orc::ExecutorAddr::fromPtr(&cellc_gemm_packed_f32), llvm::JITSymbolFlags::Exported};
  gemms[jit.mangleAndIntern("cellc_parallel_batch")] = {
      llvm::orc::ExecutorAddr::fromPtr(&cellc_parallel_batch), llvm::JITSymbolFlags::Exported};
  if (auto err = lib.define(llvm::orc::absoluteSymbols(std::move(gemms))))
    throw JitError("defining the GEMM symbols: " + errorText(std::move(err)));
  std::vector<PerfSymbol> perf;
  if (perfMapWanted())
    for (size_t i = 0; i < objects.size(); ++i) perfSymbols(*objects[i], i, perf);
  for (auto& object : objects)
    if (auto err = jit.addObjectFile(std::move(object)))
      throw JitError("adding the compiled module: " + errorText(std::move(err)));
  if (!perf.empty()) writePerfMap(jit, perf);
  return session;
}

template <class Fn>
Fn link(JitSession& s, const std::string& name, const char* what) {
  return unwrap(s.jit->lookup(name), what).template toPtr<Fn>();
}

}  // namespace

// The segment form's code, once compiled (CompiledCell::segmentCompiled).
template <class T>
struct CompiledCell<T>::SegmentCode {
  std::shared_ptr<JitSession> session;
  Fn backward = nullptr, segment = nullptr;
};

// The staged form's code, once compiled (CompiledCell::stagedCompiled).
template <class T>
struct CompiledCell<T>::StagedCode {
  std::shared_ptr<JitSession> session;
  Fn forward = nullptr, backward = nullptr, inputPrologue = nullptr, inputEpilogue = nullptr;
};

template <class T>
CompiledCell<T>::CompiledCell(std::shared_ptr<JitSession> session, Fns fns, PlannedStep step)
    : session_(std::move(session)),
      fns_(fns),
      ir_(std::move(step.ir)),
      layout_(ir_.layout),
      plan_(std::move(step.plan)),
      seg_(std::move(step.segment)),
      staged_(std::move(step.staged)),
      hoistedSize_(ir_.hoistedSize + plan_.packedSize),
      scratch_(std::make_unique<Scratch[]>(kMaxWorkers)) {
  // Per trial, a product's multiply-adds: the output's elements times the contraction for a
  // batched product (M = B), the output's elements for a weight gradient summed over the batch.
  for (const codegen::FunctionPlan* fp : {&plan_.forward, &plan_.backward})
    for (const codegen::Kernel& k : fp->kernels) {
      if (k.kind != codegen::Kernel::Kind::Gemm) continue;
      const ir::Node& n = ir_.g[k.node];
      const int64_t depth = n.op == ir::Op::MatMul ? ir_.g[n.in[0]].shape.dims.back() : 1;
      productWork_ = std::max(productWork_, n.shape.numel() * depth);
      if (n.op == ir::Op::BatchOuterSum) weightGradient_ = std::max(weightGradient_, n.shape.numel());
    }
}

template <class T>
CompiledCell<T>::~CompiledCell() = default;

template <class T>
const typename CompiledCell<T>::SegmentCode& CompiledCell<T>::segmentCompiled() {
  std::call_once(compileOnce_, [&] {
    auto c = std::make_unique<SegmentCode>();
    if (seg_.row > 0) {
      c->session = jitModule(seg_.ir, seg_.plan, precisionOf<T>(), "seg",
                             codegen::Functions::SegmentBackward);
      c->backward =
          link<Fn>(*c->session, "seg_backward", "linking the segment plan's backward step");
      c->segment = link<Fn>(*c->session, "seg_segment", "linking the segment stage");
      ++segmentCompiles_;
    }
    segCode_ = std::move(c);
  });
  return *segCode_;
}

template <class T>
const typename CompiledCell<T>::StagedCode& CompiledCell<T>::stagedCompiled() {
  std::call_once(stagedOnce_, [&] {
    auto c = std::make_unique<StagedCode>();
    if (staged_.row > 0) {
      c->session = jitModule(staged_.ir, staged_.plan, precisionOf<T>(), "staged", codegen::Functions::Staged);
      c->forward = link<Fn>(*c->session, "staged_forward", "linking the staged forward step");
      c->backward = link<Fn>(*c->session, "staged_backward", "linking the staged backward step");
      c->inputPrologue = link<Fn>(*c->session, "staged_input_prologue", "linking the input prologue");
      c->inputEpilogue = link<Fn>(*c->session, "staged_input_epilogue", "linking the input epilogue");
    }
    stagedCode_ = std::move(c);
  });
  return *stagedCode_;
}

template <class T>
KernelTraits CompiledCell<T>::traits() const {
  // The adjoint flags hold for every backward plan: BPTT may run any (the staged one has no input
  // adjoint, so only its in-place flag counts).
  const PlannedStep::Segment& s = seg_;
  KernelTraits t;
  t.concurrentCalls = true;
  t.inputAdjointOptional =
      plan_.inputAdjointOptional && (s.row == 0 || s.plan.inputAdjointOptional);
  t.adjointInPlace = plan_.adjointInPlace && (s.row == 0 || s.plan.adjointInPlace) &&
                     (staged_.row == 0 || staged_.plan.adjointInPlace);
  t.stagedWidth = staged_.row;
  t.stagedReadBack = staged_.row > 0 && staged_.plan.stagedReadBack;
  t.omega = fns_.omega != nullptr;
  t.hoistedSize = hoistedSize_;
  t.productWorkPerTrial = productWork_;
  t.weightGradientElements = weightGradient_;
  return t;
}

template <class T>
void CompiledCell<T>::run(Stage stage, const StepArgs<T>& a) {
  runStage(*this, stage, a);
}

template <class T>
int64_t CompiledCell<T>::segmentSize(int64_t batch) const {
  return seg_.row * batch;
}

template <class T>
int64_t CompiledCell<T>::stagedTapeSize(int64_t batch) const {
  return staged_.row ? staged_.plan.tape.at(batch) : 0;
}

template <class T>
const codegen::Plan* CompiledCell<T>::segmentPlan() const {
  return seg_.row ? &seg_.plan : nullptr;
}

template <class T>
const StepIR* CompiledCell<T>::segmentStep() const {
  return seg_.row ? &seg_.ir : nullptr;
}

template <class T>
T* CompiledCell<T>::scratch(int64_t elements) {
  Scratch& s = scratch_[workerIndex()];
  size_t need = static_cast<size_t>(elements);
  if (need > s.size || !s.data) {
    size_t bytes = ((std::max<size_t>(need, 1) * sizeof(T) + 63) / 64) * 64;
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    s.data.reset(p);
    s.size = need;
  }
  return s.data.get();
}

template <class T>
typename CompiledCell<T>::Bufs CompiledCell<T>::bufs(const T* params, const T* state, const T* input,
                                                     const T* noise, int64_t batch) {
  Bufs b{};
  set(b, codegen::Buf::Params, params);
  set(b, codegen::Buf::State, state);
  set(b, codegen::Buf::Input, input);
  set(b, codegen::Buf::Noise, noise);
  b[static_cast<int>(codegen::Buf::Scratch)] = scratch(plan_.scratch.at(batch));
  return b;
}

namespace {
// The buffers a backward step reads and writes beyond bufs(), whichever plan runs it (the
// generated code only reads the const ones).
template <class T, class Bufs>
void setBackward(Bufs& b, const StepArgs<T>& a, const T* dStateNext) {
  using codegen::Buf;
  for (auto [which, p] : {std::pair<Buf, const T*>{Buf::Hoisted, a.hoisted},
                          {Buf::Tape, a.tape},
                          {Buf::AdjState, dStateNext},
                          {Buf::AdjOutput, a.dOutput},
                          {Buf::DState, a.dState},
                          {Buf::DInput, a.dInput},
                          {Buf::DParams, a.dParams},
                          {Buf::DHoisted, a.dHoisted}})
    b[static_cast<size_t>(which)] = const_cast<T*>(p);
}
}  // namespace

// Self-contained steps: the invariant part computed for this one step (a caller walking a
// sequence runs the stages itself, once).
template <class T>
void CompiledCell<T>::forward(const StepArgs<T>& a) {
  hoisted_.resize(static_cast<size_t>(hoistedSize_));
  if (hoistedSize_ > 0) prologue(a.params, hoisted_.data());
  StepArgs<T> h = a;
  h.hoisted = hoisted_.data();
  forwardHoisted(h);
}

template <class T>
void CompiledCell<T>::backward(const StepArgs<T>& a) {
  hoisted_.resize(static_cast<size_t>(hoistedSize_));
  dHoisted_.assign(static_cast<size_t>(hoistedSize_), T(0));
  if (hoistedSize_ > 0) prologue(a.params, hoisted_.data());
  StepArgs<T> h = a;
  h.hoisted = hoisted_.data();
  h.dHoisted = dHoisted_.data();
  backwardHoisted(h);
  if (hoistedSize_ > 0) epilogue(h);
}

template <class T>
void CompiledCell<T>::prologue(const T* params, T* hoisted) {
  using codegen::Buf;
  if (fns_.prologue) {
    Bufs b = bufs(params, nullptr, nullptr, nullptr, 1);
    set(b, Buf::Hoisted, hoisted);
    fns_.prologue(b.data(), 1);
  }
  // Then the packed operands, which may be hoisted values (blas/PackedGemm.h).
  const std::vector<codegen::PackedOperand>& packed = plan_.packed;
  if (packed.empty()) return;
  forChunks(static_cast<int64_t>(packed.size()), threads(), [&](int64_t i) {
    const codegen::PackedOperand& p = packed[static_cast<size_t>(i)];
    const T* w = (p.src.buf == Buf::Params ? params : hoisted) + p.src.fixed;
    packOperand(p.rowMajor, p.n, p.k, w, p.ld, hoisted + p.offset);
  });
}

template <class T>
void CompiledCell<T>::forwardHoisted(const StepArgs<T>& a) {
  using codegen::Buf;
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::StateNext, a.stateNext);
  set(b, Buf::Output, a.output);
  set(b, Buf::Tape, a.tape);
  fns_.forward(b.data(), a.batch);
}

namespace {
// A backward planned with the state adjoint in place reads d_state_next from d_state: a caller
// with two buffers has it copied there first.
template <class T>
const T* adjointInto(const codegen::Plan& plan, const ir::Layout& L, const T* dStateNext, T* dState,
                     int64_t batch) {
  if (!plan.adjointInPlace || dStateNext == dState) return dStateNext;
  std::copy_n(dStateNext, L.stateSize * batch, dState);
  return dState;
}
}  // namespace

template <class T>
void CompiledCell<T>::backwardHoisted(const StepArgs<T>& a) {
  const T* dStateNext = adjointInto(plan_, layout_, a.dStateNext, a.dState, a.batch);
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  setBackward(b, a, dStateNext);
  fns_.backward(b.data(), a.batch);
}

// As backwardHoisted, through the segment plan's backward: the deferred products' operands go to
// row block k of the segment buffer.
template <class T>
void CompiledCell<T>::backwardSegment(const StepArgs<T>& a) {
  const SegmentCode& c = segmentCompiled();
  if (!c.backward) {
    backwardHoisted(a);
    return;
  }
  using codegen::Buf;
  const T* dStateNext = adjointInto(seg_.plan, layout_, a.dStateNext, a.dState, a.batch);
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(seg_.plan.scratch.at(a.batch));
  setBackward(b, a, dStateNext);
  set(b, Buf::Segment, a.segment + a.k * seg_.row * a.batch);
  c.backward(b.data(), a.batch);
}

// The generated segment function sees the segment's rows as one batch of steps x B.
template <class T>
void CompiledCell<T>::segmentEpilogue(const StepArgs<T>& a) {
  if (a.steps <= 0) return;
  const SegmentCode& c = segmentCompiled();
  if (!c.segment) return;
  using codegen::Buf;
  Bufs b = bufs(a.params, nullptr, nullptr, nullptr, 1);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(seg_.plan.scratch.at(1));
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::Segment, a.segment);
  set(b, Buf::DParams, a.dParams);
  set(b, Buf::DHoisted, a.dHoisted);
  c.segment(b.data(), a.steps * a.batch);
}

template <class T>
void CompiledCell<T>::epilogue(const StepArgs<T>& a) {
  if (!fns_.epilogue) return;
  using codegen::Buf;
  Bufs b = bufs(a.params, nullptr, nullptr, nullptr, 1);
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::DHoisted, a.dHoisted);
  set(b, Buf::DParams, a.dParams);
  fns_.epilogue(b.data(), 1);
}

// The input stage: its prologue and epilogue see all steps x B rows as one batch.
template <class T>
void CompiledCell<T>::inputPrologue(const StepArgs<T>& a) {
  const StagedCode& c = stagedCompiled();
  if (!c.inputPrologue) throw std::logic_error("this step kernel has no input stage");
  using codegen::Buf;
  Bufs b = bufs(a.params, nullptr, a.input, nullptr, 1);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(staged_.plan.inputScratch.at(a.batch));
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::Staged, a.staged);
  c.inputPrologue(b.data(), a.batch);
}

template <class T>
void CompiledCell<T>::forwardStaged(const StepArgs<T>& a) {
  const StagedCode& c = stagedCompiled();
  if (!c.forward) throw std::logic_error("this step kernel has no input stage");
  using codegen::Buf;
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(staged_.plan.scratch.at(a.batch));
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::Staged, a.staged);
  set(b, Buf::StateNext, a.stateNext);
  set(b, Buf::Output, a.output);
  set(b, Buf::Tape, a.tape);
  c.forward(b.data(), a.batch);
}

template <class T>
void CompiledCell<T>::backwardStaged(const StepArgs<T>& a) {
  const StagedCode& c = stagedCompiled();
  if (!c.backward) throw std::logic_error("this step kernel has no input stage");
  using codegen::Buf;
  const T* dStateNext = adjointInto(staged_.plan, layout_, a.dStateNext, a.dState, a.batch);
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(staged_.plan.scratch.at(a.batch));
  setBackward(b, a, dStateNext);
  set(b, Buf::DInput, nullptr);
  set(b, Buf::Staged, a.staged);
  set(b, Buf::DStaged, a.dStaged);
  c.backward(b.data(), a.batch);
}

template <class T>
void CompiledCell<T>::inputEpilogue(const StepArgs<T>& a) {
  const StagedCode& c = stagedCompiled();
  if (!c.inputEpilogue) throw std::logic_error("this step kernel has no input stage");
  using codegen::Buf;
  Bufs b = bufs(a.params, nullptr, a.input, nullptr, 1);
  b[static_cast<size_t>(Buf::Scratch)] = scratch(staged_.plan.inputScratch.at(a.batch));
  set(b, Buf::Hoisted, a.hoisted);
  set(b, Buf::Staged, a.staged);
  set(b, Buf::DStaged, a.dStaged);
  set(b, Buf::DParams, a.dParams);
  set(b, Buf::DHoisted, a.dHoisted);
  c.inputEpilogue(b.data(), a.batch);
}

template <class T>
void CompiledCell<T>::omega(const StepArgs<T>& a) {
  if (!fns_.omega) throw std::logic_error("this step kernel was built without the Omega function");
  using codegen::Buf;
  Bufs b = bufs(a.params, a.state, a.input, a.noise, a.batch);
  set(b, Buf::AdjState, a.v);
  set(b, Buf::Cotangent, a.cotangent);
  set(b, Buf::DParams, a.dParams);
  fns_.omega(b.data(), a.batch);
}

template <class T>
std::unique_ptr<CompiledCell<T>> linkStep(PlannedStep step) {
  std::shared_ptr<JitSession> session =
      jitModule(step.ir, step.plan, precisionOf<T>(), "cell", codegen::Functions::Step);
  using Fn = typename CompiledCell<T>::Fn;
  typename CompiledCell<T>::Fns fns;
  fns.forward = link<Fn>(*session, "cell_forward", "linking the forward step");
  fns.backward = link<Fn>(*session, "cell_backward", "linking the backward step");
  if (step.plan.hasOmega) fns.omega = link<Fn>(*session, "cell_omega", "linking the Omega term");
  if (step.plan.hasHoisted) {
    fns.prologue = link<Fn>(*session, "cell_prologue", "linking the prologue");
    fns.epilogue = link<Fn>(*session, "cell_epilogue", "linking the epilogue");
  }
  return std::make_unique<CompiledCell<T>>(std::move(session), fns, std::move(step));
}

std::string emitLLVM(const PlannedStep& step, codegen::Precision precision, bool opt) {
  initLLVM();
  llvm::LLVMContext ctx;
  std::unique_ptr<llvm::Module> m;
  try {
    m = codegen::emitModule(ctx, step.ir, step.plan, precision, "cell");
  } catch (const ir::InternalError& e) {
    throw JitError(e.what());
  }
  if (opt) {
    auto tm = hostMachine();
    optimize(*m, *tm);
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  m->print(os, nullptr);
  return s;
}

template class CompiledCell<float>;
template class CompiledCell<double>;
template std::unique_ptr<CompiledCell<float>> linkStep<float>(PlannedStep);
template std::unique_ptr<CompiledCell<double>> linkStep<double>(PlannedStep);

}  // namespace cellc
