// A std::ostream that writes to Python's sys.stderr (so that logs show in notebooks), taking the
// GIL for each line; or nowhere, when quiet.
#pragma once

#include <pybind11/pybind11.h>

#include <ostream>
#include <streambuf>
#include <string>

namespace cellc::python {

namespace py = pybind11;

class PyStderrBuf : public std::streambuf {
 public:
  explicit PyStderrBuf(bool quiet) : quiet_(quiet) {}
  ~PyStderrBuf() override { flushLine(); }

 protected:
  int_type overflow(int_type c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    line_ += static_cast<char>(c);
    if (c == '\n') flushLine();
    return c;
  }
  int sync() override {
    flushLine();
    return 0;
  }

 private:
  void flushLine() {
    if (line_.empty()) return;
    if (!quiet_) {
      py::gil_scoped_acquire gil;
      try {
        py::object err = py::module_::import("sys").attr("stderr");
        err.attr("write")(line_);
        err.attr("flush")();
      } catch (const py::error_already_set&) {
        // A closed or missing sys.stderr: the log is lost, the run goes on.
      }
    }
    line_.clear();
  }

  bool quiet_;
  std::string line_;
};

class PyLog : public std::ostream {
 public:
  explicit PyLog(bool quiet) : std::ostream(nullptr), buf_(quiet) { rdbuf(&buf_); }

 private:
  PyStderrBuf buf_;
};

}  // namespace cellc::python
