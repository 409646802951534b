// The extension module cellc._cellc; the Python API around it is python/cellc/__init__.py.
#include <pybind11/pybind11.h>

#include "Cell.h"
#include "Experiment.h"
#include "Train.h"

PYBIND11_MODULE(_cellc, m) {
  m.doc() = "cellc's compiler, JIT and trainer (use the cellc package, not this module)";
  cellc::python::bindCell(m);
  cellc::python::bindTrain(m);
  cellc::python::bindExperiment(m);
}
