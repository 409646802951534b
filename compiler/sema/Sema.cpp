// Semantic checks: one function per rule, each reporting a stable code (diag/Codes.def).
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "diag/Text.h"
#include "sema/Program.h"
#include "syntax/Parse.h"
#include "syntax/Print.h"

namespace cellc {

const char* symKindName(SymKind k) {
  switch (k) {
    case SymKind::Dim: return "dim";
    case SymKind::Input: return "input";
    case SymKind::Noise: return "noise";
    case SymKind::State: return "state";
    case SymKind::Param: return "param";
    case SymKind::Const: return "const";
    case SymKind::Output: return "output";
    case SymKind::Intermediate: return "intermediate";
  }
  return "?";
}

const Symbol* Program::find(const std::string& name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : &symbols[it->second];
}

std::vector<const Symbol*> Program::ofKind(SymKind k) const {
  std::vector<const Symbol*> out;
  for (const Symbol& s : symbols)
    if (s.kind == k) out.push_back(&s);
  return out;
}

namespace {

// Where an expression is evaluated decides which names it may use.
enum class Ctx {
  Size,      // dims, shape entries, slice bounds: integers known at compile time
  Const,     // const values and initializer arguments: compile-time values
  Equation,  // equations and outputs: anything defined so far
};

struct FnInfo {
  int minArgs, maxArgs;  // maxArgs < 0: variadic
};

const std::map<std::string, FnInfo>& functions() {
  static const std::map<std::string, FnInfo> fns = {
      {"exp", {1, 1}},     {"log", {1, 1}},     {"tanh", {1, 1}},    {"sigmoid", {1, 1}},
      {"relu", {1, 1}},    {"softplus", {1, 1}}, {"abs", {1, 1}},    {"sqrt", {1, 1}},
      {"clip", {3, 3}},    {"min", {2, 2}},     {"max", {2, 2}},     {"outer", {2, 2}},
      {"transpose", {1, 1}}, {"sum", {1, 2}},   {"mean", {1, 2}},    {"concat", {1, -1}},
      {"dale", {1, 1}},    {"eye", {1, 1}},
      {"amax", {1, 2}},    {"softmax", {1, 1}}, {"log_softmax", {1, 1}}, {"logsumexp", {1, 1}},
      {"where", {3, 3}},   {"heaviside", {1, 2}},
  };
  return fns;
}

struct InitInfo {
  std::vector<std::string> params;  // argument names, in order
  int required;
  bool transform;  // applies after the base initializer (after '|')
};

const std::map<std::string, InitInfo>& initializers() {
  static const std::map<std::string, InitInfo> inits = {
      {"zeros", {{}, 0, false}},
      {"ones", {{}, 0, false}},
      {"fill", {{"value"}, 1, false}},
      {"uniform", {{"lo", "hi"}, 2, false}},
      {"normal", {{"mean", "std"}, 2, false}},
      {"glorot", {{"gain"}, 0, false}},
      {"lecun_normal", {{}, 0, false}},
      {"orthogonal", {{"gain"}, 0, false}},
      {"gamma", {{"k", "theta"}, 2, false}},
      {"spectral_radius", {{"radius", "of"}, 1, true}},
      {"balance_ei", {{"f"}, 1, true}},
  };
  return inits;
}

// Sizes are capped so that no value's element count can overflow and no typo allocates terabytes.
constexpr int64_t kMaxSize = int64_t{1} << 28;

std::string article(const std::string& word) {
  return std::string(word.find_first_of("aeiou") == 0 ? "an " : "a ");
}
std::string aKind(SymKind k) { return article(symKindName(k)) + symKindName(k); }


std::string shortExpr(const Expr& e) {
  std::string s = printExpr(e);
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

class Checker {
 public:
  Checker(Program& p, const Overrides& ov, DiagnosticSink& d) : prog_(p), overrides_(ov), diags_(d) {}

  void run() {
    declare();
    applyOverrides();
    resolveShapes();
    checkBody();
    checkCompleteness();
    warnUnused();
  }

 private:
  // ---- declarations -------------------------------------------------------------------------

  static SymKind kindOf(Stmt::Kind k) {
    switch (k) {
      case Stmt::Kind::Dim: return SymKind::Dim;
      case Stmt::Kind::Input: return SymKind::Input;
      case Stmt::Kind::Noise: return SymKind::Noise;
      case Stmt::Kind::State: return SymKind::State;
      case Stmt::Kind::Param: return SymKind::Param;
      case Stmt::Kind::Const: return SymKind::Const;
      case Stmt::Kind::Output: return SymKind::Output;
      case Stmt::Kind::Equation: return SymKind::Intermediate;
    }
    return SymKind::Intermediate;
  }

  // Registers every declared name (not intermediates: they come into being at their equation, so
  // that use-before-definition can be told apart from an unknown name).
  void declare() {
    for (const Stmt& s : prog_.ast.stmts) {
      if (s.kind == Stmt::Kind::Equation) {
        if (!s.primed) intermediateLines_.emplace(s.name, s.loc);
        continue;
      }
      if (auto it = prog_.byName.find(s.name); it != prog_.byName.end()) {
        const Symbol& prev = prog_.symbols[it->second];
        error(Code::E201, s.loc,
              "'" + s.name + "' is already declared as " + aKind(prev.kind) + " at line " +
                  std::to_string(prev.stmt->loc.line));
        continue;
      }
      Symbol sym{kindOf(s.kind), s.name, {}, &s, 0};
      prog_.byName[s.name] = prog_.symbols.size();
      prog_.symbols.push_back(sym);
    }
  }

  void applyOverrides() {
    for (const auto& [name, value] : overrides_) {
      const Symbol* sym = prog_.find(name);
      if (!sym) {
        error(Code::E401, {0, 0},
              "-D " + name + ": the cell has no dim or const named '" + name + "'" + suggestion(name));
        continue;
      }
      if (sym->kind != SymKind::Dim && sym->kind != SymKind::Const) {
        error(Code::E401, {0, 0},
              "-D " + name + ": '" + name + "' is " + aKind(sym->kind) + "; only dims and consts can be overridden");
        continue;
      }
      if (!std::isfinite(value)) {
        error(Code::E401, {0, 0}, "-D " + name + ": the value must be a finite number");
        continue;
      }
      Stmt& s = const_cast<Stmt&>(*sym->stmt);
      if (sym->kind == SymKind::Const && s.shape && !s.shape->empty()) {
        error(Code::E401, {0, 0}, "-D " + name + ": const '" + name + "' is not a scalar");
        continue;
      }
      auto num = std::make_shared<Expr>();
      num->kind = Expr::Kind::Number;
      num->number = value;
      num->loc = s.value ? s.value->loc : s.loc;
      s.value = num;
    }
  }

  // Dims first (in order, each may use earlier ones), then every declared shape.
  void resolveShapes() {
    for (Symbol& sym : prog_.symbols) {
      if (sym.kind != SymKind::Dim) continue;
      std::optional<int64_t> v = evalSize(*sym.stmt->value);
      if (v && *v <= 0) {
        error(Code::E400, sym.stmt->value->loc,
              "dim " + sym.name + " must be a positive integer, got " + std::to_string(*v));
        v = 1;
      }
      if (v && *v > kMaxSize) {
        error(Code::E400, sym.stmt->value->loc,
              "dim " + sym.name + " = " + std::to_string(*v) + " is too large (at most " + std::to_string(kMaxSize) + ")");
        v = 1;
      }
      sym.dimValue = v.value_or(1);
      definedDims_.insert(sym.name);
    }
    for (Symbol& sym : prog_.symbols) {
      if (sym.kind == SymKind::Dim) continue;
      bool batched = sym.kind == SymKind::Input || sym.kind == SymKind::Noise ||
                     sym.kind == SymKind::State || sym.kind == SymKind::Output;
      sym.shape.batched = batched;
      if (sym.stmt->shape) sym.shape.dims = evalShape(*sym.stmt->shape);
    }
  }

  std::vector<int64_t> evalShape(const std::vector<ExprPtr>& shape) {
    std::vector<int64_t> dims;
    if (shape.size() > 2)
      error(Code::E304, shape[2]->loc, "values have at most 2 dimensions (besides the batch)");
    for (const ExprPtr& d : shape) {
      std::optional<int64_t> v = evalSize(*d);
      if (v && *v <= 0) {
        error(Code::E400, d->loc, "a size must be positive, got " + std::to_string(*v));
        v = 1;
      }
      dims.push_back(v.value_or(1));
    }
    int64_t numel = 1;
    for (int64_t d : dims) numel *= d;  // each d <= kMaxSize, rank <= 2: no overflow
    if (numel > kMaxSize) {
      error(Code::E400, shape[0]->loc,
            "a value of " + std::to_string(numel) + " elements is too large (at most " +
                std::to_string(kMaxSize) + " per batch element)");
      return std::vector<int64_t>(dims.size(), 1);
    }
    return dims;
  }

  // Integer arithmetic on numbers and dims. nullopt after reporting an error.
  std::optional<int64_t> evalSize(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Number:
        if (e.number != std::floor(e.number)) {
          error(Code::E400, e.loc, "a size must be an integer, got " + shortExpr(e));
          return std::nullopt;
        }
        if (std::fabs(e.number) > kMaxSize) {
          error(Code::E400, e.loc, "size " + shortExpr(e) + " is too large (at most " + std::to_string(kMaxSize) + ")");
          return std::nullopt;
        }
        return static_cast<int64_t>(e.number);
      case Expr::Kind::Name: {
        const Symbol* sym = prog_.find(e.name);
        if (!sym) {
          error(Code::E200, e.loc, "unknown dim '" + e.name + "'" + suggestion(e.name));
          return std::nullopt;
        }
        if (sym->kind != SymKind::Dim || e.primed) {
          error(Code::E212, e.loc,
                "a size can only use numbers and dims; '" + e.name + "' is " + aKind(sym->kind));
          return std::nullopt;
        }
        if (!definedDims_.count(e.name)) {
          error(Code::E207, e.loc, "dim '" + e.name + "' is used before its declaration");
          return std::nullopt;
        }
        return sym->dimValue;
      }
      case Expr::Kind::Neg: {
        auto v = evalSize(*e.args[0]);
        return v ? std::optional<int64_t>(-*v) : std::nullopt;
      }
      case Expr::Kind::Binary: {
        auto a = evalSize(*e.args[0]), b = evalSize(*e.args[1]);
        if (!a || !b) return std::nullopt;
        if (std::llabs(*a) > kMaxSize || std::llabs(*b) > kMaxSize) {
          error(Code::E400, e.loc, "size too large (at most " + std::to_string(kMaxSize) + ")");
          return std::nullopt;
        }
        switch (e.op) {
          case '+': return *a + *b;
          case '-': return *a - *b;
          case '*': return *a * *b;
          case '/':
            if (*b == 0 || *a % *b != 0) {
              error(Code::E400, e.loc,
                    "size " + std::to_string(*a) + " / " + std::to_string(*b) +
                        " is not a whole number");
              return std::nullopt;
            }
            return *a / *b;
          default:
            error(Code::E212, e.loc, "operator " + binaryOpText(e.op) + " is not allowed in a size");
            return std::nullopt;
        }
      }
      default:
        error(Code::E212, e.loc, "a size can only use numbers, dims and + - * /");
        return std::nullopt;
    }
  }

  // ---- the body: consts, params, states and equations, in source order ------------------------

  void checkBody() {
    for (Stmt& s : prog_.ast.stmts) {
      switch (s.kind) {
        case Stmt::Kind::Const: checkConst(s); break;
        case Stmt::Kind::Param: checkParam(s); break;
        case Stmt::Kind::Noise: checkNoise(s); break;
        case Stmt::Kind::State: checkState(s); break;
        case Stmt::Kind::Output: checkOutput(s); break;
        case Stmt::Kind::Equation: checkEquation(s); break;
        default: break;
      }
    }
  }

  Symbol* sym(const std::string& name) {
    auto it = prog_.byName.find(name);
    return it == prog_.byName.end() ? nullptr : &prog_.symbols[it->second];
  }

  void checkConst(Stmt& s) {
    Symbol* c = sym(s.name);
    if (!c || c->stmt != &s) return;  // duplicate, already reported
    contextShape_ = s.shape ? std::optional<std::vector<int64_t>>(c->shape.dims) : std::nullopt;
    std::optional<Shape> v = infer(*s.value, Ctx::Const);
    contextShape_.reset();
    if (!v) poisoned_.insert(s.name);
    // 1/0 or 10^400 would reach the kernel as inf or NaN: refused here, as -D refuses them.
    if (std::optional<double> x = v ? constValue(*s.value) : std::nullopt; x && !std::isfinite(*x)) {
      error(Code::E403, s.value->loc,
            "const " + s.name + " = " + shortExpr(*s.value) + " is " + printNumber(*x) +
                ", not a finite number");
      poisoned_.insert(s.name);
    }
    if (v) {
      if (!s.shape) {
        c->shape = *v;
      } else if (!broadcastsTo(v->dims, c->shape.dims)) {
        error(Code::E302, s.value->loc,
              "const " + s.name + " is declared " + dimsStr(c->shape.dims) + " but its value is " +
                  v->str());
      }
    }
    definedConsts_.insert(s.name);
  }

  void checkParam(Stmt& s) {
    Symbol* p = sym(s.name);
    if (!p || p->stmt != &s) return;
    bool sawBase = false;
    for (InitCall& call : s.init) {
      auto it = initializers().find(call.fn);
      if (it == initializers().end()) {
        std::string known;
        for (auto& [n, info] : initializers()) known += (known.empty() ? "" : ", ") + n;
        error(Code::E210, call.loc, "unknown initializer '" + call.fn + "' (known: " + known + ")");
        continue;
      }
      const InitInfo& info = it->second;
      if (info.transform && !sawBase)
        error(Code::E210, call.loc, "'" + call.fn + "' rescales a matrix and must follow an initializer, as in gamma(2, 0.05) | " + call.fn + "(...)");
      if (!info.transform && sawBase)
        error(Code::E210, call.loc, "only one base initializer; transforms follow '|'");
      sawBase = sawBase || !info.transform;
      checkInitArgs(s, *p, call, info);
    }
  }

  // `noise xi[n]` is standard normal; `noise keep[n] ~ dropout()` is an inverted-dropout mask
  // whose probability the trainer sets. Neither takes arguments: a scale belongs in the equations
  // (sigma * xi), the dropout probability in the experiment (train.dropout).
  void checkNoise(const Stmt& s) {
    if (s.init.empty()) return;
    const InitCall& call = s.init[0];
    if (s.init.size() > 1) {
      error(Code::E215, s.init[1].loc, "noise " + s.name + " takes one distribution; nothing follows '|'");
    } else if (call.fn != "normal" && call.fn != "dropout") {
      error(Code::E215, call.loc,
            "unknown noise distribution '" + call.fn + "' (known: normal(), dropout())");
    } else if (!call.args.empty()) {
      error(Code::E215, call.args[0].loc,
            call.fn == "normal"
                ? std::string("normal() takes no arguments: noise is N(0, 1); scale it in the equations (sigma * ") + s.name + ")"
                : std::string("dropout() takes no arguments: its probability is the experiment's train.dropout"));
    }
  }

  void checkInitArgs(const Stmt& s, const Symbol& p, InitCall& call, const InitInfo& info) {
    const int n = static_cast<int>(call.args.size());
    if (n < info.required || n > static_cast<int>(info.params.size())) {
      error(Code::E209, call.loc,
            call.fn + "() takes " + arityText(info.required, static_cast<int>(info.params.size())) +
                ", got " + std::to_string(n));
      return;
    }
    std::vector<double> values(info.params.size(), NAN);
    for (int i = 0; i < n; ++i) {
      Arg& a = call.args[i];
      int slot = i;
      if (!a.key.empty()) {
        auto it = std::find(info.params.begin(), info.params.end(), a.key);
        if (it == info.params.end()) {
          error(Code::E209, a.loc, call.fn + "() has no argument named '" + a.key + "'");
          continue;
        }
        slot = static_cast<int>(it - info.params.begin());
      }
      if (info.params[slot] == "of") {  // spectral_radius(r, of = W_eff): a matrix computed from p
        if (a.value->kind != Expr::Kind::Name || a.value->primed) {
          error(Code::E214, a.loc, "'of' names the effective matrix, e.g. W_rec");
          continue;
        }
        spectralOf_.push_back({&call, &a, &s});
        continue;
      }
      std::optional<Shape> sh = infer(*a.value, Ctx::Const);
      if (!sh) continue;
      if (sh->rank() != 0) {
        error(Code::E304, a.loc, "initializer arguments are scalars, got " + sh->str());
        continue;
      }
      values[slot] = constValue(*a.value).value_or(NAN);
    }
    auto bad = [&](int slot, const std::string& why) {
      SourceLoc loc = slot < n ? call.args[slot].loc : call.loc;
      error(Code::E402, loc, call.fn + "(): " + why);
    };
    const std::string& fn = call.fn;
    if (fn == "uniform" && values[0] > values[1]) bad(1, "hi must not be below lo");
    if (fn == "normal" && values[1] < 0) bad(1, "std must be non-negative");
    if (fn == "gamma" && !(values[0] > 0)) bad(0, "shape k must be positive");
    if (fn == "gamma" && !(values[1] > 0)) bad(1, "scale theta must be positive");
    if (fn == "spectral_radius" && !(values[0] > 0)) bad(0, "radius must be positive");
    if (fn == "balance_ei" && !(values[0] > 0 && values[0] < 1)) bad(0, "the excitatory fraction f must be in (0, 1)");
    if (fn == "balance_ei" && p.shape.rank() != 2)
      error(Code::E304, call.loc, fn + "() needs a matrix, " + s.name + " is " + p.shape.str());
    if ((fn == "orthogonal" || fn == "spectral_radius") && p.shape.rank() != 2)
      error(Code::E304, call.loc, fn + "() needs a matrix, " + s.name + " is " + p.shape.str());
    if (fn == "spectral_radius" && p.shape.rank() == 2 && p.shape.dims[0] != p.shape.dims[1])
      error(Code::E304, call.loc, fn + "() needs a square matrix, " + s.name + " is " + p.shape.str());
    if ((fn == "glorot" || fn == "lecun_normal") && p.shape.rank() == 0)
      error(Code::E304, call.loc, fn + "() needs a vector or matrix to know its fan-in");
  }

  // The value of a compile-time scalar (numbers, dims, scalar consts), when it can be folded.
  std::optional<double> constValue(const Expr& e) {
    // A const whose value names itself (directly or not) has been reported; never loop on it.
    if (constDepth_ > 64) return std::nullopt;
    struct Depth {
      int& d;
      explicit Depth(int& x) : d(++x) {}
      ~Depth() { --d; }
    } depth(constDepth_);
    switch (e.kind) {
      case Expr::Kind::Number: return e.number;
      case Expr::Kind::Name: {
        const Symbol* s = prog_.find(e.name);
        if (!s) return std::nullopt;
        if (s->kind == SymKind::Dim) return static_cast<double>(s->dimValue);
        if (s->kind == SymKind::Const && s->shape.rank() == 0 && !poisoned_.count(s->name))
          return constValue(*s->stmt->value);
        return std::nullopt;
      }
      case Expr::Kind::Neg: {
        auto v = constValue(*e.args[0]);
        return v ? std::optional<double>(-*v) : std::nullopt;
      }
      case Expr::Kind::Binary: {
        auto a = constValue(*e.args[0]), b = constValue(*e.args[1]);
        if (!a || !b) return std::nullopt;
        switch (e.op) {
          case '+': return *a + *b;
          case '-': return *a - *b;
          case '*': return *a * *b;
          case '/': return *a / *b;
          case '^': return std::pow(*a, *b);
          case '>': return *a > *b ? 1.0 : 0.0;
          case '<': return *a < *b ? 1.0 : 0.0;
          case 'G': return *a >= *b ? 1.0 : 0.0;
          case 'L': return *a <= *b ? 1.0 : 0.0;
          default: return std::nullopt;
        }
      }
      default: return std::nullopt;
    }
  }

  void checkState(Stmt& s) {
    Symbol* st = sym(s.name);
    if (!st || st->stmt != &s) return;
    if (!s.value) return;  // starts at zero
    const Expr& v = *s.value;
    if (v.kind == Expr::Kind::Number) return;
    if (v.kind == Expr::Kind::Name && !v.primed) {
      const Symbol* p = prog_.find(v.name);
      if (!p) {
        error(Code::E200, v.loc, "unknown name '" + v.name + "'" + suggestion(v.name));
        return;
      }
      if (p->kind != SymKind::Param) {
        error(Code::E211, v.loc,
              "state " + s.name + " starts from '" + v.name + "', " + aKind(p->kind) +
                  "; use a number or a param");
        return;
      }
      used_.insert(p->name);
      if (p->shape.dims != st->shape.dims)
        error(Code::E302, v.loc,
              "state " + s.name + " is " + dimsStr(st->shape.dims) + " but its initial value " +
                  v.name + " is " + p->shape.str());
      const_cast<Expr&>(v).shape = p->shape;
      return;
    }
    error(Code::E211, v.loc, "a state's initial value must be a number or a param");
  }

  void checkOutput(Stmt& s) {
    std::optional<Shape> v = infer(*s.value, Ctx::Equation);
    Symbol* o = sym(s.name);
    if (!o || o->stmt != &s) return;
    if (!v) poisoned_.insert(s.name);
    if (v) {
      if (s.shape && v->dims != o->shape.dims)
        error(Code::E302, s.value->loc,
              "output " + s.name + " is declared " + dimsStr(o->shape.dims) + " but its value is " +
                  v->str());
      o->shape = Shape{true, v->dims};
    }
    definedOutputs_.insert(s.name);
  }

  void checkEquation(Stmt& s) {
    if (s.derivative) {
      const Symbol* dt = sym("dt");
      if (!dt || dt->kind != SymKind::Const || !dt->shape.dims.empty()) {
        error(Code::E216, s.dtLoc,
              "d(" + s.name + ")/dt needs a scalar const dt, the time step (e.g. const dt = 10); " +
                  (dt ? "dt is " + aKind(dt->kind) + " of shape " + dt->shape.str() : std::string("none is declared")));
        // The state has its update (so no E203 or E207 follows), and what it reads is used.
        if (const Symbol* target = sym(s.name); target && target->kind == SymKind::State)
          primedAt_.emplace(s.name, s.loc);
        infer(*s.rate, Ctx::Equation);
        return;
      }
    }
    std::optional<Shape> v = infer(*s.value, Ctx::Equation);
    Symbol* target = sym(s.name);
    if (s.primed) {
      if (!target || target->kind != SymKind::State) {
        std::string what = target ? aKind(target->kind)
                           : intermediateLines_.count(s.name) ? "an intermediate"
                                                              : "not declared";
        error(Code::E205, s.loc, s.name + "' updates a state, but '" + s.name + "' is " + what);
        return;
      }
      auto [it, fresh] = primedAt_.emplace(s.name, s.loc);
      if (!fresh) {
        error(Code::E204, s.loc,
              "state " + s.name + " already has an update at line " +
                  std::to_string(it->second.line));
        return;
      }
      if (v && v->dims != target->shape.dims)
        error(Code::E302, s.value->loc,
              s.name + "' is " + v->str() + " but state " + s.name + " is " + target->shape.str());
      return;
    }
    if (target) {
      if (target->kind == SymKind::State) attempted_.insert(s.name);
      std::string hint = target->kind == SymKind::State ? " (did you mean " + s.name + "' = ...?)" : "";
      error(Code::E202, s.loc,
            "cannot assign to '" + s.name + "', " + aKind(target->kind) + hint);
      return;
    }
    if (auto it = intermediates_.find(s.name); it != intermediates_.end()) {
      error(Code::E206, s.loc,
            "'" + s.name + "' is already defined at line " +
                std::to_string(it->second.stmt->loc.line));
      return;
    }
    if (!v) poisoned_.insert(s.name);
    Symbol inter{SymKind::Intermediate, s.name, v.value_or(Shape{}), &s, 0};
    intermediates_.emplace(s.name, inter);
    intermediateOrder_.push_back(s.name);
  }

  // ---- expressions ---------------------------------------------------------------------------

  std::optional<Shape> infer(Expr& e, Ctx ctx) {
    std::optional<Shape> s = inferImpl(e, ctx);
    if (s) e.shape = *s;
    return s;
  }

  std::optional<Shape> inferImpl(Expr& e, Ctx ctx) {
    switch (e.kind) {
      case Expr::Kind::Number: return Shape{};
      case Expr::Kind::Name: return inferName(e, ctx);
      case Expr::Kind::Neg: return infer(*e.args[0], ctx);
      case Expr::Kind::Binary: return inferBinary(e, ctx);
      case Expr::Kind::Call: return inferCall(e, ctx);
      case Expr::Kind::Index: return inferIndex(e, ctx);
    }
    return std::nullopt;
  }

  std::optional<Shape> inferName(Expr& e, Ctx ctx) {
    if (e.primed) {
      Symbol* s = sym(e.name);
      if (!s || s->kind != SymKind::State) {
        error(Code::E205, e.loc, "'" + e.name + "'' names the next value of a state, but '" +
                                      e.name + "' is not a state");
        return std::nullopt;
      }
      if (ctx != Ctx::Equation) return notCompileTime(e, "state");
      if (!primedAt_.count(e.name)) {
        error(Code::E207, e.loc, e.name + "' is used before its equation");
        return std::nullopt;
      }
      return s->shape;
    }
    if (poisoned_.count(e.name)) {  // its definition failed and was reported: no follow-on errors
      used_.insert(e.name);
      return std::nullopt;
    }
    if (Symbol* s = sym(e.name)) {
      used_.insert(e.name);
      switch (s->kind) {
        case SymKind::Dim: return Shape{};
        case SymKind::Const:
          if (!definedConsts_.count(e.name)) {
            error(Code::E207, e.loc, "const '" + e.name + "' is used before its declaration");
            return std::nullopt;
          }
          return s->shape;
        case SymKind::Output:
          if (ctx != Ctx::Equation) return notCompileTime(e, "output");
          if (!definedOutputs_.count(e.name)) {
            error(Code::E207, e.loc, "output '" + e.name + "' is used before its definition");
            return std::nullopt;
          }
          return s->shape;
        default:
          if (ctx != Ctx::Equation) return notCompileTime(e, symKindName(s->kind));
          return s->shape;
      }
    }
    if (auto it = intermediates_.find(e.name); it != intermediates_.end()) {
      if (ctx != Ctx::Equation) return notCompileTime(e, "intermediate");
      used_.insert(e.name);
      return it->second.shape;
    }
    if (auto it = intermediateLines_.find(e.name); it != intermediateLines_.end()) {
      error(Code::E207, e.loc,
            "'" + e.name + "' is used before its definition at line " +
                std::to_string(it->second.line));
      return std::nullopt;
    }
    if (functions().count(e.name)) {
      error(Code::E214, e.loc, "'" + e.name + "' is a function; call it as " + e.name + "(...)");
      return std::nullopt;
    }
    if (unknownReported_.insert({e.name, e.loc.line}).second)
      error(Code::E200, e.loc, "unknown name '" + e.name + "'" + suggestion(e.name));
    return std::nullopt;
  }

  std::optional<Shape> notCompileTime(const Expr& e, const std::string& kind) {
    error(Code::E212, e.loc,
          "'" + e.name + "' is " + article(kind) + kind + "; only numbers, dims and consts are known at compile time");
    return std::nullopt;
  }

  std::optional<std::vector<int64_t>> broadcast(const std::vector<int64_t>& a,
                                                const std::vector<int64_t>& b) {
    std::vector<int64_t> out(std::max(a.size(), b.size()));
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
      int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
      if (da != db && da != 1 && db != 1) return std::nullopt;
      out[out.size() - 1 - i] = std::max(da, db);
    }
    return out;
  }

