#include "Cell.h"

#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <type_traits>

#include "Arrays.h"
#include "params/Init.h"
#include "random/Streams.h"
#include "train/Memory.h"
#include "unroll/Unroll.h"

namespace cellc::python {

namespace {

// What a forward run keeps for its vjp: the sequence as given and the trajectory (states and
// tapes), so the backward never recomputes the forward.
template <class T>
struct TapeData {
  runtime::Sequence<T> seq;
  runtime::Trajectory<T> traj;
  std::vector<bool> stateGiven;  // per state: from state0, not from its declared initial value
};

struct Tape {
  std::shared_ptr<const CellSource> src;
  std::string dtype;
  int64_t steps = 0, batch = 0;
  std::shared_ptr<TapeData<float>> f32;
  std::shared_ptr<TapeData<double>> f64;
  bool used = false;
};

std::string initText(const ir::Slot& s) {
  std::string out;
  for (const ir::InitStep& st : s.init) {
    std::ostringstream os;
    os << (out.empty() ? "" : " | ") << st.fn << "(";
    bool first = true;
    for (double a : st.args) {
      if (std::isnan(a)) continue;
      os << (first ? "" : ", ") << a;
      first = false;
    }
    if (!st.of.empty()) os << (first ? "" : ", ") << st.of;
    os << ")";
    out += os.str();
  }
  return out;
}

py::tuple shapeTuple(const std::vector<int64_t>& dims) { return py::tuple(py::cast(dims)); }

// Flat per-step buffers (slot at B * offset) <-> [T, B, dims...] arrays.
template <class T>
void scatterSteps(const T* src, const ir::Slot& s, int64_t steps, int64_t B,
                  std::vector<std::vector<T>>& dst) {
  for (int64_t t = 0; t < steps; ++t)
    std::memcpy(dst[static_cast<size_t>(t)].data() + B * s.offset, src + t * B * s.size,
                sizeof(T) * static_cast<size_t>(B * s.size));
}

template <class T>
py::array_t<T> gatherSteps(const std::vector<std::vector<T>>& src, const ir::Slot& s,
                           int64_t steps, int64_t B) {
  py::array_t<T> a = newArray<T>(withLeading({steps, B}, s));
  T* out = a.mutable_data();
  for (int64_t t = 0; t < steps; ++t)
    std::memcpy(out + t * B * s.size, src[static_cast<size_t>(t)].data() + B * s.offset,
                sizeof(T) * static_cast<size_t>(B * s.size));
  return a;
}

template <class T>
py::array_t<T> sliceArray(const std::vector<T>& buf, int64_t offset, const Shape& shape) {
  py::array_t<T> a = newArray<T>(shape);
  std::memcpy(a.mutable_data(), buf.data() + offset, sizeof(T) * static_cast<size_t>(a.size()));
  return a;
}

py::handle item(py::handle d, const std::string& key) {
  if (d.is_none()) return py::handle();
  PyObject* v = PyDict_GetItemString(d.ptr(), key.c_str());
  return py::handle(v);
}

}  // namespace

// "dims n = 64, n_in = 1" (the sizes a memory error names).
std::string dimsText(const std::map<std::string, int64_t>& dims) {
  std::string s;
  for (const auto& [name, v] : dims) s += (s.empty() ? "dims " : ", ") + name + " = " + std::to_string(v);
  return s.empty() ? "dims" : s;
}

std::shared_ptr<Cell> Cell::compile(const std::string& path, const Overrides& overrides,
                                    const std::string& dtype, const std::optional<std::string>& source) {
  if (dtype != "float32" && dtype != "float64")
    throw py::value_error("dtype '" + dtype + "': it must be float32 or float64");
  std::string err;
  SourceFile file = source ? SourceFile(path, *source) : SourceFile::load(path, &err);
  if (!err.empty()) {
    PyErr_SetString(PyExc_FileNotFoundError, (path + ": " + err).c_str());
    throw py::error_already_set();
  }
  auto src = std::make_shared<CellSource>();
  src->path = path;
  src->text = file.text();
  src->overrides = overrides;
  std::optional<Program> prog;
  try {
    prog = loadProgram(file, overrides);
  } catch (const CellSourceError& e) {
    throw CompileError(e.what());
  }
  src->name = prog->ast.name;
  for (const Symbol* s : prog->ofKind(SymKind::Dim)) src->dims[s->name] = s->dimValue;
  src->ir = lower(*prog);
  auto cell = std::make_shared<Cell>();
  cell->src_ = std::move(src);
  cell->dtype_ = dtype;
  py::gil_scoped_release release;  // JIT compilation takes tens of milliseconds
  if (dtype == "float32") cell->f32_ = compileCell<float>(cell->src_->ir);
  else cell->f64_ = compileCell<double>(cell->src_->ir);
  return cell;
}

std::shared_ptr<Cell> Cell::astype(const std::string& dtype) {
  if (dtype == dtype_) return nullptr;  // the caller keeps itself
  if (dtype != "float32" && dtype != "float64")
    throw py::value_error("dtype '" + dtype + "': it must be float32 or float64");
  if (!other_) {
    auto c = std::make_shared<Cell>();
    c->src_ = src_;
    c->dtype_ = dtype;
    py::gil_scoped_release release;
    if (dtype == "float32") c->f32_ = compileCell<float>(src_->ir);
    else c->f64_ = compileCell<double>(src_->ir);
    other_ = c;
  }
  return other_;
}

Cell& Cell::trainingCell() {
  if (f32_) return *this;
  return *astype("float32");  // kept in other_
}

py::dict Cell::layoutDict() const {
  const ir::Layout& L = layout();
  auto slots = [&](const std::vector<ir::Slot>& v, ir::Role role) {
    py::list out;
    for (const ir::Slot& s : v) {
      py::dict d;
      d["name"] = s.name;
      d["shape"] = shapeTuple(s.shape.dims);
      if (role == ir::Role::Param) d["init"] = initText(s);
      if (role == ir::Role::State)
        d["init"] = s.initParam >= 0 ? py::object(py::str(L.params.at(s.initParam).name))
                                     : py::object(py::float_(s.initValue));
      out.append(d);
    }
    return out;
  };
  py::dict d;
  d["params"] = slots(L.params, ir::Role::Param);
  d["states"] = slots(L.states, ir::Role::State);
  d["inputs"] = slots(L.inputs, ir::Role::Input);
  d["noises"] = slots(L.noises, ir::Role::Noise);
  d["outputs"] = slots(L.outputs, ir::Role::Output);
  return d;
}

py::dict Cell::initParams(uint64_t seed) const {
  // The trainer's own stream for this seed: cellc.train(seed=s) starts from these values.
  runtime::RandomStreams streams(seed);
  std::vector<double> p;
  try {
    runtime::initParams(src_->ir, p, streams[runtime::Stream::Init]);
  } catch (const std::runtime_error& e) {
    throw py::value_error(e.what());
  }
  return isDouble() ? paramDict<double>(p) : paramDict<float>(p);
}

template <class T>
std::vector<T> Cell::flatParams(py::handle params) const {
  const ir::Layout& L = layout();
  if (!py::isinstance<py::dict>(params))
    throw py::value_error("params must be a dict name -> array (as init_params returns)");
  checkNames(params, L.params, "param");
  std::vector<T> flat(static_cast<size_t>(L.paramSize));
  std::string missing;
  for (const ir::Slot& s : L.params) {
    py::handle v = item(params, s.name);
    if (!v) {
      missing += (missing.empty() ? "" : ", ") + s.name + " " + shapeStr(s.shape.dims);
      continue;
    }
    auto a = shapedArray<T>(v, "param " + s.name, s.shape.dims, shapeStr(s.shape.dims));
    std::memcpy(flat.data() + s.offset, a.data(), sizeof(T) * static_cast<size_t>(s.size));
  }
  if (!missing.empty()) throw py::value_error("params: missing " + missing);
  return flat;
}

template <class T, class V>
py::dict Cell::paramDict(const std::vector<V>& flat) const {
  py::dict d;
  for (const ir::Slot& s : layout().params) {
    py::array_t<T> a = newArray<T>(s.shape.dims);
    for (int64_t i = 0; i < s.size; ++i)
      a.mutable_data()[i] = static_cast<T>(flat[static_cast<size_t>(s.offset + i)]);
    d[py::str(s.name)] = a;
  }
  return d;
}

py::tuple Cell::run(py::handle params, py::handle inputs, py::handle state0, py::handle noise,
                    bool keep) {
  if (isDouble()) return runT<double>(*f64_, params, inputs, state0, noise, keep);
  return runT<float>(*f32_, params, inputs, state0, noise, keep);
}

template <class T>
py::tuple Cell::runT(StepKernel<T>& k, py::handle params, py::handle inputs, py::handle state0,
                     py::handle noise, bool keep) {
  const ir::Layout& L = layout();
  checkNames(inputs, L.inputs, "input");
  checkNames(state0, L.states, "state");
  checkNames(noise, L.noises, "noise");

  // T and B from the first input (or the first noise array when the cell has no inputs).
  std::string missing;
  for (const ir::Slot& s : L.inputs)
    if (!item(inputs, s.name))
      missing += (missing.empty() ? "" : ", ") + s.name + " " + needStr({"T", "B"}, {}, s);
  if (!missing.empty()) throw py::value_error("missing input " + missing);
  const ir::Slot* ref = nullptr;
  std::string refWhat;
  if (!L.inputs.empty()) ref = &L.inputs[0], refWhat = "input ";
  else
    for (const ir::Slot& s : L.noises)
      if (item(noise, s.name)) {
        ref = &s, refWhat = "noise ";
        break;
      }
  if (!ref)
    throw py::value_error("cannot tell the number of steps T and the batch B: the cell has no "
                          "inputs; pass noise arrays [T, B, ...]");
  py::handle refObj = item(L.inputs.empty() ? noise : inputs, ref->name);
  auto refArr = floatArray<T>(refObj, refWhat + ref->name);
  const int64_t rank = static_cast<int64_t>(ref->shape.dims.size());
  if (refArr.ndim() != rank + 2 ||
      !std::equal(ref->shape.dims.begin(), ref->shape.dims.end(), refArr.shape() + 2)) {
    Shape got(refArr.shape(), refArr.shape() + refArr.ndim());
    std::string need = "(T, B";
    for (int64_t d : ref->shape.dims) need += ", " + std::to_string(d);
    throw py::value_error(refWhat + ref->name + " has shape " + shapeStr(got) + " but needs " +
                          need + ")");
  }
  const int64_t steps = refArr.shape(0), B = refArr.shape(1);
  if (steps < 1 || B < 1)
    throw py::value_error(refWhat + ref->name + " has shape " +
                          shapeStr(Shape(refArr.shape(), refArr.shape() + refArr.ndim())) +
                          ": T and B must be at least 1");
  const std::string TB = " (T = " + std::to_string(steps) + " and B = " + std::to_string(B) +
                         " come from " + refWhat + ref->name + ")";

  // The buffers must fit before any is made (a MemoryError naming the bytes and the sizes).
  runtime::requireMemory(runtime::unrollMemory(k, steps, B, keep), keep ? "unroll with a tape" : "unroll",
                         "T = " + std::to_string(steps) + " and B = " + std::to_string(B) + " (from " +
                             refWhat + ref->name + ") and the cell's " + dimsText(src_->dims));
  auto data = std::make_shared<TapeData<T>>();
  runtime::Sequence<T>& seq = data->seq;
  seq.batch = B;
  seq.params = flatParams<T>(params);
  seq.initialState.assign(static_cast<size_t>(L.stateSize * B), T(0));
  for (const ir::Slot& s : L.states) {
    T* dst = seq.initialState.data() + B * s.offset;
    py::handle v = item(state0, s.name);
    data->stateGiven.push_back(static_cast<bool>(v));
    if (v) {
      auto a = shapedArray<T>(v, "state0 " + s.name, withLeading({B}, s),
                              needStr({"B"}, {B}, s) + TB);
      std::memcpy(dst, a.data(), sizeof(T) * static_cast<size_t>(B * s.size));
    } else {
      L.fillDeclaredState(s, seq.params.data(), B, dst);
    }
  }
  seq.inputs.assign(static_cast<size_t>(steps),
                    std::vector<T>(static_cast<size_t>(L.inputSize * B)));
  for (const ir::Slot& s : L.inputs) {
    auto a = shapedArray<T>(item(inputs, s.name), "input " + s.name, withLeading({steps, B}, s),
                            needStr({"T", "B"}, {steps, B}, s) + TB);
    scatterSteps(a.data(), s, steps, B, seq.inputs);
  }
  bool anyNoise = false;
  for (const ir::Slot& s : L.noises) anyNoise = anyNoise || item(noise, s.name);
  if (anyNoise) {
    seq.noise.assign(static_cast<size_t>(steps), L.defaultNoise<T>(B));  // 1 for dropout masks
    for (const ir::Slot& s : L.noises)
      if (py::handle v = item(noise, s.name)) {
        auto a = shapedArray<T>(v, "noise " + s.name, withLeading({steps, B}, s),
                                needStr({"T", "B"}, {steps, B}, s) + TB);
        scatterSteps(a.data(), s, steps, B, seq.noise);
      }
  }

  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    data->traj = runtime::forwardSequence(k, seq);
  }

