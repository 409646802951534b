// cellc unroll checks its buffers against the machine's memory (train/Memory.h) once T and B are
// known from the first input, before it reads the other arrays or writes anything.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/npy.h"
#include "driver/Compile.h"
#include "sema/Program.h"
#include "unroll/UnrollFiles.h"

using namespace cellc;
using namespace cellc::runtime;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A cell whose state is n wide but whose one param is a scalar: any size of state, tape and
// output with a small params file.
const char* kWide = R"(cell wide {
  dim n = 4
  input x[1]
  state h[n] = 0
  param a ~ fill(0.5)
  h' = a * h + x
  output y = h'
}
)";

StepIR lowerText(const std::string& text, const Overrides& o) {
  SourceFile f("wide.cell", text);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, o, d);
  REQUIRE(p);
  return lower(*p);
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("cellc-mem-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST_CASE("memory: cellc unroll beyond any machine's memory fails before it reads the rest",
          "[memory]") {
  StepIR ir = lowerText(kWide, {{"n", 1000000}});
  auto k = compileCell<double>(ir);
  fs::path in = scratch("in"), out = scratch("out") / "results";
  std::vector<double> x(1000 * 1000, 0.25);
  npy::write((in / "x.npy").string(), {1000, 1000, 1}, x.data());
  std::ofstream(in / "a.npy") << "not read";  // would be an error if it were read first
  UnrollOptions o;
  o.loss = LossKind::None;
  // states and outputs: 1000 x 1000 x 10^6 doubles each, 8 TB.
  CHECK_THROWS_WITH(unrollFiles(*k, k->layout(), o, in.string(), out.string()),
                    Contains("the unroll needs about ") && Contains(" TB (") &&
                        Contains("T = 1000 and B = 1000 (from " + (in / "x.npy").string()) &&
                        Contains("states (T + 1 x B x states) 8.0 TB"));
  CHECK_FALSE(fs::exists(out));
}
