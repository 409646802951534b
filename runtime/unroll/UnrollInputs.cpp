// Phase 1 of `cellc unroll` (UnrollFiles.h): scan the folder, resolve the loss, read and check
// every array. Nothing is computed or written until all of it has passed.
#include "unroll/UnrollInputs.h"

#include "diag/Text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <system_error>

#include "io/npy.h"
#include "train/Memory.h"

namespace cellc::runtime {

namespace {

namespace fs = std::filesystem;
using Shape = std::vector<int64_t>;


// "(20, 3, 1)", "(5,)", "()": numpy's spelling, which is what users see in Python.
std::string tupleStr(const std::vector<std::string>& items) {
  std::string s = "(";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  if (items.size() == 1) s += ",";
  return s + ")";
}

std::string shapeStr(const Shape& shape) {
  std::vector<std::string> items;
  for (int64_t d : shape) items.push_back(std::to_string(d));
  return tupleStr(items);
}

// What one file in the input folder means.
enum class Kind { Param, Input, State, Noise, DOutput, DFinal, Target, Mask };

struct Expected {
  std::string file;       // "x.npy"
  Kind kind;
  const ir::Slot* slot;   // the param, input, state, noise or output it belongs to
  std::string what() const {
    const std::string& n = slot->name;
    switch (kind) {
      case Kind::Param: return "param " + n;
      case Kind::Input: return "input " + n;
      case Kind::State: return "the initial value of state " + n;
      case Kind::Noise: return "noise " + n;
      case Kind::DOutput: return "the adjoint of output " + n;
      case Kind::DFinal: return "the adjoint of the final state " + n;
      case Kind::Target: return "the target of output " + n;
      case Kind::Mask: return "the mask of output " + n;
    }
    return n;
  }
};

// Leading axes of a file: "T" and/or "B" before the slot's own dims.
std::vector<std::string> leadingAxes(Kind k, LossKind loss) {
  switch (k) {
    case Kind::Param: return {};
    case Kind::Input:
    case Kind::Noise:
    case Kind::DOutput: return {"T", "B"};
    case Kind::State:
    case Kind::DFinal: return {"B"};
    case Kind::Target:
    case Kind::Mask:
      if (loss == LossKind::MseLast) return {"B"};
      return {"T", "B"};
  }
  return {};
}

template <class T>
class FolderReader {
 public:
  FolderReader(const StepKernel<T>& kernel, const ir::Layout& layout, const UnrollOptions& options,
               const std::string& inDir)
      : kernel_(kernel), L_(layout), opts_(options), inDir_(inDir) {}

  UnrollInputs<T> read() {
    checkLayout();
    buildNames();
    scanFolder();
    resolveLoss();
    readAll();
    in_.loss = loss_;
    in_.steps = T_;
    in_.batch = B_;
    return std::move(in_);
  }

 private:
  void checkLayout() {
    const ir::Layout& K = kernel_.layout();
    if (K.paramSize != L_.paramSize || K.stateSize != L_.stateSize ||
        K.inputSize != L_.inputSize || K.noiseSize != L_.noiseSize ||
        K.outputSize != L_.outputSize)
      throw UnrollError("unroll: the layout given does not match the kernel's layout");
    std::error_code ec;
    fs::file_status st = fs::status(inDir_, ec);
    if (st.type() == fs::file_type::not_found)
      throw UnrollError(inDir_ + ": no such directory (tried " + resolvedPath(inDir_) + ": " +
                        ec.message() + ")");
    if (ec) throw UnrollError(inDir_ + ": cannot access: " + ec.message());
    if (!fs::is_directory(st)) throw UnrollError(inDir_ + ": not a directory");
  }

  std::string inPath(const std::string& file) const { return (fs::path(inDir_) / file).string(); }

  void add(Kind k, const ir::Slot& s, const std::string& file) {
    Expected e{file, k, &s};
    auto [it, fresh] = names_.emplace(file, e);
    // Declared names come first and win; a loss file that collides with one is remembered and
    // refused only when the chosen loss needs it.
    if (!fresh) clashes_.emplace(file, e);
  }

  void buildNames() {
    for (const ir::Slot& s : L_.params) add(Kind::Param, s, s.name + ".npy");
    for (const ir::Slot& s : L_.inputs) add(Kind::Input, s, s.name + ".npy");
    for (const ir::Slot& s : L_.states) add(Kind::State, s, s.name + ".npy");
    for (const ir::Slot& s : L_.noises) add(Kind::Noise, s, s.name + ".npy");
    for (const ir::Slot& s : L_.outputs) add(Kind::DOutput, s, "d_" + s.name + ".npy");
    for (const ir::Slot& s : L_.states) add(Kind::DFinal, s, "d_final_" + s.name + ".npy");
    for (const ir::Slot& s : L_.outputs) add(Kind::Target, s, "target_" + s.name + ".npy");
    for (const ir::Slot& s : L_.outputs) add(Kind::Mask, s, "mask_" + s.name + ".npy");
  }

