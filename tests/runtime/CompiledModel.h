// A cell of cells/ compiled in float32 for the trainer tests: its source, overrides, lowered step
// and kernel (what the trainer's ModelInfo and constructor take).
#pragma once

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "driver/Compile.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"

namespace cellc::testing {

struct CompiledModel {
  std::string source;
  std::map<std::string, double> overrides;
  StepIR ir;
  std::unique_ptr<CompiledCell<float>> kernel;
};

inline CompiledModel compiledModel(const std::string& cell, std::map<std::string, double> o) {
  std::string path = std::string(CELLC_SOURCE_DIR) + "/cells/" + cell, err;
  SourceFile f = SourceFile::load(path, &err);
  DiagnosticSink d;
  std::optional<Program> p = loadCell(f, o, d);
  REQUIRE(p);
  CompiledModel m{f.text(), o, lower(*p), nullptr};
  m.kernel = compileCell<float>(m.ir);
  return m;
}

}  // namespace cellc::testing
