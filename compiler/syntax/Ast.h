// The syntax tree of a .cell file: what the user wrote, with source locations. Sema annotates each
// expression with its shape; nothing here knows about ANTLR.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diag/Diagnostics.h"

namespace cellc {

// The shape of a value. `batched` values carry an implicit leading batch dimension that is not
// listed in `dims` (states, inputs, noise and everything computed from them).
struct Shape {
  bool batched = false;
  std::vector<int64_t> dims;

  int rank() const { return static_cast<int>(dims.size()); }
  int64_t numel() const;  // per batch element
  bool operator==(const Shape&) const = default;
  std::string str() const;  // "[B, 100, 1]" / "[100, 1]" / "[]"
};
std::string dimsStr(const std::vector<int64_t>& dims);  // "[100, 1]"

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct IndexItem {
  bool isSlice = false;
  ExprPtr at, lo, hi;  // at for a point index; lo/hi (each optional) for a slice
  SourceLoc loc;
};

struct Arg {
  std::string key;  // empty for positional
  ExprPtr value;
  SourceLoc loc;
};

struct Expr {
  enum class Kind { Number, Name, Neg, Binary, Call, Index };
  Kind kind;
  SourceLoc loc;
  double number = 0;          // Number
  std::string name;           // Name (identifier), Call (function name)
  bool primed = false;        // Name: h'
  char op = 0;                // Binary: + - * / @ ^, and > < G (>=) L (<=): binaryOpText
  std::vector<ExprPtr> args;  // Neg: 1, Binary: 2, Index: 1 (the operand)
  std::vector<Arg> callArgs;  // Call
  std::vector<IndexItem> indices;  // Index

  // Filled by sema.
  Shape shape;
};

struct InitCall {
  std::string fn;
  std::vector<Arg> args;
  SourceLoc loc;
};

struct Stmt {
  enum class Kind { Dim, Input, Noise, State, Param, Const, Output, Equation };
  Kind kind;
  std::string name;
  bool primed = false;        // Equation: h' = ...
  // Equation written d(h)/dt = f: `value` becomes the cell integrator's discrete step (h' = h +
  // dt * (f) for euler; syntax/Integrate.h), so every later stage (sema, print, the step graph,
  // autodiff) sees the step; `rate` keeps f, dtLoc points at `dt`.
  bool derivative = false;
  ExprPtr rate;
  SourceLoc dtLoc;
  SourceLoc loc;              // of the name
  std::optional<std::vector<ExprPtr>> shape;  // declared shape, if written
  ExprPtr value;              // dim/const/output/equation value, state initial value
  std::vector<InitCall> init; // param initializer and its transforms; noise distribution
};

struct CellAst {
  std::string name;
  SourceLoc loc;
  std::string integrator;     // `integrator NAME` as written; empty: euler
  SourceLoc integratorLoc;
  std::vector<Stmt> stmts;
};

const char* stmtKindName(Stmt::Kind k);  // "param", "state", ...
// A binary operator as written: "+", ..., ">=" for 'G', "<=" for 'L'.
std::string binaryOpText(char op);
// A comparison (> < >= <=): a value of 1 or 0, no gradient.
inline bool isComparison(char op) { return op == '>' || op == '<' || op == 'G' || op == 'L'; }

}  // namespace cellc
