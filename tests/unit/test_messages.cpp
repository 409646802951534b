// Messages that say where and why (issue 8, item 9): a file that cannot be read names the path as
// given and as resolved (absolute) and the OS reason, and a directory, FIFO or device is refused
// without being read; dims print as integers; a huge literal is quoted by its start only.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "diag/Diagnostics.h"
#include "io/npy.h"
#include "sema/Program.h"
#include "train/Checkpoint.h"

using namespace cellc;
using Catch::Contains;

namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_messages_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string loadError(const std::string& path) {
  std::string err;
  SourceFile f = SourceFile::load(path, &err);
  CHECK(f.text().empty());
  return err;
}

}  // namespace

TEST_CASE("messages: a missing .cell file names the resolved path and the OS error", "[messages]") {
  TempDir tmp;
  fs::current_path(tmp.dir);
  std::string err = loadError("no_such/x.cell");
  CHECK_THAT(err, Contains("'no_such/x.cell'") && Contains((tmp.dir / "no_such/x.cell").string()) &&
                      Contains("No such file or directory"));
}

TEST_CASE("messages: a .cell path that is a directory, a FIFO or a device is refused unread",
          "[messages]") {
  TempDir tmp;
  CHECK_THAT(loadError(tmp.dir.string()), Contains("is a directory"));
  const std::string fifo = (tmp.dir / "pipe.cell").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THAT(loadError(fifo), Contains("FIFO"));  // without waiting for a writer
  CHECK_THAT(loadError("/dev/zero"), Contains("character device"));  // without reading forever
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("messages: a .cell file beyond the size cap is refused", "[messages]") {
  // One limit, kMaxSourceBytes (1 MiB), for a file and a string alike: E102 where it falls.
  TempDir tmp;
  const fs::path big = tmp.dir / "big.cell";
  std::ofstream(big).close();
  fs::resize_file(big, int64_t{1} << 30);  // sparse: no disk used; never read whole
  std::string err;
  SourceFile f = SourceFile::load(big.string(), &err);
  CHECK(err.empty());
  CHECK(f.text().size() == kMaxSourceBytes + 1);
  auto diagnose = [](const SourceFile& file) {
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {}, diags));
    REQUIRE(diags.all().size() == 1);
    return diags.all()[0];
  };
  Diagnostic d = diagnose(f);  // one line of NUL bytes: the limit falls at its column 1 MiB + 1
  CHECK(d.code == Code::E102);
  CHECK(d.loc == SourceLoc{1, static_cast<int>(kMaxSourceBytes) + 1});
  CHECK_THAT(renderDiagnostic(d, f), Contains(big.string() + ":1:1048577: error[E102]: the source is larger "
                                              "than 1 MiB (1048576 bytes), the limit of a .cell file"));
  // A text given as a string (Python's compile(source=...)): the same code, at the line and column
  // where the limit falls.
  std::string text = "cell t {\n  dim n = 2\n  state h[n] = 0\n  h' = h\n  output y = h'\n}\n";
  const std::string pad = "# padding padding padding padding padding padding padding padding\n";
  while (text.size() <= kMaxSourceBytes) text += pad;
  const size_t lineStart = text.rfind('\n', kMaxSourceBytes - 1) + 1;
  d = diagnose(SourceFile("s.cell", text));
  CHECK(d.code == Code::E102);
  CHECK(d.loc.line == 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(kMaxSourceBytes), '\n')));
  CHECK(d.loc.col == static_cast<int>(kMaxSourceBytes - lineStart) + 1);
  // At the limit exactly: no E102.
  text.resize(kMaxSourceBytes);
  text.back() = '\n';
  DiagnosticSink ok;
  loadCell(SourceFile("s.cell", text), {}, ok);
  for (const Diagnostic& x : ok.all()) CHECK(x.code != Code::E102);
}

TEST_CASE("messages: a missing .npy input names the resolved path and the OS error", "[messages]") {
  TempDir tmp;
  fs::current_path(tmp.dir);
  CHECK_THROWS_WITH(npy::read("in/x.npy"), Contains("in/x.npy") &&
                                               Contains((tmp.dir / "in/x.npy").string()) &&
                                               Contains("No such file or directory"));
}

TEST_CASE("messages: dims in a checkpoint mismatch print as integers", "[messages]") {
  runtime::Checkpoint c;
  c.cellSource = "cell c {}";
  c.overrides = {{"n", 10}};
  CHECK_THROWS_WITH(runtime::checkCompatible(c, c.cellSource, {{"n", 100000}}, 0),
                    Contains("-D n: checkpoint 10, now 100000"));
  CHECK_THROWS_WITH(runtime::checkCompatible(c, c.cellSource, {{"n", 0.25}}, 0),
                    Contains("now 0.25"));
}

TEST_CASE("messages: a huge literal is not echoed in full", "[messages]") {
  const std::string digits(100000, '9');
  SourceFile file("big.cell", "cell c {\n  input x[2]\n  state h[2] = 0\n  h' = h * " + digits +
                                  "\n  output y = h'\n}\n");
  DiagnosticSink diags;
  CHECK_FALSE(loadCell(file, {}, diags));
  REQUIRE(!diags.all().empty());
  const std::string msg = diags.all()[0].message;
  CHECK(msg.size() < 200);
  CHECK_THAT(msg, Contains("999...") && Contains("out of range"));
  // A stray long name in a syntax error is cut the same way.
  DiagnosticSink diags2;
  SourceFile file2("name.cell", "cell c {\n  input x[2]\n  state h[2] = 0\n  h' = h " +
                                    std::string(100000, 'a') + "\n  output y = h'\n}\n");
  CHECK_FALSE(loadCell(file2, {}, diags2));
  REQUIRE(!diags2.all().empty());
  CHECK(diags2.all()[0].message.size() < 300);
}
