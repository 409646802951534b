#include "Arrays.h"

#include <algorithm>
#include <limits>

#include "diag/Text.h"

namespace cellc::python {

std::string shapeStr(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::string needStr(const std::vector<std::string>& leading, const Shape& leadingValues,
                    const ir::Slot& slot) {
  Shape full = withLeading(leadingValues, slot);
  if (leading.empty()) return shapeStr(full);
  std::string sym = "(";
  for (size_t i = 0; i < leading.size(); ++i) sym += (i ? ", " : "") + leading[i];
  for (int64_t d : slot.shape.dims) sym += ", " + std::to_string(d);
  sym += ")";
  if (leadingValues.empty()) return sym;  // T and B not known yet
  return sym + " = " + shapeStr(full);
}

Shape withLeading(const Shape& leading, const ir::Slot& slot) {
  Shape s = leading;
  s.insert(s.end(), slot.shape.dims.begin(), slot.shape.dims.end());
  return s;
}

template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> floatArray(py::handle obj, const std::string& what) {
  if (obj.is_none()) throw py::value_error(what + " is None; it needs an array");
  py::array a = py::module_::import("numpy").attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (kind != 'f')
    throw py::value_error(what + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                          "; it needs float32 or float64");
  // No copy when it is already T and C-contiguous.
  auto out = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!out) throw py::error_already_set();
  return out;
}

template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> shapedArray(py::handle obj, const std::string& what,
                                               const Shape& need, const std::string& needText) {
  py::array_t<T, py::array::c_style | py::array::forcecast> a = floatArray<T>(obj, what);
  Shape got(a.shape(), a.shape() + a.ndim());
  if (got != need)
    throw py::value_error(what + " has shape " + shapeStr(got) + " but needs " + needText);
  return a;
}

template <class T>
py::array_t<T> newArray(const Shape& shape) {
  std::vector<py::ssize_t> s(shape.begin(), shape.end());
  return py::array_t<T>(s);
}

void checkNames(py::handle d, const std::vector<ir::Slot>& allowed, const std::string& role) {
  if (d.is_none()) return;
  for (auto item : py::reinterpret_borrow<py::dict>(d)) {
    std::string key = py::str(item.first).cast<std::string>();
    bool ok = std::any_of(allowed.begin(), allowed.end(),
                          [&](const ir::Slot& s) { return s.name == key; });
    if (ok) continue;
    std::string names, best;
    size_t bestDist = std::numeric_limits<size_t>::max();
    for (const ir::Slot& s : allowed) {
      names += (names.empty() ? "" : ", ") + s.name;
      size_t dist = editDistance(key, s.name);
      if (dist < bestDist) bestDist = dist, best = s.name;
    }
    std::string msg = "unknown " + role + " '" + key + "'";
    if (!best.empty() && bestDist <= std::max<size_t>(2, key.size() / 4))
      msg += " (did you mean '" + best + "'?)";
    msg += names.empty() ? "; the cell has no " + role : "; the cell's " + role + "s: " + names;
    throw py::value_error(msg);
  }
}

template py::array_t<float, py::array::c_style | py::array::forcecast> floatArray<float>(py::handle, const std::string&);
template py::array_t<double, py::array::c_style | py::array::forcecast> floatArray<double>(py::handle, const std::string&);
template py::array_t<float, py::array::c_style | py::array::forcecast> shapedArray<float>(py::handle, const std::string&,
                                                                   const Shape&, const std::string&);
template py::array_t<double, py::array::c_style | py::array::forcecast> shapedArray<double>(py::handle,
                                                                     const std::string&,
                                                                     const Shape&,
                                                                     const std::string&);
template py::array_t<float> newArray<float>(const Shape&);
template py::array_t<double> newArray<double>(const Shape&);

}  // namespace cellc::python
