// numpy arrays in and out of the extension: dtype and shape checks whose ValueError names the array
// and the shape it needs, the way `cellc unroll` names files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ir/Step.h"

namespace cellc::python {

namespace py = pybind11;

using Shape = std::vector<int64_t>;

// numpy's spelling of a shape: "(20, 3, 1)", "(5,)", "()".
std::string shapeStr(const Shape& shape);
// "(T, B, 1) = (20, 3, 1)" for a batched slot ("(T, B, 1)" without leading values); "(5, 5)"
// for a param.
std::string needStr(const std::vector<std::string>& leading, const Shape& leadingValues,
                    const ir::Slot& slot);

// The Python object as a C-contiguous array of T. Any real floating dtype is accepted (converted
// when it is not T: one copy); anything else (ints, complex, objects) is a ValueError naming
// `what`. Arrays of dtype T that are already C-contiguous are used as they are, without a copy.
template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> floatArray(py::handle obj, const std::string& what);

// floatArray, and its shape must be exactly `need` (ValueError: "<what> has shape (..) but needs
// <needText>").
template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> shapedArray(py::handle obj, const std::string& what,
                                               const Shape& need, const std::string& needText);

// A new array of T with the given shape (uninitialized).
template <class T>
py::array_t<T> newArray(const Shape& shape);

// Checks that `d` (a dict or None) holds only names from `allowed`; ValueError naming the first
// unknown key and the names the cell has, with a suggestion for a typo.
void checkNames(py::handle d, const std::vector<ir::Slot>& allowed, const std::string& role);

// The slot's shape with leading axes: {T, B, dims...} or {B, dims...} or {dims...}.
Shape withLeading(const Shape& leading, const ir::Slot& slot);

}  // namespace cellc::python