  bool broadcastsTo(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
    auto b = broadcast(from, to);
    return b && *b == to;
  }

  std::optional<Shape> elementwise(const Expr& at, const std::vector<const Expr*>& operands,
                                   const std::string& what) {
    Shape out;
    for (size_t i = 0; i < operands.size(); ++i) {
      const Shape& s = operands[i]->shape;
      auto b = broadcast(out.dims, s.dims);
      if (!b) {
        std::string sides;
        for (size_t j = 0; j <= i; ++j)
          sides += (j ? " and " : "") + shortExpr(*operands[j]) + " " + operands[j]->shape.str();
        error(Code::E300, at.loc, what + ": shapes do not broadcast: " + sides);
        return std::nullopt;
      }
      out.dims = *b;
      out.batched = out.batched || s.batched;
    }
    return out;
  }

  std::optional<Shape> inferBinary(Expr& e, Ctx ctx) {
    auto a = infer(*e.args[0], ctx);
    auto b = infer(*e.args[1], ctx);
    if (!a || !b) return std::nullopt;
    if (e.op != '@')
      return elementwise(e, {e.args[0].get(), e.args[1].get()}, "'" + binaryOpText(e.op) + "'");
    return matmul(e, *e.args[0], *e.args[1]);
  }

  std::optional<Shape> matmul(const Expr& at, const Expr& l, const Expr& r) {
    const Shape &a = l.shape, &b = r.shape;
    auto fail = [&](const std::string& why) -> std::optional<Shape> {
      error(Code::E301, at.loc,
            "matrix product " + a.str() + " @ " + b.str() + " (" + shortExpr(l) + " @ " +
                shortExpr(r) + "): " + why);
      return std::nullopt;
    };
    if (a.rank() == 0 || b.rank() == 0) return fail("both sides need at least one dimension; use * for scaling");
    int64_t ka = a.dims.back();
    int64_t kb = b.rank() == 1 ? b.dims[0] : b.dims[0];
    if (ka != kb)
      return fail("inner sizes " + std::to_string(ka) + " and " + std::to_string(kb) + " differ");
    Shape out;
    out.batched = a.batched || b.batched;
    if (a.rank() == 2) out.dims.push_back(a.dims[0]);
    if (b.rank() == 2) out.dims.push_back(b.dims[1]);
    return out;
  }

