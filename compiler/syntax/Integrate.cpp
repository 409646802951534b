#include "syntax/Integrate.h"

#include <optional>

#include "diag/Text.h"

namespace cellc {

namespace {

// Builders of synthesized nodes; each carries the location of what it stands for, so sema's
// errors point at what the user wrote.
ExprPtr name(const std::string& n, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Name;
  e->name = n;
  e->loc = loc;
  return e;
}

ExprPtr number(double v, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Number;
  e->number = v;
  e->loc = loc;
  return e;
}

ExprPtr bin(char op, ExprPtr l, ExprPtr r, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Binary;
  e->op = op;
  e->loc = loc;
  e->args = {std::move(l), std::move(r)};
  return e;
}

ExprPtr neg(ExprPtr a, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Neg;
  e->loc = loc;
  e->args = {std::move(a)};
  return e;
}

ExprPtr call(const std::string& fn, ExprPtr a, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Call;
  e->name = fn;
  e->loc = loc;
  e->callArgs = {Arg{"", std::move(a), loc}};
  return e;
}

// A deep copy: a synthesized step uses some subtrees twice, and sema annotates nodes in place.
ExprPtr clone(const ExprPtr& e) {
  if (!e) return e;
  auto c = std::make_shared<Expr>(*e);
  for (ExprPtr& a : c->args) a = clone(a);
  for (Arg& a : c->callArgs) a.value = clone(a.value);
  for (IndexItem& it : c->indices) {
    it.at = clone(it.at);
    it.lo = clone(it.lo);
    it.hi = clone(it.hi);
  }
  return c;
}

// Whether e reads the state x as it is at the start of the step (the bare name, not x').
bool reads(const ExprPtr& e, const std::string& x) {
  if (!e) return false;
  if (e->kind == Expr::Kind::Name) return e->name == x && !e->primed;
  for (const ExprPtr& a : e->args)
    if (reads(a, x)) return true;
  for (const Arg& a : e->callArgs)
    if (reads(a.value, x)) return true;
  for (const IndexItem& it : e->indices)
    if (reads(it.at, x) || reads(it.lo, x) || reads(it.hi, x)) return true;
  return false;
}

// f = a * x + n, where a collects the coefficients of the bare x's that f reaches through
// + - and through * / by factors free of x; everything else (x under a function, a matrix product,
// a power, a product of two x's) stays in n. A null part is zero.
struct Split {
  ExprPtr a, n;
};

ExprPtr sum(ExprPtr p, ExprPtr q, char op, SourceLoc loc) {
  if (!q) return p;
  if (!p) return op == '-' ? neg(std::move(q), loc) : q;
  return bin(op, std::move(p), std::move(q), loc);
}

ExprPtr scaled(ExprPtr p, char op, const ExprPtr& factor, bool factorFirst, SourceLoc loc) {
  if (!p) return p;
  return factorFirst ? bin(op, clone(factor), std::move(p), loc) : bin(op, std::move(p), clone(factor), loc);
}

Split split(const ExprPtr& e, const std::string& x) {
  if (!reads(e, x)) return {nullptr, e};
  switch (e->kind) {
    case Expr::Kind::Name: return {number(1, e->loc), nullptr};
    case Expr::Kind::Neg: {
      Split s = split(e->args[0], x);
      return {s.a ? neg(s.a, e->loc) : nullptr, s.n ? neg(s.n, e->loc) : nullptr};
    }
    case Expr::Kind::Binary: {
      const ExprPtr &l = e->args[0], &r = e->args[1];
      if (e->op == '+' || e->op == '-') {
        Split sl = split(l, x), sr = split(r, x);
        return {sum(sl.a, sr.a, e->op, e->loc), sum(sl.n, sr.n, e->op, e->loc)};
      }
      if (e->op == '*' && !reads(l, x)) {
        Split s = split(r, x);
        return {scaled(s.a, '*', l, true, e->loc), scaled(s.n, '*', l, true, e->loc)};
      }
      if ((e->op == '*' || e->op == '/') && !reads(r, x)) {
        Split s = split(l, x);
        return {scaled(s.a, e->op, r, false, e->loc), scaled(s.n, e->op, r, false, e->loc)};
      }
      return {nullptr, e};
    }
    default: return {nullptr, e};
  }
}

ExprPtr eulerStep(const Stmt& s) {
  const SourceLoc fLoc = s.rate->loc;
  return bin('+', name(s.name, s.loc), bin('*', name("dt", s.dtLoc), clone(s.rate), fLoc), fLoc);
}

// x' = x * E + (E - 1) / A * N with E = exp(A * dt); x' = x * E when N is zero.
std::optional<ExprPtr> exponentialEulerStep(const Stmt& s, DiagnosticSink& diags) {
  Split f = split(clone(s.rate), s.name);
  const SourceLoc loc = s.rate->loc;
  if (!f.a) {
    diags.report(Code::E218, s.loc,
                 "exponential_euler needs d(" + s.name + ")/dt to have a term linear in " + s.name +
                     " (a leak such as -" + s.name + " / tau), and this one has none; use `integrator euler`");
    return std::nullopt;
  }
  auto E = [&] { return call("exp", bin('*', clone(f.a), name("dt", s.dtLoc), loc), loc); };
  ExprPtr decay = bin('*', name(s.name, s.loc), E(), loc);
  if (!f.n) return decay;
  ExprPtr gain = bin('/', bin('-', E(), number(1, loc), loc), f.a, loc);
  return bin('+', decay, bin('*', gain, f.n, loc), loc);
}

}  // namespace

bool integrate(CellAst& ast, DiagnosticSink& diags) {
  const std::string method = ast.integrator.empty() ? "euler" : ast.integrator;
  if (method != "euler" && method != "exponential_euler") {
    const std::string near = closestName(method, {"euler", "exponential_euler"});
    diags.report(Code::E217, ast.integratorLoc,
                 "unknown integrator '" + printableExcerpt(method, 40) + "'" +
                     (near.empty() ? "" : " (did you mean " + near + "?)") + "; the integrators are " +
                     kIntegrators);
    return false;
  }
  bool ok = true, any = false;
  for (Stmt& s : ast.stmts) {
    if (!s.derivative) continue;
    any = true;
    if (!s.rate) s.rate = s.value;
    if (method == "euler") {
      s.value = eulerStep(s);
    } else if (auto step = exponentialEulerStep(s, diags)) {
      s.value = *step;
    } else {
      ok = false;
    }
  }
  if (!any && !ast.integrator.empty())
    diags.report(Code::W502, ast.integratorLoc,
                 "integrator " + method + " is chosen but no state is written d(x)/dt = ...; it does nothing");
  return ok;
}

}  // namespace cellc
