// A compiled cell as Python sees it: the front end (SourceFile::load, loadCell, lower), the JIT
// (compileCell<float|double>), the layout, initial params, and unrolling with its vector-Jacobian
// product through runtime/unroll/Unroll.h (the same forwardSequence/backwardSequence as `cellc
// unroll`).
#pragma once

#include <pybind11/pybind11.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "driver/Compile.h"
#include "sema/Program.h"

namespace cellc::python {

namespace py = pybind11;

// A cell with errors: the rendered diagnostics (file:line:col: error[CODE]: ..., source line,
// caret). Python sees cellc.CompileError, a ValueError.
struct CompileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What one compilation shares between precisions: the source, the overrides and the lowered IR.
struct CellSource {
  std::string path, text, name;
  Overrides overrides;
  std::map<std::string, int64_t> dims;
  StepIR ir;
};

// "dims n = 64, n_in = 1": the sizes a memory error names (train/Memory.h).
std::string dimsText(const std::map<std::string, int64_t>& dims);

class Cell {
 public:
  // Throws CompileError (the cell has errors), FileNotFoundError-worthy std::ios_base::failure
  // (the file cannot be read), std::invalid_argument (a bad dtype).
  // source: the cell's text, given instead of read from `path` (which then only names it in
  // messages).
  static std::shared_ptr<Cell> compile(const std::string& path, const Overrides& overrides,
                                       const std::string& dtype,
                                       const std::optional<std::string>& source = std::nullopt);
  // The same cell in another precision (compiled once, then cached).
  std::shared_ptr<Cell> astype(const std::string& dtype);

  const CellSource& source() const { return *src_; }
  const ir::Layout& layout() const { return src_->ir.layout; }
  const std::string& dtype() const { return dtype_; }
  bool isDouble() const { return dtype_ == "float64"; }

  // The float32 cell the trainer uses (this one when it is float32): its kernel, under its mutex.
  Cell& trainingCell();
  StepKernel<float>& trainingKernel() { return *trainingCell().f32_; }

  py::dict layoutDict() const;
  py::dict initParams(uint64_t seed) const;
  // Flat params in layout order from a dict name -> array (every param, exact shapes).
  template <class T>
  std::vector<T> flatParams(py::handle params) const;
  // A flat param vector back to a dict name -> array of T.
  template <class T, class V>
  py::dict paramDict(const std::vector<V>& flat) const;

  // Runs the steps; returns (outputs, final, tape or None).
  py::tuple run(py::handle params, py::handle inputs, py::handle state0, py::handle noise,
                bool keep);
  // The gradients of every param, input and initial state given output and final-state adjoints.
  py::dict vjp(py::handle tape, py::handle dOutputs, py::handle dFinal);

  std::mutex& mutex() { return mu_; }

 private:
  template <class T>
  py::tuple runT(StepKernel<T>& k, py::handle params, py::handle inputs, py::handle state0,
                 py::handle noise, bool keep);
  template <class T>
  py::dict vjpT(StepKernel<T>& k, py::handle tape, py::handle dOutputs, py::handle dFinal);

  std::shared_ptr<CellSource> src_;
  std::string dtype_;
  std::unique_ptr<CompiledCell<float>> f32_;
  std::unique_ptr<CompiledCell<double>> f64_;
  std::shared_ptr<Cell> other_;  // the other precision, once asked for
  std::mutex mu_;                // a compiled cell's scratch memory is not shared between threads
};

void bindCell(py::module_& m);

}  // namespace cellc::python