  std::optional<Shape> inferCall(Expr& e, Ctx ctx) {
    auto it = functions().find(e.name);
    if (it == functions().end()) {
      std::string hint = initializers().count(e.name) ? " ('" + e.name + "' is an initializer: write param ... ~ " + e.name + "(...))" : suggestionAmong(e.name, functionNames());
      error(Code::E208, e.loc, "unknown function '" + e.name + "'" + hint);
      for (Arg& a : e.callArgs) infer(*a.value, ctx);  // their names are used, and checked
      return std::nullopt;
    }
    const FnInfo& fn = it->second;
    const int n = static_cast<int>(e.callArgs.size());
    if (n < fn.minArgs || (fn.maxArgs >= 0 && n > fn.maxArgs)) {
      error(Code::E209, e.loc,
            e.name + "() takes " + arityText(fn.minArgs, fn.maxArgs) + ", got " + std::to_string(n));
      return std::nullopt;
    }
    for (const Arg& a : e.callArgs)
      if (!a.key.empty()) {
        // heaviside(x, NAME = k) names its surrogate gradient; nothing else takes a named argument.
        const bool surrogate = std::any_of(std::begin(kSurrogateNames), std::end(kSurrogateNames),
                                           [&](const char* s) { return a.key == s; });
        if (e.name == "heaviside" && &a == &e.callArgs[1] && surrogate) continue;
        if (e.name == "heaviside") {
          std::vector<std::string> names(std::begin(kSurrogateNames), std::end(kSurrogateNames));
          const std::string near = closestName(a.key, names);
          error(Code::E209, a.loc,
                "heaviside(x, NAME = k) names its surrogate gradient as its second argument: fast_sigmoid, "
                "sigmoid, atan or triangle; '" + a.key + "' is " + (&a == &e.callArgs[1] ? "none of them" : "not the second argument") +
                    (near.empty() || &a != &e.callArgs[1] ? "" : " (did you mean " + near + "?)"));
        } else {
          error(Code::E209, a.loc, e.name + "() takes no named arguments");
        }
        return std::nullopt;
      }
    const std::string& f = e.name;
    if (f == "dale" || f == "eye") return inferGenerator(e, ctx);
    if (f == "sum" || f == "mean" || f == "amax") return inferReduce(e, ctx);
    std::vector<const Expr*> ops;
    for (Arg& a : e.callArgs) {
      if (!infer(*a.value, ctx)) return std::nullopt;
      ops.push_back(a.value.get());
    }
    if (f == "outer") {
      for (const Expr* o : ops)
        if (o->shape.rank() != 1) {
          error(Code::E304, o->loc, "outer() takes two vectors, got " + o->shape.str());
          return std::nullopt;
        }
      return Shape{ops[0]->shape.batched || ops[1]->shape.batched,
                   {ops[0]->shape.dims[0], ops[1]->shape.dims[0]}};
    }
    if (f == "transpose") {
      const Shape& s = ops[0]->shape;
      if (s.rank() != 2) {
        error(Code::E304, ops[0]->loc, "transpose() takes a matrix, got " + s.str());
        return std::nullopt;
      }
      return Shape{s.batched, {s.dims[1], s.dims[0]}};
    }
    if (f == "concat") return inferConcat(e, ops);
    if (f == "softmax" || f == "log_softmax" || f == "logsumexp") {  // over the last axis
      Shape s = ops[0]->shape;
      if (s.rank() == 0) {
        error(Code::E304, ops[0]->loc, f + "() normalizes over the last axis of a vector or matrix, got a scalar");
        return std::nullopt;
      }
      if (f == "logsumexp") s.dims.pop_back();
      return s;
    }
    if (f == "heaviside" && ops.size() == 2) {
      // k, the slope of the surrogate gradient 1 / (1 + k|x|)^2: a positive compile-time number.
      const Expr& k = *ops[1];
      if (k.shape.rank() != 0 || k.shape.batched || !constValue(k)) {
        error(Code::E212, k.loc,
              "heaviside(x, k): the surrogate's k must be a number or a scalar const, got " +
                  shortExpr(k) + " " + k.shape.str());
        return std::nullopt;
      }
      if (double kv = *constValue(k); !(kv > 0 && std::isfinite(kv))) {
        error(Code::E402, k.loc, "heaviside(x, k): the surrogate's k must be positive, got " + printNumber(kv));
        return std::nullopt;
      }
      return ops[0]->shape;
    }
    return elementwise(e, ops, f + "()");
  }

