// Fixtures: every file in tests/fixtures/invalid/ names the diagnostics it must produce, every cell
// in cells/ and tests/fixtures/valid/ checks clean; rendering, -D overrides and message wording.
//
// An invalid fixture starts with comment lines:
//   # expect: CODE LINE:COL     one per expected diagnostic (1-based, as cellc prints; 0:0 = no location)
//   # args: -D name=value ...   overrides passed to loadCell (optional)
//   # load: relative/path       load this path instead of the fixture itself (optional; a load failure
//                               is reported as E103 without a location, as the cellc CLI does)
// The test requires every expected diagnostic. With an expected error, the cell must be rejected and
// no other error may be reported (warnings may). With only expected warnings, the cell must be
// accepted with exactly those diagnostics.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "diag/Diagnostics.h"
#include "sema/Program.h"
#include "syntax/Parse.h"

namespace fs = std::filesystem;
using namespace cellc;

namespace Catch {
template <>
struct StringMaker<cellc::SourceLoc> {
  static std::string convert(const cellc::SourceLoc& l) {
    return std::to_string(l.line) + ":" + std::to_string(l.col);
  }
};
template <>
struct StringMaker<cellc::Shape> {
  static std::string convert(const cellc::Shape& s) { return s.str(); }
};
}  // namespace Catch

namespace {

const fs::path kSourceDir = CELLC_SOURCE_DIR;
const fs::path kInvalidDir = kSourceDir / "tests/fixtures/invalid";

struct Expected {
  std::string code;  // "E203"
  int line = 0, col = 0;
  bool operator<(const Expected& o) const {
    return std::tie(code, line, col) < std::tie(o.code, o.line, o.col);
  }
  bool operator==(const Expected& o) const {
    return code == o.code && line == o.line && col == o.col;
  }
};

std::string str(const Expected& e) {
  return e.code + " " + std::to_string(e.line) + ":" + std::to_string(e.col);
}

struct Fixture {
  fs::path path;
  std::vector<Expected> expects;
  Overrides overrides;
  std::string load;                 // from "# load:"
  std::vector<std::string> problems;  // malformed header lines
};

std::string readBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

bool parseOverride(const std::string& text, Overrides& out) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  std::string value = text.substr(eq + 1);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (...) {
    return false;
  }
  if (used != value.size()) return false;
  out[text.substr(0, eq)] = v;
  return true;
}

// Reads the header: the comment lines at the top of the file.
Fixture readFixture(const fs::path& path) {
  Fixture f;
  f.path = path;
  std::istringstream in(readBytes(path));
  std::string line;
  while (std::getline(in, line) && !line.empty() && line[0] == '#') {
    line = trim(line);
    if (line.rfind("# expect:", 0) == 0) {
      std::istringstream ls(line.substr(9));
      Expected e;
      std::string where;
      char colon = 0;
      ls >> e.code >> where;
      std::istringstream ws(where);
      if (e.code.size() != 4 || !(ws >> e.line >> colon >> e.col) || colon != ':')
        f.problems.push_back("malformed expect line: " + line);
      else
        f.expects.push_back(e);
    } else if (line.rfind("# args:", 0) == 0) {
      std::istringstream ls(line.substr(7));
      std::string tok;
      while (ls >> tok) {
        std::string def;
        if (tok == "-D") ls >> def;
        else if (tok.rfind("-D", 0) == 0) def = tok.substr(2);
        if (def.empty() || !parseOverride(def, f.overrides))
          f.problems.push_back("malformed args line: " + line);
      }
    } else if (line.rfind("# load:", 0) == 0) {
      f.load = trim(line.substr(7));
    }
  }
  return f;
}

std::vector<fs::path> cellFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".cell") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

Expected toExpected(const Diagnostic& d) {
  return {codeInfo(d.code).name, d.loc.line, d.loc.col};
}

std::string renderAll(const DiagnosticSink& diags, const SourceFile& file) {
  std::ostringstream os;
  diags.render(os, file);
  return os.str();
}

struct Run {
  SourceFile file{"", ""};
  DiagnosticSink diags;
  std::optional<Program> prog;
};

