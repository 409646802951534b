// The front end stays linear and within the stack on huge inputs: 200,000 newlines inside an open
// bracket (the lexer's look-ahead once rescanned every following blank line for each newline:
// 45 s), a 10,000-statement chain through check, print, lower and grad (the gradient printer once
// recursed as deep as the chain and overflowed the stack), and 10,000 nested parentheses (refused
// with a located E102, not recursed into). Each runs under a generous time bound; labelled `slow`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>

#include "autodiff/PrintGrad.h"
#include "diag/Diagnostics.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"

using namespace cellc;

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A chain of n statements, each using the previous one.
std::string chain(int n, const std::string& step) {
  std::string s = "cell chain {\n  input x[2]\n  state h[2] = 0\n  a0 = h + x\n";
  for (int i = 1; i < n; ++i) {
    std::string prev = "a" + std::to_string(i - 1), line = step;
    for (size_t at; (at = line.find("PREV")) != std::string::npos;) line.replace(at, 4, prev);
    s += "  a" + std::to_string(i) + " = " + line + "\n";
  }
  return s + "  h' = a" + std::to_string(n - 1) + "\n  output y = h'\n}\n";
}

}  // namespace

TEST_CASE("scaling: 200,000 newlines inside an open bracket lex in linear time", "[scaling]") {
  std::string text = "cell nl {\n  input x[2]\n  state h[2] = 0\n  h' = (h + x" +
                     std::string(200000, '\n') + ")\n  output y = h'\n}\n";
  auto t0 = std::chrono::steady_clock::now();
  SourceFile file("nl.cell", text);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  CHECK(prog);
  CHECK(diags.errorCount() == 0);
  CHECK(secondsSince(t0) < 10.0);  // about 0.3 s; quadratic before: 45 s
}

TEST_CASE("scaling: a 10,000-statement chain checks, prints and differentiates", "[scaling]") {
  for (const char* step : {"PREV + 1", "tanh(PREV)", "PREV * PREV - 1"}) {
    DYNAMIC_SECTION(step) {
      auto t0 = std::chrono::steady_clock::now();
      SourceFile file("chain.cell", chain(10000, step));
      DiagnosticSink diags;
      std::optional<Program> prog = loadCell(file, {}, diags);
      REQUIRE(prog);
      CHECK(printProgram(*prog).size() > 10000);
      StepIR ir = lower(*prog);
      std::string grad = autodiff::printGradient(*prog, ir);
      CHECK(grad.find("d_h = ") != std::string::npos);
      // Long chains are cut into temps: no printed line grows with the chain.
      size_t longest = 0;
      for (size_t start = 0, end; start < grad.size(); start = end + 1) {
        end = grad.find('\n', start);
        if (end == std::string::npos) end = grad.size();
        longest = std::max(longest, end - start);
      }
      CHECK(longest < 4000);
      CHECK(secondsSince(t0) < 30.0);  // about 2 s
    }
  }
}

TEST_CASE("scaling: 10,000 nested parentheses are refused with a located error", "[scaling]") {
  std::string text = "cell deep {\n  input x[2]\n  state h[2] = 0\n  h' = " + std::string(10000, '(') +
                     "h" + std::string(10000, ')') + "\n  output y = h'\n}\n";
  SourceFile file("deep.cell", text);
  DiagnosticSink diags;
  CHECK_FALSE(loadCell(file, {}, diags));
  REQUIRE(!diags.all().empty());
  CHECK(diags.all()[0].code == Code::E102);
  CHECK(diags.all()[0].loc.line == 4);
}
