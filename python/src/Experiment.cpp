// Runs an experiment as `cellc run` does and returns the run folder (the Python side reads its
// summary.json). Ctrl-C: while it runs, a SIGINT handler sets Trainer::interruptFlag() (the
// trainer saves its checkpoint and stops) and passes the signal on to Python's own handler, so the
// call then raises KeyboardInterrupt.
#include "Experiment.h"

#include <pybind11/stl.h>

#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "PyLog.h"
#include "run/Runner.h"
#include "train/Memory.h"
#include "experiment/Spec.h"
#include "train/Trainer.h"

namespace cellc::python {

namespace {

struct sigaction previousAction;

void onSigint(int sig) {
  cellc::runtime::Trainer::interruptFlag() = true;
  if (!(previousAction.sa_flags & SA_SIGINFO) && previousAction.sa_handler != SIG_DFL &&
      previousAction.sa_handler != SIG_IGN)
    previousAction.sa_handler(sig);  // Python's handler: it only records the signal
}

// Installs onSigint for its lifetime, in the main thread only (where Python handles signals).
class ScopedSigint {
 public:
  ScopedSigint() {
    py::object threading = py::module_::import("threading");
    if (!threading.attr("current_thread")().is(threading.attr("main_thread")())) return;
    struct sigaction sa {};
    sa.sa_handler = onSigint;
    sigemptyset(&sa.sa_mask);
    installed_ = sigaction(SIGINT, &sa, &previousAction) == 0;
  }
  ~ScopedSigint() {
    if (installed_) sigaction(SIGINT, &previousAction, nullptr);
  }

 private:
  bool installed_ = false;
};

std::string runFile(const std::string& path, const std::string& profile,
                    const std::vector<std::string>& sets, const std::string& out, bool plot,
                    bool verbose) {
  runtime::Experiment e;
  try {
    e = runtime::loadExperiment(path, sets, profile);
  } catch (const runtime::ExperimentError& err) {
    throw py::value_error(err.what());
  }
  runtime::RunOptions opt;
  opt.outDir = out;
  opt.plot = plot;
  PyLog log(!verbose);
  std::string folder;
  std::string error;
  std::optional<runtime::OutOfMemoryError> memory;  // raised as cellc.OutOfMemoryError
  {
    ScopedSigint sigint;
    runtime::Trainer::interruptFlag() = false;
    py::gil_scoped_release release;
    try {
      folder = runtime::runExperiment(e, opt, log);
    } catch (const runtime::ExperimentOutOfMemory& err) {
      memory.emplace(err.what(), err.needed, err.available);
    } catch (const runtime::ExperimentError& err) {
      error = err.what();
    }
  }
  log.flush();
  if (memory) throw *memory;
  if (runtime::Trainer::interruptFlag()) {
    runtime::Trainer::interruptFlag() = false;
    PyErr_CheckSignals();  // consumes the Ctrl-C Python recorded, if any
    PyErr_Clear();
    PyErr_SetString(PyExc_KeyboardInterrupt, error.empty() ? "interrupted" : error.c_str());
    throw py::error_already_set();
  }
  if (!error.empty()) throw py::value_error(error);
  return folder;
}

}  // namespace

void bindExperiment(py::module_& m) {
  m.def("run_experiment", &runFile, py::arg("path"), py::arg("profile"), py::arg("sets"),
        py::arg("out"), py::arg("plot"), py::arg("verbose"));
}

}  // namespace cellc::python
