// `cellc unroll` writes all its outputs or none (runtime/io/StagedFiles.h): a write that fails
// midway (a full disk, simulated by RLIMIT_FSIZE) leaves the output folder exactly as it was, and an
// output that would replace one of the input files (the same path, a symlink, a hard link) is
// refused before anything is written.
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "driver/Compile.h"
#include "io/npy.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"
#include "unroll/UnrollFiles.h"

using namespace cellc;
using Catch::Contains;
using runtime::LossKind;

namespace {

namespace fs = std::filesystem;

constexpr int64_t kT = 7, kB = 2;

struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_unroll_atomic_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// Small files first (y, final_h, loss, grad_w), then one large gradient (grad_big, 64 values), so a
// file size limit between the two lets the early files succeed and the late one fail.
const char* kCell = R"(cell staged {
  dim m = 64
  input x[1]
  state h[1] = 0
  param w[1] ~ fill(0.5)
  param big[m] ~ zeros()
  h' = tanh(w * h + x + sum(big))
  output y = h'
}
)";

StepIR lowerText(const std::string& text) {
  SourceFile f("staged.cell", text);
  DiagnosticSink d;
  std::optional<Program> prog = loadCell(f, {}, d);
  REQUIRE(prog);
  return lower(*prog);
}

void save(const fs::path& p, const std::vector<int64_t>& shape, double value) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> v(static_cast<size_t>(n), value);
  npy::write(p.string(), shape, v.data());
}

// An input folder for kCell with adjoints, so every gradient is written.
void writeInputs(const fs::path& in) {
  save(in / "w.npy", {1}, 0.5);
  save(in / "big.npy", {64}, 0.01);
  save(in / "x.npy", {kT, kB, 1}, 0.2);
  save(in / "d_y.npy", {kT, kB, 1}, 1.0);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Name -> bytes of every entry in a folder (directories as "<dir>").
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> s;
  for (const auto& e : fs::directory_iterator(dir))
    s[e.path().filename().string()] = e.is_directory() ? "<dir>" : slurp(e.path());
  return s;
}

struct FileSizeLimit {
  rlimit old{};
  void (*oldHandler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit lim = old;
    lim.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, oldHandler);
  }
};

runtime::UnrollSummary unroll(StepKernel<double>& k, const fs::path& in, const fs::path& out) {
  runtime::UnrollOptions o;
  o.loss = LossKind::Adjoints;
  return runtime::unrollFiles(k, k.layout(), o, in.string(), out.string());
}

}  // namespace

TEST_CASE("unroll: a full disk midway leaves the output folder exactly as it was", "[unroll][atomic]") {
  StepIR ir = lowerText(kCell);
  auto jit = compileCell<double>(ir);
  TempDir tmp;
  const fs::path in = tmp.dir / "in", out = tmp.dir / "out";
  fs::create_directories(in);
  writeInputs(in);
  // A previous run's results, and a file of the user's.
  runtime::UnrollSummary first = unroll(*jit, in, out);
  REQUIRE(first.written.size() == 7);  // y, final_h, loss, grad_w, grad_big, grad_x, grad_init_h
  std::ofstream(out / "notes.txt") << "mine";
  save(in / "x.npy", {kT, kB, 1}, -0.7);  // new data: every output would change
  const auto before = snapshot(out);

  {
    FileSizeLimit limit(400);  // y.npy (240 bytes) fits, grad_big.npy (640 bytes) does not
    REQUIRE_THROWS_WITH(unroll(*jit, in, out), Contains("grad_big.npy") && Contains("File too large"));
  }
  CHECK(snapshot(out) == before);

  // Without the limit the same run succeeds and replaces the files.
  unroll(*jit, in, out);
  CHECK(snapshot(out) != before);
  CHECK(slurp(out / "notes.txt") == "mine");
}

TEST_CASE("unroll: a failed run into a new folder leaves no folder behind", "[unroll][atomic]") {
  StepIR ir = lowerText(kCell);
  auto jit = compileCell<double>(ir);
  TempDir tmp;
  const fs::path in = tmp.dir / "in";
  fs::create_directories(in);
  writeInputs(in);
  {
    FileSizeLimit limit(400);
    REQUIRE_THROWS(unroll(*jit, in, tmp.dir / "new" / "out"));
  }
  CHECK_FALSE(fs::exists(tmp.dir / "new"));
}

TEST_CASE("unroll: an output never replaces one of its own input files", "[unroll][atomic]") {
  StepIR ir = lowerText(kCell);
  auto jit = compileCell<double>(ir);
  TempDir tmp;
  const fs::path in = tmp.dir / "in", out = tmp.dir / "out";
  fs::create_directories(in);
  fs::create_directories(out);
  writeInputs(in);
  const auto inputs = snapshot(in);

  SECTION("through a symlink") {
    fs::create_symlink(in / "x.npy", out / "y.npy");
    REQUIRE_THROWS_WITH(unroll(*jit, in, out),
                        Contains((out / "y.npy").string()) && Contains("would overwrite the input file") &&
                            Contains((in / "x.npy").string()));
    CHECK(fs::is_symlink(out / "y.npy"));
  }
  SECTION("through a hard link") {
    fs::create_hard_link(in / "w.npy", out / "grad_w.npy");
    REQUIRE_THROWS_WITH(unroll(*jit, in, out), Contains("would overwrite the input file") &&
                                                  Contains((in / "w.npy").string()));
    CHECK(fs::hard_link_count(in / "w.npy") == 2);
  }
  SECTION("the same folder, where an input has an output's name") {
    // A cell whose output is named like one of its inputs' files: `d_y` is read as an input
    // (the adjoint of y) and would be written as output d_y.
    const char* clash = R"(cell clash {
  input x[1]
  state h[1] = 0
  param w[1] ~ fill(0.5)
  h' = tanh(w * h + x)
  output y = h'
  output d_y = 2 * h'
}
)";
    StepIR ir2 = lowerText(clash);
    auto jit2 = compileCell<double>(ir2);
    runtime::UnrollOptions o;
    o.loss = LossKind::Adjoints;
    REQUIRE_THROWS_WITH(runtime::unrollFiles(*jit2, jit2->layout(), o, in.string(), in.string()),
                        Contains("would overwrite the input file") &&
                            Contains((in / "d_y.npy").string()));
  }
  CHECK(snapshot(in) == inputs);
}

TEST_CASE("unroll: the cellc binary on a full disk exits 1 and keeps the old outputs", "[unroll][atomic]") {
  TempDir tmp;
  const fs::path in = tmp.dir / "in", out = tmp.dir / "out", cell = tmp.dir / "staged.cell";
  fs::create_directories(in);
  writeInputs(in);
  std::ofstream(cell) << kCell;
  auto cellc = [&](const std::string& limit) {
    // `trap '' XFSZ` is inherited through exec: the write fails with EFBIG instead of killing cellc.
    std::string cmd = "sh -c \"trap '' XFSZ; " + limit + " exec '" + CELLC_BINARY + "' unroll '" +
                      cell.string() + "' '" + in.string() + "' --out '" + out.string() +
                      "' --loss adjoints\" >/dev/null 2>&1";
    int status = std::system(cmd.c_str());
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };
  REQUIRE(cellc("") == 0);
  save(in / "x.npy", {kT, kB, 1}, -0.7);
  const auto before = snapshot(out);
  CHECK(cellc("ulimit -f 1;") == 1);  // 512 bytes: y.npy fits, grad_big.npy does not
  CHECK(snapshot(out) == before);
}
