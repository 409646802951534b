// cellc.train: cellc's trainer from Python, on a built-in task or a Python callable.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "Cell.h"

namespace cellc::python {

namespace py = pybind11;

// Trains `cell` on `task` (a built-in task's name, with `taskOptions`, or a callable
// (batch, rng) -> (inputs, targets[, mask])) from `params` (None: the cell's initializers at the
// option `seed`); `options` are the TrainConfig settings by name. Returns a dict: params, steps,
// best_error, last_loss, stop_reason, resumed. Raises KeyboardInterrupt after the checkpoint on
// Ctrl-C.
py::dict train(Cell& cell, py::object task, py::object taskOptions, py::object params,
               const std::string& loss, const std::string& output, py::object options,
               bool verbose);

void bindTrain(py::module_& m);

}  // namespace cellc::python