  std::string expectedList() const {
    auto join = [](const std::vector<const ir::Slot*>& slots, const std::string& prefix) {
      std::string s;
      for (const ir::Slot* p : slots) s += (s.empty() ? "" : ", ") + prefix + p->name + ".npy";
      return s;
    };
    auto ptrs = [](const std::vector<ir::Slot>& v) {
      std::vector<const ir::Slot*> out;
      for (const ir::Slot& s : v) out.push_back(&s);
      return out;
    };
    std::string s = "expected: params " + join(ptrs(L_.params), "");
    if (!L_.inputs.empty()) s += "; inputs " + join(ptrs(L_.inputs), "");
    std::string opt;
    auto more = [&](const std::string& part) { opt += (opt.empty() ? "" : ", ") + part; };
    if (!L_.states.empty()) more(join(ptrs(L_.states), "") + " (initial states)");
    if (!L_.noises.empty()) more(join(ptrs(L_.noises), "") + " (noise)");
    more(join(ptrs(L_.outputs), "d_") +
         (L_.states.empty() ? "" : ", " + join(ptrs(L_.states), "d_final_")) +
         " (--loss adjoints)");
    more(join(ptrs(L_.outputs), "target_") + ", " + join(ptrs(L_.outputs), "mask_") +
         " (--loss mse, mse_last)");
    return s + "; optional " + opt;
  }

  void warn(const std::string& message) {
    in_.warnings.push_back(message);
    if (opts_.onWarning) opts_.onWarning(message);
  }

  void scanFolder() {
    std::vector<std::string> files;
    std::error_code ec;
    fs::directory_iterator it(inDir_, ec), end;
    if (ec) throw UnrollError(inDir_ + ": cannot list the directory: " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) throw UnrollError(inDir_ + ": cannot list the directory: " + ec.message());
      const fs::path& p = it->path();
      if (p.extension() != ".npy") continue;
      std::error_code dec;
      if (it->is_directory(dec)) continue;
      files.push_back(p.filename().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      if (names_.count(f)) {
        present_.insert(f);
        continue;
      }
      std::string best;
      size_t bestDist = std::numeric_limits<size_t>::max();
      for (const auto& [name, e] : names_) {
        size_t d = editDistance(f, name);
        if (d < bestDist) bestDist = d, best = name;
      }
      std::string hint;
      if (bestDist <= std::max<size_t>(2, f.size() / 4)) hint = " (did you mean " + best + "?)";
      warn(inPath(f) + " matches no array of the cell and is ignored" + hint + "; " +
           expectedList());
    }
  }

  bool has(const std::string& file) const { return present_.count(file) > 0; }

  bool usedBy(Kind k, LossKind loss) const {
    switch (k) {
      case Kind::DOutput:
      case Kind::DFinal: return loss == LossKind::Adjoints;
      case Kind::Target: return loss == LossKind::Mse || loss == LossKind::MseLast;
      case Kind::Mask: return loss == LossKind::Mse;
      default: return true;
    }
  }

  void resolveLoss() {
    loss_ = opts_.loss;
    if (loss_ == LossKind::Auto) {
      loss_ = LossKind::None;
      for (const auto& [file, e] : names_)
        if ((e.kind == Kind::DOutput || e.kind == Kind::DFinal) && has(file))
          loss_ = LossKind::Adjoints;
    }
    for (const auto& [file, e] : clashes_)
      if (usedBy(e.kind, loss_))
        throw UnrollError(inPath(file) + " is ambiguous: it names " + names_.at(file).what() +
                          " and " + e.what() + " (--loss " + lossName(loss_) +
                          "); rename one of them in the cell");
    for (const std::string& file : present_) {
      const Expected& e = names_.at(file);
      if (usedBy(e.kind, loss_)) continue;
      std::string why = e.kind == Kind::Mask && loss_ == LossKind::MseLast
                            ? "masks are used only with --loss mse"
                            : std::string("it is used only with --loss ") +
                                  (e.kind == Kind::Target ? "mse or mse_last"
                                   : e.kind == Kind::Mask ? "mse"
                                                          : "adjoints");
      warn(inPath(file) + " is ignored with --loss " + lossName(loss_) + ": " + why);
    }
  }