// Loads a fixture as the CLI does: a load failure is E103 without a location.
void runFixture(const Fixture& f, Run& run) {
  fs::path target = f.load.empty() ? f.path : f.path.parent_path() / f.load;
  std::string err;
  run.file = SourceFile::load(target.string(), &err);
  if (!err.empty()) {
    run.diags.report(Code::E103, {0, 0}, err);
    return;
  }
  run.prog = loadCell(run.file, f.overrides, run.diags);
}

std::optional<Program> loadText(const std::string& text, DiagnosticSink& diags,
                                const Overrides& ov = {}, const std::string& path = "t.cell") {
  SourceFile file(path, text);
  return loadCell(file, ov, diags);
}

const Diagnostic* findCode(const DiagnosticSink& diags, Code code) {
  for (const Diagnostic& d : diags.all())
    if (d.code == code) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("invalid fixtures report exactly the expected diagnostics", "[fixtures]") {
  std::vector<fs::path> files = cellFiles(kInvalidDir);
  REQUIRE(files.size() >= allCodes().size());
  for (const fs::path& path : files) {
    DYNAMIC_SECTION(path.filename().string()) {
      Fixture f = readFixture(path);
      INFO("fixture " << path.string());
      REQUIRE(f.problems.empty());
      REQUIRE(!f.expects.empty());

      Run run;
      runFixture(f, run);
      const std::string rendered = renderAll(run.diags, run.file);
      INFO("cellc reported:\n" << rendered);

      for (const Expected& e : f.expects) {
        bool found = std::any_of(run.diags.all().begin(), run.diags.all().end(),
                                 [&](const Diagnostic& d) { return toExpected(d) == e; });
        INFO("expected " << str(e));
        REQUIRE(found);
      }

      const std::set<Expected> expected(f.expects.begin(), f.expects.end());
      const bool expectsError =
          std::any_of(f.expects.begin(), f.expects.end(), [](const Expected& e) { return e.code[0] == 'E'; });
      if (expectsError) {
        CHECK_FALSE(run.prog.has_value());
        for (const Diagnostic& d : run.diags.all()) {
          if (d.severity() != Severity::Error) continue;
          INFO("unexpected error " << str(toExpected(d)) << ": " << d.message);
          CHECK(expected.count(toExpected(d)) == 1);
        }
      } else {
        CHECK(run.prog.has_value());
        CHECK_FALSE(run.diags.hasErrors());
        for (const Diagnostic& d : run.diags.all()) {
          INFO("unexpected diagnostic " << str(toExpected(d)) << ": " << d.message);
          CHECK(expected.count(toExpected(d)) == 1);
        }
      }
    }
  }
}

TEST_CASE("every diagnostic code has a fixture named after it", "[fixtures]") {
  std::map<std::string, int> covered;  // code -> fixtures that expect it
  for (const fs::path& path : cellFiles(kInvalidDir)) {
    Fixture f = readFixture(path);
    const std::string name = path.filename().string();
    const std::string prefix = name.substr(0, name.find('_'));
    INFO("fixture " << name);
    // The file name starts with the code it is about, and that code is expected.
    bool namesExpected = std::any_of(f.expects.begin(), f.expects.end(),
                                     [&](const Expected& e) { return e.code == prefix; });
    CHECK(namesExpected);
    for (const Expected& e : f.expects) {
      ++covered[e.code];
      bool known = std::any_of(allCodes().begin(), allCodes().end(),
                               [&](const CodeInfo& c) { return e.code == c.name; });
      INFO("expect names " << e.code);
      CHECK(known);  // no fixture for a code the catalogue does not have
    }
  }
  for (const CodeInfo& c : allCodes()) {
    INFO("no fixture in tests/fixtures/invalid expects " << c.name << " (" << c.summary << ")");
    CHECK(covered[c.name] >= 1);
  }
}

TEST_CASE("cells and valid fixtures check with no errors and no warnings", "[fixtures]") {
  std::vector<fs::path> files = cellFiles(kSourceDir / "cells");
  std::vector<fs::path> valid = cellFiles(kSourceDir / "tests/fixtures/valid");
  REQUIRE(!files.empty());
  REQUIRE(!valid.empty());
  files.insert(files.end(), valid.begin(), valid.end());
  for (const fs::path& path : files) {
    DYNAMIC_SECTION(path.parent_path().filename().string() << "/" << path.filename().string()) {
      std::string err;
      SourceFile file = SourceFile::load(path.string(), &err);
      REQUIRE(err.empty());
      DiagnosticSink diags;
      std::optional<Program> prog = loadCell(file, {}, diags);
      INFO(renderAll(diags, file));
      CHECK(prog.has_value());
      CHECK(diags.all().empty());
    }
  }
}

TEST_CASE("rendered diagnostics: prefix, source line and caret", "[fixtures][render]") {
  SECTION("an error in the middle of a line") {
    const std::string text =
        "cell t {\n"
        "  dim n = 2\n"
        "  input x[n]\n"
        "  state h[n] = 0\n"
        "  h' = h + xx\n"
        "  output y = h'\n"
        "}\n";
    SourceFile file("cells/t.cell", text);
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {}, diags).has_value());
    const Diagnostic* d = findCode(diags, Code::E200);
    REQUIRE(d != nullptr);
    CHECK(d->loc == SourceLoc{5, 12});
    CHECK(renderDiagnostic(*d, file) ==
          "cells/t.cell:5:12: error[E200]: unknown name 'xx' (did you mean 'x'?)\n"
          "  5 |   h' = h + xx\n"
          "    |            ^\n");
  }
  SECTION("a two-digit line number pads the caret line; a tab in the line is kept") {
    std::string text = "cell t {\n";
    for (int i = 0; i < 8; ++i) text += "  # filler\n";
    text += "  dim n = 2; input x[n]; state h[n] = 0\n";  // line 10
    text += "\th' = h @ h\n";                             // line 11: [B, 2] @ [B, 2] -> [B]
    text += "  output y = h'\n}\n";
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {}, diags).has_value());
    const Diagnostic* d = findCode(diags, Code::E302);
    REQUIRE(d != nullptr);
    CHECK(d->loc == SourceLoc{11, 9});
    CHECK(renderDiagnostic(*d, file) ==
          "t.cell:11:9: error[E302]: h' is [B] but state h is [B, 2]\n"
          "  11 | \th' = h @ h\n"
          "     | \t       ^\n");
  }
  SECTION("a warning") {
    const std::string text =
        "cell t {\n"
        "  dim n = 2\n"
        "  input x[n]\n"
        "  state h[n] = 0\n"
        "  param b[n] ~ zeros()\n"
        "  h' = h + x\n"
        "  output y = h'\n"
        "}\n";
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    CHECK(loadCell(file, {}, diags).has_value());
    REQUIRE(diags.all().size() == 1);
    CHECK(renderDiagnostic(diags.all()[0], file) ==
          "t.cell:5:9: warning[W500]: param b is never used\n"
          "  5 |   param b[n] ~ zeros()\n"
          "    |         ^\n");
  }
  SECTION("no location: no source line") {
    const std::string text = "cell t {\n  dim n = 2\n  state h[n] = 0\n  h' = h\n  output y = h'\n}\n";
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {{"nosuch", 3}}, diags).has_value());
    const Diagnostic* d = findCode(diags, Code::E401);
    REQUIRE(d != nullptr);
    CHECK(d->loc == SourceLoc{0, 0});
    CHECK(renderDiagnostic(*d, file) ==
          "t.cell: error[E401]: -D nosuch: the cell has no dim or const named 'nosuch'\n");
  }
  SECTION("raw bytes in the quoted line are shown as '?'") {
    const std::string text = std::string("cell t {\n  dim n = 2\n  z = n\xff + 1\n}\n");
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {}, diags).has_value());
    const Diagnostic* d = findCode(diags, Code::E100);
    REQUIRE(d != nullptr);
    CHECK(renderDiagnostic(*d, file) ==
          "t.cell:3:8: error[E100]: invalid character (byte 0xFF)\n"
          "  3 |   z = n? + 1\n"
          "    |        ^\n");
  }
  SECTION("DiagnosticSink::render sorts by position") {
    const std::string text =
        "cell t {\n  dim n = 2\n  input x[n]\n  state h[n] = 0\n"
        "  z = h + x\n  h' = h + x + qq\n  output y = h' + pp\n}\n";
    SourceFile file("t.cell", text);
    DiagnosticSink diags;
    CHECK_FALSE(loadCell(file, {}, diags).has_value());
    std::string all = renderAll(diags, file);
    size_t w = all.find("[W501]"), e1 = all.find("'qq'"), e2 = all.find("'pp'");
    REQUIRE(w != std::string::npos);
    REQUIRE(e1 != std::string::npos);
    REQUIRE(e2 != std::string::npos);
    CHECK(w < e1);
    CHECK(e1 < e2);
  }
}

