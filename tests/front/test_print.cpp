// Printing: printProgram output parses and checks back to the same program and is a fixed point;
// printExpr keeps exactly the parentheses the grammar's precedence needs; numbers round-trip exactly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "diag/Diagnostics.h"
#include "sema/Program.h"
#include "syntax/Parse.h"
#include "syntax/Print.h"

namespace fs = std::filesystem;
using namespace cellc;

namespace {

const fs::path kSourceDir = CELLC_SOURCE_DIR;

std::vector<fs::path> allCells() {
  std::vector<fs::path> out;
  for (const char* dir : {"cells", "tests/fixtures/valid"})
    for (const auto& entry : fs::directory_iterator(kSourceDir / dir))
      if (entry.path().extension() == ".cell") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string render(const DiagnosticSink& diags, const SourceFile& file) {
  std::ostringstream os;
  diags.render(os, file);
  return os.str();
}

// Parses `z = <text>` inside a cell (syntax only: names need not exist). Empty on a syntax error.
ExprPtr parseExpr(const std::string& text, std::string* errors = nullptr) {
  SourceFile file("expr.cell", "cell t {\n  z = " + text + "\n}\n");
  DiagnosticSink diags;
  std::optional<CellAst> ast = parseCell(file, diags);
  if (errors) *errors = render(diags, file);
  if (!ast || ast->stmts.size() != 1) return nullptr;
  return ast->stmts[0].value;
}

std::string reprint(const std::string& text) {
  std::string errors;
  ExprPtr e = parseExpr(text, &errors);
  INFO("parsing `" << text << "`:\n" << errors);
  REQUIRE(e != nullptr);
  return printExpr(*e);
}

bool sameExpr(const ExprPtr& a, const ExprPtr& b);

bool sameIndex(const IndexItem& a, const IndexItem& b) {
  return a.isSlice == b.isSlice && sameExpr(a.at, b.at) && sameExpr(a.lo, b.lo) &&
         sameExpr(a.hi, b.hi);
}

// Structural equality, ignoring locations and shapes.
bool sameExpr(const ExprPtr& a, const ExprPtr& b) {
  if (!a || !b) return !a && !b;
  if (a->kind != b->kind) return false;
  switch (a->kind) {
    case Expr::Kind::Number: return a->number == b->number;
    case Expr::Kind::Name: return a->name == b->name && a->primed == b->primed;
    case Expr::Kind::Neg: return sameExpr(a->args[0], b->args[0]);
    case Expr::Kind::Binary:
      return a->op == b->op && sameExpr(a->args[0], b->args[0]) && sameExpr(a->args[1], b->args[1]);
    case Expr::Kind::Call:
      if (a->name != b->name || a->callArgs.size() != b->callArgs.size()) return false;
      for (size_t i = 0; i < a->callArgs.size(); ++i)
        if (a->callArgs[i].key != b->callArgs[i].key ||
            !sameExpr(a->callArgs[i].value, b->callArgs[i].value))
          return false;
      return true;
    case Expr::Kind::Index:
      if (!sameExpr(a->args[0], b->args[0]) || a->indices.size() != b->indices.size()) return false;
      for (size_t i = 0; i < a->indices.size(); ++i)
        if (!sameIndex(a->indices[i], b->indices[i])) return false;
      return true;
  }
  return false;
}

void checkSameSymbols(const Program& a, const Program& b) {
  REQUIRE(a.symbols.size() == b.symbols.size());
  for (size_t i = 0; i < a.symbols.size(); ++i) {
    const Symbol &s = a.symbols[i], &t = b.symbols[i];
    INFO("symbol " << i << ": " << s.name << " / " << t.name);
    CHECK(s.name == t.name);
    CHECK(s.kind == t.kind);
    CHECK(s.shape.str() == t.shape.str());
    CHECK(s.dimValue == t.dimValue);
  }
}

// printProgram -> parse and check -> same symbols; printing again gives the identical text.
void checkRoundTrip(const Program& prog, const std::string& label) {
  const std::string printed = printProgram(prog);
  SourceFile again(label + " (printed)", printed);
  DiagnosticSink diags;
  std::optional<Program> prog2 = loadCell(again, {}, diags);
  INFO("printed program:\n" << printed << "\ndiagnostics:\n" << render(diags, again));
  REQUIRE(prog2.has_value());
  CHECK(diags.all().empty());
  CHECK(printProgram(*prog2) == printed);
  CHECK(prog2->ast.name == prog.ast.name);
  checkSameSymbols(prog, *prog2);
}

}  // namespace

TEST_CASE("printProgram parses back to the same program and is a fixed point", "[print]") {
  for (const fs::path& path : allCells()) {
    DYNAMIC_SECTION(path.parent_path().filename().string() << "/" << path.filename().string()) {
      std::string err;
      SourceFile file = SourceFile::load(path.string(), &err);
      REQUIRE(err.empty());
      DiagnosticSink diags;
      std::optional<Program> prog = loadCell(file, {}, diags);
      INFO(render(diags, file));
      REQUIRE(prog.has_value());
      checkRoundTrip(*prog, path.filename().string());
    }
  }
}

TEST_CASE("printProgram keeps -D overrides", "[print][overrides]") {
  std::string err;
  SourceFile file = SourceFile::load((kSourceDir / "cells/gru.cell").string(), &err);
  REQUIRE(err.empty());
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {{"n", 128}}, diags);
  REQUIRE(prog.has_value());
  const std::string printed = printProgram(*prog);
  CHECK(printed.find("dim n = 128\n") != std::string::npos);
  checkRoundTrip(*prog, "gru.cell -D n=128");

