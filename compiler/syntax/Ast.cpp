#include "syntax/Ast.h"

namespace cellc {

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string dimsStr(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string Shape::str() const {
  if (!batched) return dimsStr(dims);
  std::string s = "[B";
  for (int64_t d : dims) s += ", " + std::to_string(d);
  return s + "]";
}

const char* stmtKindName(Stmt::Kind k) {
  switch (k) {
    case Stmt::Kind::Dim: return "dim";
    case Stmt::Kind::Input: return "input";
    case Stmt::Kind::Noise: return "noise";
    case Stmt::Kind::State: return "state";
    case Stmt::Kind::Param: return "param";
    case Stmt::Kind::Const: return "const";
    case Stmt::Kind::Output: return "output";
    case Stmt::Kind::Equation: return "intermediate";
  }
  return "?";
}

std::string binaryOpText(char op) {
  if (op == 'G') return ">=";
  if (op == 'L') return "<=";
  return std::string(1, op);
}

}  // namespace cellc