  py::dict outputs, finals;
  for (const ir::Slot& s : L.outputs)
    outputs[py::str(s.name)] = gatherSteps(data->traj.outputs, s, steps, B);
  for (const ir::Slot& s : L.states)
    finals[py::str(s.name)] = sliceArray(data->traj.finalState(), B * s.offset, withLeading({B}, s));
  py::object tape = py::none();
  if (keep) {
    auto t = std::make_shared<Tape>();
    t->src = src_;
    t->dtype = dtype_;
    t->steps = steps;
    t->batch = B;
    if constexpr (std::is_same_v<T, float>) t->f32 = data;
    else t->f64 = data;
    tape = py::cast(t);
  }
  return py::make_tuple(outputs, finals, tape);
}

py::dict Cell::vjp(py::handle tape, py::handle dOutputs, py::handle dFinal) {
  if (isDouble()) return vjpT<double>(*f64_, tape, dOutputs, dFinal);
  return vjpT<float>(*f32_, tape, dOutputs, dFinal);
}

template <class T>
py::dict Cell::vjpT(StepKernel<T>& k, py::handle tapeObj, py::handle dOutputs, py::handle dFinal) {
  const ir::Layout& L = layout();
  if (tapeObj.is_none() || !py::isinstance<Tape>(tapeObj))
    throw py::value_error("tape: needs the tape of a forward run (unroll_with_tape)");
  auto tape = tapeObj.cast<std::shared_ptr<Tape>>();
  if (tape->src != src_ || tape->dtype != dtype_)
    throw py::value_error("this tape was made by another cell or dtype");
  std::shared_ptr<TapeData<T>> data;
  if constexpr (std::is_same_v<T, float>) data = tape->f32;
  else data = tape->f64;
  checkNames(dOutputs, L.outputs, "output");
  checkNames(dFinal, L.states, "state");
  const int64_t steps = tape->steps, B = tape->batch;
  const std::string TB = " (T = " + std::to_string(steps) + " and B = " + std::to_string(B) +
                         " come from the forward's inputs)";

  std::vector<std::vector<T>> dOut(static_cast<size_t>(steps),
                                   std::vector<T>(static_cast<size_t>(L.outputSize * B), T(0)));
  for (const ir::Slot& s : L.outputs)
    if (py::handle v = item(dOutputs, s.name)) {
      auto a = shapedArray<T>(v, "d_" + s.name, withLeading({steps, B}, s),
                              needStr({"T", "B"}, {steps, B}, s) + TB);
      scatterSteps(a.data(), s, steps, B, dOut);
    }
  std::vector<T> dFin(static_cast<size_t>(L.stateSize * B), T(0));
  for (const ir::Slot& s : L.states)
    if (py::handle v = item(dFinal, s.name)) {
      auto a = shapedArray<T>(v, "d_final " + s.name, withLeading({B}, s),
                              needStr({"B"}, {B}, s) + TB);
      std::memcpy(dFin.data() + B * s.offset, a.data(), sizeof(T) * static_cast<size_t>(B * s.size));
    }

  runtime::SequenceGradients<T> g;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    g = runtime::backwardSequence(k, data->seq, data->traj, dOut, dFin);
  }
  // A param a state starts from gets that state's gradient, summed over the batch (as `cellc
  // unroll` does): it is then the whole gradient with respect to the param.
  std::vector<double> extra(static_cast<size_t>(L.paramSize), 0.0);
  for (size_t i = 0; i < L.states.size(); ++i) {
    const ir::Slot& s = L.states[i];
    if (s.initParam < 0 || data->stateGiven[i]) continue;
    const ir::Slot& p = L.params.at(static_cast<size_t>(s.initParam));
    const T* dInit = g.dInitialState.data() + B * s.offset;
    for (int64_t j = 0; j < s.size; ++j)
      for (int64_t b = 0; b < B; ++b)
        extra[static_cast<size_t>(p.offset + j)] += static_cast<double>(dInit[b * s.size + j]);
  }
  for (size_t i = 0; i < extra.size(); ++i)
    g.dParams[i] = static_cast<T>(static_cast<double>(g.dParams[i]) + extra[i]);

  py::dict grads;
  for (const ir::Slot& s : L.params)
    grads[py::str(s.name)] = sliceArray(g.dParams, s.offset, s.shape.dims);
  for (const ir::Slot& s : L.inputs)
    grads[py::str(s.name)] = gatherSteps(g.dInputs, s, steps, B);
  for (const ir::Slot& s : L.states)
    grads[py::str(s.name)] = sliceArray(g.dInitialState, B * s.offset, withLeading({B}, s));
  return grads;
}

