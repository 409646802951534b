// The extension module cellc._cellc; the Python API around it is python/cellc/__init__.py.
#include <pybind11/pybind11.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "Cell.h"
#include "Experiment.h"
#include "Train.h"
#include "blas/Threads.h"
#include "train/Memory.h"

PYBIND11_MODULE(_cellc, m) {
  m.doc() = "cellc's compiler, JIT and trainer (use the cellc package, not this module)";
  // Buffers beyond the machine's memory (train/Memory.h): a MemoryError that names the bytes.
  pybind11::register_exception<cellc::runtime::OutOfMemoryError>(m, "OutOfMemoryError", PyExc_MemoryError);
  // An allocation no estimate foresaw: still a MemoryError, saying what to do.
  pybind11::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "out of memory: an allocation failed (std::bad_alloc); lower "
                                         "the sizes (batch, steps, dims) or free memory");
    }
  });
  cellc::python::bindCell(m);
  cellc::python::bindTrain(m);
  cellc::python::bindExperiment(m);
  // The threads the generated code's large products share (blas/Threads.h): one setting per process.
  m.def("set_threads", [](int n) {
    if (n < 0) throw std::invalid_argument("set_threads: n must be 0 (every core) or more, got " + std::to_string(n));
    cellc::setThreads(n);
  }, pybind11::arg("n"));
  m.def("threads", &cellc::threads);
}