  std::optional<Shape> inferConcat(const Expr& e, const std::vector<const Expr*>& ops) {
    const Shape& first = ops[0]->shape;
    if (first.rank() == 0) {
      error(Code::E304, ops[0]->loc, "concat() joins vectors or matrices, got a scalar");
      return std::nullopt;
    }
    Shape out = first;
    for (size_t i = 1; i < ops.size(); ++i) {
      const Shape& s = ops[i]->shape;
      bool ok = s.rank() == first.rank() &&
                std::equal(s.dims.begin(), s.dims.end() - 1, first.dims.begin());
      if (!ok) {
        error(Code::E305, ops[i]->loc,
              "concat() joins along the last axis; " + shortExpr(*ops[0]) + " " + first.str() +
                  " and " + shortExpr(*ops[i]) + " " + s.str() + " differ elsewhere");
        return std::nullopt;
      }
      out.dims.back() += s.dims.back();
      out.batched = out.batched || s.batched;
    }
    return out;
  }

  std::optional<Shape> inferReduce(Expr& e, Ctx ctx) {
    auto s = infer(*e.callArgs[0].value, ctx);
    if (!s) return std::nullopt;
    if (e.callArgs.size() == 1) return Shape{s->batched, {}};
    std::optional<int64_t> axis = evalSize(*e.callArgs[1].value);
    if (!axis) return std::nullopt;
    e.callArgs[1].value->shape = Shape{};
    if (*axis < 0 || *axis >= s->rank()) {
      error(Code::E303, e.callArgs[1].loc,
            "axis " + std::to_string(*axis) + " is out of range for " + s->str() +
                " (axes count from 0, the batch axis excluded)");
      return std::nullopt;
    }
    Shape out = *s;
    out.dims.erase(out.dims.begin() + *axis);
    return out;
  }

