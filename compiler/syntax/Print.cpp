#include "syntax/Print.h"

#include <charconv>

namespace cellc {
namespace {

// Binding strength, loosest first; must agree with the grammar's precedence.
enum Prec { kCmp = 0, kAdd = 1, kMul = 2, kNeg = 3, kPow = 4, kAtom = 5 };

int precOf(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::Binary:
      if (isComparison(e.op)) return kCmp;
      if (e.op == '+' || e.op == '-') return kAdd;
      if (e.op == '^') return kPow;
      return kMul;
    case Expr::Kind::Neg: return kNeg;
    default: return kAtom;
  }
}

std::string wrap(const Expr& e, bool parens) {
  std::string s = printExpr(e);
  return parens ? "(" + s + ")" : s;
}

std::string printArgs(const std::vector<Arg>& args) {
  std::string s;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) s += ", ";
    if (!args[i].key.empty()) s += args[i].key + " = ";
    s += printExpr(*args[i].value);
  }
  return s;
}

}  // namespace

std::string printNumber(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string printExpr(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::Number: return printNumber(e.number);
    case Expr::Kind::Name: return e.name + (e.primed ? "'" : "");
    case Expr::Kind::Neg: return "-" + wrap(*e.args[0], precOf(*e.args[0]) < kNeg);
    case Expr::Kind::Binary: {
      int p = precOf(e);
      const Expr &l = *e.args[0], &r = *e.args[1];
      bool rightAssoc = e.op == '^';
      // Comparisons do not chain: (a < b) < c keeps its parentheses.
      bool lp = rightAssoc || p == kCmp ? precOf(l) <= p : precOf(l) < p;
      // An exponent may be negated without parentheses: 2^-x parses as 2^(-x).
      bool rp = rightAssoc ? precOf(r) < p && r.kind != Expr::Kind::Neg : precOf(r) <= p;
      std::string op = e.op == '^' ? "^" : " " + binaryOpText(e.op) + " ";
      return wrap(l, lp) + op + wrap(r, rp);
    }
    case Expr::Kind::Call: return e.name + "(" + printArgs(e.callArgs) + ")";
    case Expr::Kind::Index: {
      std::string s = wrap(*e.args[0], precOf(*e.args[0]) < kAtom) + "[";
      for (size_t i = 0; i < e.indices.size(); ++i) {
        const IndexItem& it = e.indices[i];
        if (i) s += ", ";
        if (!it.isSlice) {
          s += printExpr(*it.at);
          continue;
        }
        if (it.lo) s += printExpr(*it.lo);
        s += ":";
        if (it.hi) s += printExpr(*it.hi);
      }
      return s + "]";
    }
  }
  return "?";
}

std::string printInit(const std::vector<InitCall>& init) {
  std::string s;
  for (size_t i = 0; i < init.size(); ++i)
    s += (i ? " | " : "") + init[i].fn + "(" + printArgs(init[i].args) + ")";
  return s;
}

}  // namespace cellc
