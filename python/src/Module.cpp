// The extension module cellc._cellc; the Python API around it is python/cellc/__init__.py.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "Cell.h"
#include "Experiment.h"
#include "Train.h"
#include "blas/Threads.h"

PYBIND11_MODULE(_cellc, m) {
  m.doc() = "cellc's compiler, JIT and trainer (use the cellc package, not this module)";
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