TEST_CASE("overrides (-D) of dims and consts", "[fixtures][overrides]") {
  auto load = [](const std::string& rel, const Overrides& ov, DiagnosticSink& diags) {
    std::string err;
    SourceFile file = SourceFile::load((kSourceDir / rel).string(), &err);
    REQUIRE(err.empty());
    return loadCell(file, ov, diags);
  };
  SECTION("-D n=128 resizes gru") {
    DiagnosticSink diags;
    std::optional<Program> prog = load("cells/gru.cell", {{"n", 128}}, diags);
    REQUIRE(prog.has_value());
    CHECK(diags.all().empty());
    REQUIRE(prog->find("h") != nullptr);
    CHECK(prog->find("h")->shape == Shape{true, {128}});
    CHECK(prog->find("h")->shape.str() == "[B, 128]");
    CHECK(prog->dim("n") == 128);
    CHECK(prog->dim("n_in") == 1);
    CHECK(prog->find("W_zh")->shape == Shape{false, {128, 128}});
    CHECK(prog->find("W_zx")->shape == Shape{false, {128, 1}});
    CHECK(prog->find("h'") == nullptr);  // a primed name is not a symbol
  }
  SECTION("without the override gru keeps n = 64") {
    DiagnosticSink diags;
    std::optional<Program> prog = load("cells/gru.cell", {}, diags);
    REQUIRE(prog.has_value());
    CHECK(prog->find("h")->shape == Shape{true, {64}});
  }
  SECTION("a dim computed from an overridden dim follows it") {
    DiagnosticSink diags;
    std::optional<Program> prog = load("cells/pbrc_split.cell", {{"k", 10}}, diags);
    REQUIRE(prog.has_value());
    CHECK(diags.all().empty());
    CHECK(prog->dim("n") == 20);
    CHECK(prog->find("hebb")->shape == Shape{true, {20, 10}});
  }
  SECTION("overriding the const alpha of dale_rnn") {
    DiagnosticSink diags;
    std::optional<Program> prog = load("cells/dale_rnn.cell", {{"alpha", 0.01}}, diags);
    REQUIRE(prog.has_value());
    CHECK(diags.all().empty());
    const Symbol* alpha = prog->find("alpha");
    REQUIRE(alpha != nullptr);
    CHECK(alpha->kind == SymKind::Const);
    REQUIRE(alpha->stmt->value != nullptr);
    REQUIRE(alpha->stmt->value->kind == Expr::Kind::Number);
    CHECK(alpha->stmt->value->number == 0.01);
    CHECK(printProgram(*prog).find("const alpha = 0.01") != std::string::npos);
  }
  SECTION("an unknown name is E401 without a location") {
    DiagnosticSink diags;
    std::optional<Program> prog = load("cells/gru.cell", {{"nosuch", 3}}, diags);
    CHECK_FALSE(prog.has_value());
    REQUIRE(diags.all().size() == 1);
    CHECK(diags.all()[0].code == Code::E401);
    CHECK(diags.all()[0].loc == SourceLoc{0, 0});
    CHECK(diags.all()[0].message.find("nosuch") != std::string::npos);
  }
  SECTION("overriding a param is E401") {
    DiagnosticSink diags;
    CHECK_FALSE(load("cells/gru.cell", {{"b_z", 3}}, diags).has_value());
    REQUIRE(findCode(diags, Code::E401) != nullptr);
  }
  SECTION("overriding a dim with 0 is E400 at the dim's value") {
    DiagnosticSink diags;
    CHECK_FALSE(load("cells/gru.cell", {{"n", 0}}, diags).has_value());
    const Diagnostic* d = findCode(diags, Code::E400);
    REQUIRE(d != nullptr);
    // Where `dim n = ` is in the file.
    std::string err;
    SourceFile file = SourceFile::load((kSourceDir / "cells/gru.cell").string(), &err);
    int line = 1;
    while (line < 10000 && file.line(line).rfind("  dim n = ", 0) != 0) ++line;
    CHECK(d->loc == SourceLoc{line, 11});
  }
}