  std::string symbolic(const Expected& e) const {
    std::vector<std::string> items = leadingAxes(e.kind, loss_);
    for (int64_t d : e.slot->shape.dims) items.push_back(std::to_string(d));
    return tupleStr(items);
  }

  Shape concrete(const Expected& e) const {
    Shape s;
    for (const std::string& a : leadingAxes(e.kind, loss_)) s.push_back(a == "T" ? T_ : B_);
    for (int64_t d : e.slot->shape.dims) s.push_back(d);
    return s;
  }

  std::string needs(const Expected& e) const {
    std::string sym = symbolic(e), con = shapeStr(concrete(e));
    if (leadingAxes(e.kind, loss_).empty()) return con;
    return sym + " = " + con;
  }

  std::string indexStr(const Shape& shape, int64_t flat) const {
    std::vector<std::string> idx(shape.size());
    for (size_t i = shape.size(); i-- > 0;) {
      idx[i] = std::to_string(flat % shape[i]);
      flat /= shape[i];
    }
    return tupleStr(idx);
  }

  npy::Array readFile(const Expected& e) {
    try {
      return npy::read(inPath(e.file));
    } catch (const npy::Error& err) {
      throw UnrollError(std::string(err.what()) + " (reading " + e.what() + ")");
    }
  }

  // Every value finite, and representable in T.
  std::vector<T> convert(const Expected& e, const npy::Array& a) const {
    std::vector<T> out(a.data.size());
    for (size_t i = 0; i < a.data.size(); ++i) {
      double v = a.data[i];
      if (!std::isfinite(v))
        throw UnrollError(inPath(e.file) + " holds " + (std::isnan(v) ? "NaN" : "Inf") +
                          " at index " + indexStr(a.shape, static_cast<int64_t>(i)) + " (" +
                          e.what() + "); every value must be finite");
      out[i] = static_cast<T>(v);
      if (!std::isfinite(out[i])) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        throw UnrollError(inPath(e.file) + " holds " + buf + " at index " +
                          indexStr(a.shape, static_cast<int64_t>(i)) +
                          ", which overflows float32 (--precision f32)");
      }
    }
    return out;
  }

  // Reads a file whose shape must be exactly `concrete(e)` (T and B known).
  std::vector<T> readChecked(const Expected& e) {
    npy::Array a = readFile(e);
    if (a.shape != concrete(e)) {
      std::string msg = inPath(e.file) + " has shape " + shapeStr(a.shape) + " but " + e.what() +
                        " needs " + needs(e);
      if (!leadingAxes(e.kind, loss_).empty())
        msg += " (T = " + std::to_string(T_) + " and B = " + std::to_string(B_) + " come from " +
               inPath(reference_) + ")";
      else if (e.slot->shape.dims.empty())
        msg += "; save a scalar as a 0-d array, e.g. np.save(path, np.float64(v))";
      else if (e.kind == Kind::Param)
        msg += " (the sizes come from the cell's dims, which -D name=value overrides)";
      throw UnrollError(msg);
    }
    return convert(e, a);
  }

  // The first array with a T axis sets T and B.
  void readReference() {
    const Expected* ref = nullptr;
    for (const ir::Slot& s : L_.inputs) {
      ref = &names_.at(s.name + ".npy");
      break;
    }
    auto firstPresent = [&](Kind k) -> const Expected* {
      for (const auto& [file, e] : names_)
        if (e.kind == k && has(file) && usedBy(k, loss_) && !leadingAxes(k, loss_).empty() &&
            leadingAxes(k, loss_)[0] == "T")
          return &e;
      return nullptr;
    };
    if (!ref) ref = firstPresent(Kind::Noise);
    if (!ref) ref = firstPresent(Kind::DOutput);
    if (!ref) ref = firstPresent(Kind::Target);
    if (!ref)
      throw UnrollError(inDir_ +
                        ": cannot tell the number of steps T and the batch B: the cell has no "
                        "inputs and the folder holds no noise, adjoint or target array with a T "
                        "axis");
    reference_ = ref->file;
    npy::Array a = readFile(*ref);
    const Shape& dims = ref->slot->shape.dims;
    bool ok = a.shape.size() == dims.size() + 2 &&
              std::equal(dims.begin(), dims.end(), a.shape.begin() + 2);
    if (!ok) {
      std::string need = symbolic(*ref);
      if (a.shape.size() >= 2) {  // T and B as this file says, to show the full expected shape
        T_ = a.shape[0];
        B_ = a.shape[1];
        need = needs(*ref);
      }
      throw UnrollError(inPath(ref->file) + " has shape " + shapeStr(a.shape) + " but " +
                        ref->what() + " needs " + need);
    }
    T_ = a.shape[0];
    B_ = a.shape[1];
    if (T_ < 1)
      throw UnrollError(inPath(ref->file) + " has shape " + shapeStr(a.shape) +
                        ": T = 0 steps; at least one step is needed");
    if (B_ < 1)
      throw UnrollError(inPath(ref->file) + " has shape " + shapeStr(a.shape) +
                        ": B = 0 sequences; at least one is needed");
    in_.arrays[ref->file] = convert(*ref, a);
  }