  SourceFile dale = SourceFile::load((kSourceDir / "cells/dale_rnn.cell").string(), &err);
  REQUIRE(err.empty());
  DiagnosticSink diags2;
  std::optional<Program> prog2 = loadCell(dale, {{"alpha", 0.01}, {"n", 20}}, diags2);
  REQUIRE(prog2.has_value());
  checkRoundTrip(*prog2, "dale_rnn.cell -D alpha=0.01 -D n=20");
}

TEST_CASE("printExpr: precedence and associativity", "[print]") {
  SECTION("unary minus binds looser than ^") {
    ExprPtr e = parseExpr("-x^2");
    REQUIRE(e != nullptr);
    REQUIRE(e->kind == Expr::Kind::Neg);
    REQUIRE(e->args[0]->kind == Expr::Kind::Binary);
    CHECK(e->args[0]->op == '^');
    CHECK(printExpr(*e) == "-x^2");
  }
  SECTION("(-x)^2 keeps its parentheses") {
    ExprPtr e = parseExpr("(-x)^2");
    REQUIRE(e != nullptr);
    REQUIRE(e->kind == Expr::Kind::Binary);
    CHECK(e->args[0]->kind == Expr::Kind::Neg);
    CHECK(printExpr(*e) == "(-x)^2");
  }
  SECTION("- is left-associative") {
    CHECK(reprint("(a - b) - c") == "a - b - c");
    CHECK(reprint("a - b - c") == "a - b - c");
    CHECK(reprint("a - (b - c)") == "a - (b - c)");
    CHECK(reprint("a / (b / c)") == "a / (b / c)");
    CHECK(reprint("(a / b) / c") == "a / b / c");
    CHECK(reprint("a @ (B @ c)") == "a @ (B @ c)");
  }
  SECTION("^ is right-associative") {
    ExprPtr e = parseExpr("2^3^2");
    REQUIRE(e != nullptr);
    REQUIRE(e->kind == Expr::Kind::Binary);
    REQUIRE(e->args[1]->kind == Expr::Kind::Binary);  // 2^(3^2)
    CHECK(e->args[0]->number == 2);
    CHECK(printExpr(*e) == "2^3^2");
    CHECK(reprint("2^(3^2)") == "2^3^2");
    CHECK(reprint("(2^3)^2") == "(2^3)^2");
  }
  SECTION("* binds tighter than +") {
    CHECK(reprint("a + (b * c)") == "a + b * c");
    CHECK(reprint("(a + b) * c") == "(a + b) * c");
    CHECK(reprint("(a * b) + c") == "a * b + c");
    CHECK(reprint("a * (b + c)") == "a * (b + c)");
    CHECK(reprint("((a))") == "a");
  }
  SECTION("unary minus inside products and powers") {
    CHECK(reprint("-a * b") == "-a * b");
    CHECK(reprint("-(a * b)") == "-(a * b)");
    CHECK(reprint("a * -b") == "a * -b");
    CHECK(reprint("a - -b") == "a - -b");
    CHECK(reprint("--a") == "--a");
    CHECK(reprint("-(a + b)") == "-(a + b)");
  }
  SECTION("indexing binds tightest") {
    CHECK(reprint("(a + b)[0:2]") == "(a + b)[0:2]");
    CHECK(reprint("(-x)[0]") == "(-x)[0]");
    CHECK(reprint("(x^2)[1]") == "(x^2)[1]");
    CHECK(reprint("-x[0]") == "-x[0]");
    CHECK(reprint("x[0]^2") == "x[0]^2");
    CHECK(reprint("W[:, 0:k]") == "W[:, 0:k]");
    CHECK(reprint("W[:k, k:]") == "W[:k, k:]");
    CHECK(reprint("h'[1:2]") == "h'[1:2]");
    CHECK(reprint("tanh(x)[0]") == "tanh(x)[0]");
    ExprPtr e = parseExpr("-x[0]");
    REQUIRE(e != nullptr);
    CHECK(e->kind == Expr::Kind::Neg);
  }
  SECTION("comparisons bind looser than + and do not chain") {
    CHECK(reprint("(v - 1) > 0") == "v - 1 > 0");
    CHECK(reprint("v - (1 > 0)") == "v - (1 > 0)");
    CHECK(reprint("(a >= b) * (b <= c)") == "(a >= b) * (b <= c)");
    CHECK(reprint("(a < b) < c") == "(a < b) < c");  // a < b < c does not parse (E101)
    CHECK(reprint("a < (b < c)") == "a < (b < c)");
    ExprPtr e = parseExpr("x + 1 >= 2 * y");
    REQUIRE(e != nullptr);
    REQUIRE(e->kind == Expr::Kind::Binary);
    CHECK(e->op == 'G');
    CHECK(e->args[0]->op == '+');
    CHECK(e->args[1]->op == '*');
    std::string errors;
    parseExpr("a < b < c", &errors);
    CHECK(errors.find("E101") != std::string::npos);
    CHECK(errors.find("comparisons do not chain") != std::string::npos);
  }
  SECTION("calls and named arguments") {
    CHECK(reprint("clip( a+b ,-1,1 )") == "clip(a + b, -1, 1)");
    CHECK(reprint("f(k=2,theta = x)") == "f(k = 2, theta = x)");
    CHECK(reprint("concat(h[0:k], p)") == "concat(h[0:k], p)");
  }
}