  std::optional<Shape> inferGenerator(Expr& e, Ctx ctx) {
    Arg& a = e.callArgs[0];
    if (e.name == "eye") {
      std::optional<int64_t> n = evalSize(*a.value);
      if (!n) return std::nullopt;
      a.value->shape = Shape{};
      if (*n <= 0) {
        error(Code::E400, a.loc, "eye() needs a positive size");
        return std::nullopt;
      }
      return Shape{false, {*n, *n}};
    }
    // dale(f): +1 for the first floor(f n) entries, -1 for the rest; n from the declared shape.
    if (ctx != Ctx::Const || !contextShape_ || contextShape_->size() != 1) {
      error(Code::E212, e.loc, "dale(f) takes its size from a const with one dimension, as in const ei[n] = dale(0.8)");
      return std::nullopt;
    }
    if (!infer(*a.value, Ctx::Const)) return std::nullopt;
    std::optional<double> f = constValue(*a.value);
    if (!f || !(*f > 0 && *f < 1)) {
      error(Code::E402, a.loc, "dale(f): the excitatory fraction f must be a number in (0, 1)");
      return std::nullopt;
    }
    return Shape{false, *contextShape_};
  }

  std::optional<Shape> inferIndex(Expr& e, Ctx ctx) {
    auto s = infer(*e.args[0], ctx);
    if (!s) return std::nullopt;
    if (static_cast<int>(e.indices.size()) > s->rank()) {
      error(Code::E304, e.loc,
            std::to_string(e.indices.size()) + " indices for a value of shape " + s->str());
      return std::nullopt;
    }
    Shape out{s->batched, {}};
    for (size_t ax = 0; ax < s->dims.size(); ++ax) {
      int64_t d = s->dims[ax];
      if (ax >= e.indices.size()) {
        out.dims.push_back(d);
        continue;
      }
      IndexItem& it = e.indices[ax];
      if (!it.isSlice) {
        auto i = evalSize(*it.at);
        if (!i) return std::nullopt;
        it.at->shape = Shape{};
        if (*i < 0 || *i >= d) {
          error(Code::E303, it.loc,
                "index " + std::to_string(*i) + " is out of range for axis " + std::to_string(ax) +
                    " of size " + std::to_string(d));
          return std::nullopt;
        }
        continue;
      }
      std::optional<int64_t> lo = 0, hi = d;
      if (it.lo && (lo = evalSize(*it.lo))) it.lo->shape = Shape{};
      if (it.hi && (hi = evalSize(*it.hi))) it.hi->shape = Shape{};
      if (!lo || !hi) return std::nullopt;
      if (*lo < 0 || *hi > d || *lo >= *hi) {
        error(Code::E303, it.loc,
              "slice " + std::to_string(*lo) + ":" + std::to_string(*hi) +
                  " is empty or out of range for axis " + std::to_string(ax) + " of size " +
                  std::to_string(d));
        return std::nullopt;
      }
      out.dims.push_back(*hi - *lo);
    }
    return out;
  }