  void readAll() {
    std::vector<std::string> missing;
    auto require = [&](const std::vector<ir::Slot>& slots) {
      for (const ir::Slot& s : slots) {
        const Expected& e = names_.at(s.name + ".npy");
        if (!has(e.file))
          missing.push_back(e.file + " (" + e.what() + ", shape " + symbolic(e) + ")");
      }
    };
    require(L_.params);
    require(L_.inputs);
    if (!missing.empty()) {
      std::string msg = inDir_ + ": missing " +
                        (missing.size() == 1 ? "array " : std::to_string(missing.size()) +
                                                              " arrays: ");
      for (size_t i = 0; i < missing.size(); ++i) msg += (i ? ", " : "") + missing[i];
      throw UnrollError(msg);
    }
    if (loss_ == LossKind::Mse || loss_ == LossKind::MseLast) {
      bool any = false;
      std::string want;
      for (const ir::Slot& s : L_.outputs) {
        const Expected& e = names_.at("target_" + s.name + ".npy");
        any = any || has(e.file);
        want += (want.empty() ? "" : ", ") + e.file + " " + symbolic(e);
      }
      if (!any)
        throw UnrollError(inDir_ + ": --loss " + lossName(loss_) +
                          " needs a target: no target_<output>.npy in the folder (expected " +
                          want + ")");
    }
    if (loss_ == LossKind::Adjoints) {
      bool any = false;
      for (const auto& [file, e] : names_)
        any = any || ((e.kind == Kind::DOutput || e.kind == Kind::DFinal) && has(file));
      if (!any)
        warn(inDir_ + ": --loss adjoints but no d_<output>.npy or d_final_<state>.npy: every "
                      "adjoint is zero, and so is every gradient");
    }

    readReference();
    // T and B are known: the buffers must fit before the other arrays are read.
    try {
      requireMemory(unrollMemory(kernel_, T_, B_, loss_ != LossKind::None), "the unroll",
                    "T = " + std::to_string(T_) + " and B = " + std::to_string(B_) + " (from " +
                        inPath(reference_) + ") and the cell's dims (-D name=value)");
    } catch (const OutOfMemoryError& e) {
      throw UnrollError(e.what());
    }
    // Everything else in a fixed order: params, inputs, states, noise, loss files.
    std::vector<const Expected*> order;
    for (Kind k : {Kind::Param, Kind::Input, Kind::State, Kind::Noise, Kind::DOutput,
                   Kind::DFinal, Kind::Target, Kind::Mask})
      for (const auto& [file, e] : names_)
        if (e.kind == k && has(file) && usedBy(k, loss_) && file != reference_)
          order.push_back(&e);
    for (const Expected* e : order) {
      if (e->kind == Kind::Mask && !has("target_" + e->slot->name + ".npy")) {
        warn(inPath(e->file) + " is ignored: there is no target_" + e->slot->name + ".npy");
        continue;
      }
      in_.arrays[e->file] = readChecked(*e);
    }
  }

  const StepKernel<T>& kernel_;
  const ir::Layout& L_;
  const UnrollOptions& opts_;
  std::string inDir_;

  std::map<std::string, Expected> names_;      // file name -> meaning
  std::multimap<std::string, Expected> clashes_;
  std::set<std::string> present_;              // known names found in the folder
  LossKind loss_ = LossKind::None;
  int64_t T_ = 0, B_ = 0;
  std::string reference_;                      // the file T and B come from
  UnrollInputs<T> in_;                         // the arrays as read, the warnings
};

}  // namespace

template <class T>
UnrollInputs<T> readUnrollInputs(const StepKernel<T>& kernel, const ir::Layout& layout,
                                 const UnrollOptions& options, const std::string& inDir) {
  return FolderReader<T>(kernel, layout, options, inDir).read();
}

template UnrollInputs<float> readUnrollInputs(const StepKernel<float>&, const ir::Layout&,
                                              const UnrollOptions&, const std::string&);
template UnrollInputs<double> readUnrollInputs(const StepKernel<double>&, const ir::Layout&,
                                               const UnrollOptions&, const std::string&);

}  // namespace cellc::runtime