TEST_CASE("printExpr: numbers round-trip exactly", "[print]") {
  struct Case {
    const char* source;
    double value;
  };
  const Case cases[] = {
      {"1e-3", 1e-3},       {"0.1", 0.1},         {".5", 0.5},
      {"2.5E+4", 2.5e4},    {"3", 3},             {"0.30000000000000004", 0.30000000000000004},
      {"1e21", 1e21},       {"1e-7", 1e-7},       {"123456789012345678", 123456789012345678.0},
      {"1.7976931348623157e308", 1.7976931348623157e308},
      {"2.2250738585072014e-308", 2.2250738585072014e-308},
      {"0.1e1", 1},         {"5.", 5},            {"0", 0},
  };
  for (const Case& c : cases) {
    INFO("literal " << c.source);
    ExprPtr e = parseExpr(c.source);
    REQUIRE(e != nullptr);
    REQUIRE(e->kind == Expr::Kind::Number);
    CHECK(e->number == c.value);
    const std::string printed = printExpr(*e);
    INFO("printed " << printed);
    ExprPtr again = parseExpr(printed);
    REQUIRE(again != nullptr);
    REQUIRE(again->kind == Expr::Kind::Number);
    CHECK(again->number == c.value);
    CHECK(printExpr(*again) == printed);
  }
  CHECK(printNumber(1e-3) == "0.001");
  CHECK(printNumber(0.1) == "0.1");
  CHECK(printNumber(2.5e4) == "25000");
  CHECK(printNumber(3) == "3");
}

