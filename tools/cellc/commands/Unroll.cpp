// `cellc unroll`: run a compiled cell over a folder of named .npy arrays and write its outputs,
// final states, loss and gradients as .npy files, to compare it with another framework. The
// work is in runtime/unroll/UnrollFiles.h; this file parses the options and prints the summary.
#include <cstdio>
#include <iostream>

#include "Cli.h"
#include "driver/Compile.h"
#include "pipeline/Lower.h"
#include "unroll/UnrollFiles.h"

namespace cellc::cli {

namespace {

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

template <class T>
runtime::UnrollSummary unrollWith(const StepIR& ir, const runtime::UnrollOptions& opts,
                                  const std::string& in, const std::string& out) {
  auto kernel = compileCell<T>(ir);
  return runtime::unrollFiles<T>(*kernel, ir.layout, opts, in, out);
}

}  // namespace

int runUnroll(const Args& a) {
  // The command line first, so that a usage error (exit 2) never waits for the compiler.
  std::string out = a.get("out", "");
  if (out.empty()) throw UsageError("--out OUTDIR is required");
  std::string precision = a.get("precision", "f64");
  if (precision != "f32" && precision != "f64") throw UsageError("--precision is f32 or f64");
  runtime::UnrollOptions opts;
  std::optional<runtime::LossKind> loss = runtime::parseLoss(a.get("loss", "auto"));
  if (!loss) throw UsageError("--loss is adjoints, mse, mse_last or none");
  opts.loss = *loss;
  opts.onWarning = [](const std::string& w) { std::cerr << "cellc unroll: warning: " << w << "\n"; };

  std::optional<Program> prog = loadOrReport(a.positional[0], a.overrides);
  if (!prog) return 1;
  StepIR ir = lower(*prog);
  const std::string& in = a.positional[1];
  runtime::UnrollSummary s;
  try {
    s = precision == "f32" ? unrollWith<float>(ir, opts, in, out)
                           : unrollWith<double>(ir, opts, in, out);
  } catch (const runtime::UnrollError& e) {
    std::cerr << "cellc unroll: error: " << e.what() << "\n";
    return 1;
  }

  std::cout << "cell " << ir.cellName << ": T = " << s.steps << ", B = " << s.batch
            << ", precision " << s.precision << ", loss " << runtime::lossName(s.loss);
  if (s.lossValue) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", *s.lossValue);
    std::cout << " = " << buf;
  }
  std::cout << "\nwrote " << s.written.size() << " files:\n";
  for (const runtime::WrittenFile& f : s.written)
    std::cout << "  " << f.path << "  " << shapeText(f.shape) << "\n";
  return 0;
}

}  // namespace cellc::cli