TEST_CASE("messages speak the user's terms", "[fixtures][messages]") {
  SECTION("a missing expression") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n = 2\n  state h[n] = 0\n  z = \n  param w ~ fill(1)\n"
                         "  h' = w * h\n  output y = h'\n}\n",
                         diags)
                    .has_value());
    REQUIRE(diags.all().size() == 1);
    const Diagnostic& d = diags.all()[0];
    CHECK(d.code == Code::E101);
    CHECK(d.loc == SourceLoc{4, 7});
    CHECK_THAT(d.message, Catch::Contains("expected an expression"));
    CHECK_THAT(d.message, Catch::Contains("end of line"));
  }
  SECTION("a matrix product names both shapes with their sizes") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n_in = 1\n  dim n = 64\n  state h[n] = 0\n"
                         "  param W[n, n_in] ~ lecun_normal()\n  param b[n] ~ zeros()\n"
                         "  h' = h + W @ b\n  output y = h'\n}\n",
                         diags)
                    .has_value());
    const Diagnostic* d = findCode(diags, Code::E301);
    REQUIRE(d != nullptr);
    CHECK(d->loc == SourceLoc{7, 14});
    CHECK(d->message == "matrix product [64, 1] @ [64] (W @ b): inner sizes 1 and 64 differ");
  }
  SECTION("a matrix product with a batched operand shows the batch axis") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n_in = 1\n  dim n = 64\n  state h[n] = 0\n"
                         "  param W[n, n_in] ~ lecun_normal()\n"
                         "  h' = W @ h\n  output y = h'\n}\n",
                         diags)
                    .has_value());
    const Diagnostic* d = findCode(diags, Code::E301);
    REQUIRE(d != nullptr);
    CHECK_THAT(d->message, Catch::Contains("[64, 1] @ [B, 64]"));
    CHECK_THAT(d->message, Catch::Contains("W @ h"));
  }
  SECTION("a broadcast error names both operands and shapes") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n = 2\n  dim m = 3\n  input x[m]\n  state h[n] = 0\n"
                         "  h' = h + x\n  output y = h'\n}\n",
                         diags)
                    .has_value());
    const Diagnostic* d = findCode(diags, Code::E300);
    REQUIRE(d != nullptr);
    CHECK_THAT(d->message, Catch::Contains("h [B, 2]") && Catch::Contains("x [B, 3]"));
  }
  SECTION("an unknown name suggests a close one") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n = 2\n  input x[n]\n  state hidden[n] = 0\n"
                         "  hidden' = hiden + x\n  output y = hidden'\n}\n",
                         diags)
                    .has_value());
    const Diagnostic* d = findCode(diags, Code::E200);
    REQUIRE(d != nullptr);
    CHECK_THAT(d->message, Catch::Contains("'hiden'") && Catch::Contains("did you mean 'hidden'"));
  }
  SECTION("a missing and a duplicate state update name the state") {
    DiagnosticSink diags;
    CHECK_FALSE(loadText("cell t {\n  dim n = 2\n  input x[n]\n  state h[n] = 0\n  state c[n] = 0\n"
                         "  h' = h + x\n  h' = h + c\n  output y = h'\n}\n",
                         diags)
                    .has_value());
    const Diagnostic* missing = findCode(diags, Code::E203);
    const Diagnostic* twice = findCode(diags, Code::E204);
    REQUIRE(missing != nullptr);
    REQUIRE(twice != nullptr);
    CHECK(missing->loc == SourceLoc{5, 9});
    CHECK_THAT(missing->message, Catch::Contains("c' = ..."));
    CHECK(twice->loc == SourceLoc{7, 3});
    CHECK_THAT(twice->message, Catch::Contains("line 6"));
  }
}