namespace {

// A random expression, written with a parenthesis around every compound operand.
std::string randomExpr(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  static const char* names[] = {"a", "b", "x", "h'", "W"};
  static const char* numbers[] = {"2", "0.5", "1e-3", "0.1", "3", ".25"};
  if (depth <= 0 || pick(4) == 0)
    return pick(3) ? names[pick(5)] : numbers[pick(6)];
  switch (pick(6)) {
    case 0: return "-(" + randomExpr(rng, depth - 1) + ")";
    case 1: {
      static const char* ops[] = {" + ", " - ", " * ", " / ", " @ ", "^"};
      return "(" + randomExpr(rng, depth - 1) + ")" + ops[pick(6)] + "(" +
             randomExpr(rng, depth - 1) + ")";
    }
    case 2: return "tanh(" + randomExpr(rng, depth - 1) + ")";
    case 3:
      return "clip(" + randomExpr(rng, depth - 1) + ", " + randomExpr(rng, depth - 1) +
             ", lo = " + randomExpr(rng, depth - 1) + ")";
    case 4: {
      static const char* idx[] = {"[0]", "[1:2]", "[:, 0:k]", "[:]", "[k:]", "[0, 1]"};
      return "(" + randomExpr(rng, depth - 1) + ")" + idx[pick(6)];
    }
    default: {
      // Bare operators, so the parser's precedence decides the tree.
      static const char* ops[] = {" + ", " - ", " * ", " / ", "^", " @ "};
      return randomExpr(rng, depth - 1) + ops[pick(6)] + (pick(3) ? "" : "-") +
             randomExpr(rng, depth - 1);
    }
  }
}

}  // namespace

TEST_CASE("printExpr: random expressions print to a parse of the same tree", "[print]") {
  std::mt19937 rng(20240611);
  int checked = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string source = randomExpr(rng, 5);
    std::string errors;
    ExprPtr e = parseExpr(source, &errors);
    INFO("source: " << source << "\n" << errors);
    REQUIRE(e != nullptr);
    const std::string printed = printExpr(*e);
    INFO("printed: " << printed);
    ExprPtr again = parseExpr(printed, &errors);
    INFO(errors);
    REQUIRE(again != nullptr);
    CHECK(sameExpr(e, again));
    CHECK(printExpr(*again) == printed);
    ++checked;
  }
  CHECK(checked == 3000);
}

TEST_CASE("printExpr: a negated exponent needs no parentheses", "[print]") {
  // The grammar reads 2^-x as 2^(-x) (as Python does), so the parentheses are not needed; adding
  // them makes a legal chain like a^-a^-a^-...^-a print with one '(' per level, and past 64 levels
  // the printed program no longer parses (E102).
  CHECK(reprint("2^-x") == "2^-x");
  CHECK(reprint("2^(-x)") == "2^-x");

  std::string chain;
  for (int i = 0; i < 65; ++i) chain += "a^-";
  chain += "a";
  const std::string text = "cell t {\n  dim n = 2\n  param a ~ fill(0.5)\n  state h[n] = 0\n  h' = h * " +
                           chain + "\n  output y = h'\n}\n";
  SourceFile file("pow_chain.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  INFO(render(diags, file));
  REQUIRE(prog.has_value());
  checkRoundTrip(*prog, "pow_chain.cell");
}