template std::vector<float> Cell::flatParams<float>(py::handle) const;
template std::vector<double> Cell::flatParams<double>(py::handle) const;
template py::dict Cell::paramDict<float, double>(const std::vector<double>&) const;
template py::dict Cell::paramDict<double, double>(const std::vector<double>&) const;

void bindCell(py::module_& m) {
  py::register_exception<CompileError>(m, "CompileError", PyExc_ValueError);
  py::class_<Tape, std::shared_ptr<Tape>>(m, "Tape",
                                          "What a forward run keeps for its backward (opaque).")
      .def_property_readonly("steps", [](const Tape& t) { return t.steps; })
      .def_property_readonly("batch", [](const Tape& t) { return t.batch; });
  py::class_<Cell, std::shared_ptr<Cell>>(m, "Cell")
      .def_static("compile", &Cell::compile, py::arg("path"), py::arg("overrides"),
                  py::arg("dtype"), py::arg("source") = std::nullopt)
      .def("astype",
           [](const std::shared_ptr<Cell>& self, const std::string& dtype) {
             std::shared_ptr<Cell> c = self->astype(dtype);
             return c ? c : self;
           })
      .def_property_readonly("dtype", &Cell::dtype)
      .def_property_readonly("name", [](const Cell& c) { return c.source().name; })
      .def_property_readonly("path", [](const Cell& c) { return c.source().path; })
      .def_property_readonly("source", [](const Cell& c) { return c.source().text; })
      .def_property_readonly("dims", [](const Cell& c) { return c.source().dims; })
      .def_property_readonly("overrides", [](const Cell& c) { return c.source().overrides; })
      .def("layout", &Cell::layoutDict)
      .def("init_params", &Cell::initParams, py::arg("seed"))
      .def("run", &Cell::run, py::arg("params"), py::arg("inputs"), py::arg("state0"),
           py::arg("noise"), py::arg("keep"))
      .def("vjp", &Cell::vjp, py::arg("tape"), py::arg("d_outputs"), py::arg("d_final"));
}

}  // namespace cellc::python
