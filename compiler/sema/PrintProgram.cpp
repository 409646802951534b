#include <sstream>

#include "sema/Program.h"
#include "syntax/Print.h"

namespace cellc {
namespace {

std::string declShape(const Stmt& s) {
  if (!s.shape) return "";
  std::string out = "[";
  for (size_t i = 0; i < s.shape->size(); ++i) out += (i ? ", " : "") + printExpr(*(*s.shape)[i]);
  return out + "]";
}

}  // namespace

std::string printProgram(const Program& prog) {
  std::ostringstream os;
  os << "cell " << prog.ast.name << " {\n";
  // Each line is followed by a comment with the resolved shape, aligned for reading.
  auto line = [&](const std::string& text, const std::string& comment) {
    os << "  " << text;
    if (!comment.empty()) os << std::string(text.size() < 48 ? 48 - text.size() : 1, ' ') << "# " << comment;
    os << "\n";
  };
  for (const Stmt& s : prog.ast.stmts) {
    const Symbol* sym = prog.find(s.name);
    std::string shape = sym ? sym->shape.str() : "";
    std::string name = s.name + declShape(s);
    switch (s.kind) {
      case Stmt::Kind::Dim:
        line("dim " + s.name + " = " + std::to_string(sym->dimValue), "");
        break;
      case Stmt::Kind::Input: line("input " + name, shape); break;
      case Stmt::Kind::Noise:  // normal() is the default and goes unsaid
        line("noise " + name + (!s.init.empty() && s.init[0].fn == "dropout" ? " ~ dropout()" : ""), shape);
        break;
      case Stmt::Kind::State:
        line("state " + name + " = " + (s.value ? printExpr(*s.value) : "0"), shape);
        break;
      case Stmt::Kind::Param:
        line("param " + name + (s.init.empty() ? "" : " ~ " + printInit(s.init)), shape);
        break;
      case Stmt::Kind::Const:
        line("const " + name + " = " + printExpr(*s.value), shape);
        break;
      case Stmt::Kind::Output:
        line("output " + name + " = " + printExpr(*s.value), shape);
        break;
      case Stmt::Kind::Equation:
        line(s.name + (s.primed ? "'" : "") + " = " + printExpr(*s.value), s.value->shape.str());
        break;
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace cellc