  // ---- whole-cell rules ----------------------------------------------------------------------

  void checkCompleteness() {
    // spectral_radius(r, of = W): W must be a matrix intermediate computed from the param.
    for (auto& [call, arg, stmt] : spectralOf_) {
      const std::string& name = arg->value->name;
      auto it = intermediates_.find(name);
      const Symbol* p = prog_.find(stmt->name);
      if (name == stmt->name) continue;  // the raw matrix itself
      if (it == intermediates_.end()) {
        error(Code::E200, arg->loc,
              "spectral_radius(): '" + name + "' is not an intermediate of this cell" +
                  suggestion(name));
        continue;
      }
      used_.insert(name);
      if (it->second.shape.batched) {
        error(Code::E212, arg->loc,
              "spectral_radius(): " + name + " depends on a state, input or noise; the effective matrix must be computed from params and consts only");
        continue;
      }
      if (p && it->second.shape.dims != p->shape.dims)
        error(Code::E302, arg->loc,
              "spectral_radius(): " + name + " is " + it->second.shape.str() + " but " +
                  stmt->name + " is " + p->shape.str());
    }
    bool anyState = false;
    for (const Symbol& s : prog_.symbols) {
      if (s.kind != SymKind::State) continue;
      anyState = true;
      if (!primedAt_.count(s.name) && !attempted_.count(s.name))
        error(Code::E203, s.stmt->loc, "state " + s.name + " has no update equation " + s.name + "' = ...");
    }
    if (!anyState)
      error(Code::E213, prog_.ast.loc, "cell " + prog_.ast.name + " declares no state");
    // Intermediates become symbols, in definition order, for the IR builder and the printer.
    for (const std::string& name : intermediateOrder_) {
      prog_.byName[name] = prog_.symbols.size();
      prog_.symbols.push_back(intermediates_.at(name));
    }
  }

