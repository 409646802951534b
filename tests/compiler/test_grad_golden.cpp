// Regression: `cellc grad` output for every cell against tests/golden/grad/<cell>.txt.
// After an intended change, regenerate with scripts/update-golden.sh and review the diff.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autodiff/PrintGrad.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"

TEST_CASE("cellc grad output matches the golden files", "[golden]") {
  namespace fs = std::filesystem;
  for (const auto& e : fs::directory_iterator(CELLC_SOURCE_DIR "/cells")) {
    std::string stem = e.path().stem().string();
    DYNAMIC_SECTION(stem) {
      std::string err;
      cellc::SourceFile f = cellc::SourceFile::load(e.path().string(), &err);
      cellc::DiagnosticSink d;
      std::optional<cellc::Program> p = cellc::loadCell(f, {}, d);
      REQUIRE(p);
      std::string got = cellc::autodiff::printGradient(*p, cellc::lower(*p));
      std::ifstream in(std::string(CELLC_SOURCE_DIR "/tests/golden/grad/") + stem + ".txt");
      REQUIRE(in);
      std::stringstream want;
      want << in.rdbuf();
      CHECK(got == want.str());
    }
  }
}

TEST_CASE("cellc print and grad show softmax, log_softmax and logsumexp", "[golden][classify]") {
  // print keeps the functions as written; grad shows their backward in the ops they are built
  // from (amax, exp, sum, log), each line naming its source line.
  const char* src = R"(cell sm {
  dim n = 3
  input x[n]
  state h[n] = 0
  param W[n, n] ~ glorot()
  h' = log_softmax(W @ h + x)
  output p = softmax(h')
  output lse = logsumexp(h')
})";
  cellc::SourceFile f("sm.cell", src);
  cellc::DiagnosticSink d;
  std::optional<cellc::Program> p = cellc::loadCell(f, {}, d);
  REQUIRE(p);
  const std::string printed = cellc::printProgram(*p);
  CHECK_THAT(printed, Catch::Contains("h' = log_softmax(W @ h + x)                     # [B, 3]"));
  CHECK_THAT(printed, Catch::Contains("output lse = logsumexp(h')                      # [B]"));
  const std::string grad = cellc::autodiff::printGradient(*p, cellc::lower(*p));
  INFO(grad);
  CHECK_THAT(grad, Catch::Contains("exp(h' - unsqueeze(amax(h', 0), 0))"));
  CHECK_THAT(grad, Catch::Contains("[unsqueeze(amax(W @ h + x, 0), 0) <= W @ h + x]"));  // amax's adjoint
  CHECK_THAT(grad, Catch::Contains("# line 7: output p = softmax(h')"));
  CHECK_THAT(grad, Catch::Contains("# line 6: h' = log_softmax(W @ h + x)"));
  CHECK_THAT(grad, Catch::Contains("d_W += sum_batch(outer("));
}
