#include "sema/Bind.h"

#include <algorithm>

#include "syntax/Parse.h"

namespace cellc {

std::optional<Program> bindAsParam(const SourceFile& file, const Overrides& overrides,
                                   const std::string& name, DiagnosticSink& diags) {
  std::optional<Program> original = loadCell(file, overrides, diags);
  if (!original) return std::nullopt;
  const Symbol* sym = original->find(name);
  if (!sym || sym->kind != SymKind::Intermediate) {
    diags.report(Code::E214, {0, 0}, "cannot bind '" + name + "': it is not an intermediate of the cell");
    return std::nullopt;
  }
  if (sym->shape.batched) {
    diags.report(Code::E212, sym->stmt->loc,
                 "cannot bind '" + name + "' as a param: it depends on a state, input or noise");
    return std::nullopt;
  }
  std::optional<CellAst> ast = parseCell(file, diags);
  if (!ast) return std::nullopt;
  for (Stmt& s : ast->stmts) {
    // Initializer transforms that measure the bound value (spectral_radius(.., of = name)) have
    // nothing left to measure: the value is set directly now.
    if (s.kind == Stmt::Kind::Param)
      std::erase_if(s.init, [&](const InitCall& c) {
        return std::any_of(c.args.begin(), c.args.end(), [&](const Arg& a) {
          return a.value->kind == Expr::Kind::Name && a.value->name == name;
        });
      });
    if (s.kind != Stmt::Kind::Equation || s.primed || s.name != name) continue;
    s.kind = Stmt::Kind::Param;
    s.value.reset();
    s.shape.emplace();
    for (int64_t d : sym->shape.dims) {
      auto e = std::make_shared<Expr>();
      e->kind = Expr::Kind::Number;
      e->number = static_cast<double>(d);
      e->loc = s.loc;
      s.shape->push_back(e);
    }
  }
  // The raw params that only fed `name` are now unused: their warnings say nothing new here.
  DiagnosticSink quiet;
  std::optional<Program> bound = check(std::move(*ast), overrides, quiet);
  for (const Diagnostic& d : quiet.all())
    if (d.severity() == Severity::Error) diags.report(d.code, d.loc, d.message);
  return bound;
}

}  // namespace cellc
