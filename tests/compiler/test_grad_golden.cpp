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
