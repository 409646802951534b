// cellc.run: an experiment file through loadExperiment and runExperiment (runtime/experiment/).
#pragma once

#include <pybind11/pybind11.h>

namespace cellc::python {

namespace py = pybind11;

void bindExperiment(py::module_& m);

}  // namespace cellc::python
