// The checked program of a cell: every name resolved to a kind and a shape, sizes resolved.
// This is what the IR builder, the printer and the runtime layout start from.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "diag/Diagnostics.h"
#include "syntax/Ast.h"

namespace cellc {

enum class SymKind { Dim, Input, Noise, State, Param, Const, Output, Intermediate };
const char* symKindName(SymKind k);

struct Symbol {
  SymKind kind;
  std::string name;
  Shape shape;              // batched for inputs, noise, states, outputs and batched intermediates
  const Stmt* stmt = nullptr;
  int64_t dimValue = 0;     // Dim
};

// heaviside's surrogate gradients, by the name a cell gives them: heaviside(x, NAME = k)
// (heaviside(x) and heaviside(x, k) are fast_sigmoid). The IR builder maps each to its op in this
// order (ir/Step.cpp); the rules are in autodiff/Vjp.cpp, the docs in docs/language.md.
inline constexpr const char* kSurrogateNames[] = {"fast_sigmoid", "sigmoid", "atan", "triangle"};

// A `-D name=value` override of a dim or a scalar const.
using Overrides = std::map<std::string, double>;

struct Program {
  Program() = default;
  Program(Program&&) = default;  // symbols point into ast.stmts, whose storage a move keeps
  Program& operator=(Program&&) = default;
  Program(const Program&) = delete;

  CellAst ast;  // annotated: every expression carries its shape
  std::vector<Symbol> symbols;  // in declaration order
  std::unordered_map<std::string, size_t> byName;

  const Symbol* find(const std::string& name) const;
  std::vector<const Symbol*> ofKind(SymKind k) const;
  int64_t dim(const std::string& name) const { return find(name)->dimValue; }
};

// Checks names, kinds and shapes. Errors and warnings go to `diags`; returns the program when there
// are no errors.
std::optional<Program> check(CellAst ast, const Overrides& overrides, DiagnosticSink& diags);

// The resolved program as .cell text: dims with their values, every declaration with its shape,
// every equation normalized. It parses back to the same program.
std::string printProgram(const Program& prog);

// Parse and check a file in one go (what the CLI and tests use).
std::optional<Program> loadCell(const SourceFile& file, const Overrides& overrides,
                                DiagnosticSink& diags);

}  // namespace cellc