  void warnUnused() {
    for (const Symbol& s : prog_.symbols) {
      if (used_.count(s.name)) continue;
      if (s.kind == SymKind::Param)
        diags_.report(Code::W500, s.stmt->loc, "param " + s.name + " is never used");
      else if (s.kind == SymKind::Input || s.kind == SymKind::Noise ||
               s.kind == SymKind::Intermediate || s.kind == SymKind::Const)
        diags_.report(Code::W501, s.stmt->loc,
                      std::string(symKindName(s.kind)) + " " + s.name + " is never used");
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  static std::string arityText(int lo, int hi) {
    auto args = [](int n) { return std::to_string(n) + (n == 1 ? " argument" : " arguments"); };
    if (hi < 0) return "at least " + args(lo);
    if (lo == hi) return args(lo);
    return std::to_string(lo) + " to " + args(hi);
  }

  std::vector<std::string> functionNames() const {
    std::vector<std::string> names;
    for (auto& [n, info] : functions()) names.push_back(n);
    return names;
  }

  std::string suggestion(const std::string& name) const {
    std::vector<std::string> names;
    for (const Symbol& s : prog_.symbols) names.push_back(s.name);
    for (auto& [n, s] : intermediates_) names.push_back(n);
    return suggestionAmong(name, names);
  }

  static std::string suggestionAmong(const std::string& name, const std::vector<std::string>& names) {
    std::string best = closestName(name, names);
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

  void error(Code code, SourceLoc loc, std::string msg) { diags_.report(code, loc, std::move(msg)); }

  Program& prog_;
  const Overrides& overrides_;
  DiagnosticSink& diags_;
  std::set<std::string> definedDims_, definedConsts_, definedOutputs_, used_;
  std::set<std::string> poisoned_;   // names whose definition failed: uses stay silent
  std::set<std::string> attempted_;  // states assigned without a prime (E202 said it)
  std::set<std::pair<std::string, int>> unknownReported_;  // (name, line): one E200 each
  int constDepth_ = 0;
  std::map<std::string, SourceLoc> intermediateLines_;  // first definition line of each
  std::map<std::string, Symbol> intermediates_;
  std::vector<std::string> intermediateOrder_;
  std::map<std::string, SourceLoc> primedAt_;
  std::optional<std::vector<int64_t>> contextShape_;  // a const's declared shape, for dale()
  struct SpectralRef {
    InitCall* call;
    Arg* arg;
    const Stmt* stmt;
  };
  std::vector<SpectralRef> spectralOf_;
};

}  // namespace

std::optional<Program> check(CellAst ast, const Overrides& overrides, DiagnosticSink& diags) {
  Program prog;
  prog.ast = std::move(ast);
  size_t before = diags.errorCount();
  Checker(prog, overrides, diags).run();
  if (diags.errorCount() > before) return std::nullopt;
  return prog;
}

std::optional<Program> loadCell(const SourceFile& file, const Overrides& overrides,
                                DiagnosticSink& diags) {
  std::optional<CellAst> ast = parseCell(file, diags);
  if (!ast) return std::nullopt;
  return check(std::move(*ast), overrides, diags);
}

}  // namespace cellc
