// The typed program to the step graph: consts and dims fold to constants, intermediates are
// inlined as shared nodes, and every leaf becomes a slot of the layout.
#include <cmath>
#include <iterator>
#include <map>

#include "ir/Step.h"

namespace cellc::ir {

const char* roleName(Role r) {
  switch (r) {
    case Role::Param: return "param";
    case Role::State: return "state";
    case Role::Input: return "input";
    case Role::Noise: return "noise";
    case Role::Output: return "output";
  }
  return "?";
}

const std::vector<Slot>& Layout::of(Role r) const {
  switch (r) {
    case Role::Param: return params;
    case Role::State: return states;
    case Role::Input: return inputs;
    case Role::Noise: return noises;
    case Role::Output: return outputs;
  }
  return params;
}

const Slot* Layout::find(Role r, const std::string& name) const {
  for (const Slot& s : of(r))
    if (s.name == name) return &s;
  return nullptr;
}

bool Layout::hasDropout() const {
  for (const Slot& s : noises)
    if (s.dropout) return true;
  return false;
}

std::vector<NodeId> Step::forwardRoots() const {
  std::vector<NodeId> roots = stateNext;
  roots.insert(roots.end(), outputs.begin(), outputs.end());
  return roots;
}

namespace {

// Initializer argument names in declared order (mirrors sema's table).
const std::map<std::string, std::vector<std::string>>& initParams() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"zeros", {}}, {"ones", {}}, {"fill", {"value"}}, {"uniform", {"lo", "hi"}},
      {"normal", {"mean", "std"}}, {"glorot", {"gain"}}, {"lecun_normal", {}},
      {"orthogonal", {"gain"}}, {"gamma", {"k", "theta"}}, {"spectral_radius", {"radius", "of"}},
      {"balance_ei", {"f"}},
  };
  return m;
}

class Builder {
 public:
  Builder(const Program& p, Step& s) : prog_(p), step_(s), g_(s.g) {}

  void run() {
    makeSlots();
    for (const Stmt& st : prog_.ast.stmts) {
      g_.setLoc(st.loc);
      if (st.kind == Stmt::Kind::Equation) {
        NodeId v = expr(*st.value);
        if (st.primed) primed_[st.name] = v;
        else env_[st.name] = v;
        step_.named.push_back({st.name + (st.primed ? "'" : ""), v});
      } else if (st.kind == Stmt::Kind::Output) {
        env_[st.name] = expr(*st.value);
        step_.named.push_back({st.name, env_[st.name]});
      }
    }
    for (const Slot& s : step_.layout.states) step_.stateNext.push_back(fit(primed_.at(s.name), s.shape));
    for (const Slot& s : step_.layout.outputs) step_.outputs.push_back(fit(env_.at(s.name), s.shape));
    for (const Slot& p : step_.layout.params) {
      NodeId eff = -1;
      for (const InitStep& i : p.init)
        if (!i.of.empty()) eff = i.of == p.name ? env_.at(p.name) : env_.at(i.of);
      step_.effective.push_back(eff);
    }
  }

 private:
  void makeSlots() {
    Layout& L = step_.layout;
    auto add = [&](std::vector<Slot>& v, int64_t& total, Role role, Op op, const Symbol& sym) {
      Slot s{sym.name, role, sym.shape, total, sym.shape.numel(), sym.stmt->loc, {}, 0, -1, false};
      total += s.size;
      v.push_back(s);
      if (op != Op::Const) {
        g_.setLoc(sym.stmt->loc);
        env_[sym.name] = g_.leaf(op, static_cast<int64_t>(v.size() - 1), sym.shape);
      }
    };
    for (const Symbol& sym : prog_.symbols) {
      switch (sym.kind) {
        case SymKind::Param: add(L.params, L.paramSize, Role::Param, Op::Param, sym); break;
        case SymKind::State: add(L.states, L.stateSize, Role::State, Op::State, sym); break;
        case SymKind::Input: add(L.inputs, L.inputSize, Role::Input, Op::Input, sym); break;
        case SymKind::Noise: add(L.noises, L.noiseSize, Role::Noise, Op::Noise, sym); break;
        case SymKind::Output: add(L.outputs, L.outputSize, Role::Output, Op::Const, sym); break;
        default: break;
      }
    }
    for (size_t i = 0; i < L.params.size(); ++i) L.params[i].init = initSteps(*prog_.find(L.params[i].name)->stmt);
    for (Slot& s : L.noises) {
      const Stmt& st = *prog_.find(s.name)->stmt;
      s.dropout = !st.init.empty() && st.init[0].fn == "dropout";
    }
    for (Slot& s : L.states) {
      const Stmt& st = *prog_.find(s.name)->stmt;
      if (!st.value) continue;
      if (st.value->kind == Expr::Kind::Number) s.initValue = st.value->number;
      else for (size_t i = 0; i < L.params.size(); ++i)
          if (L.params[i].name == st.value->name) s.initParam = static_cast<int>(i);
    }
  }

  std::vector<InitStep> initSteps(const Stmt& st) {
    std::vector<InitStep> steps;
    for (const InitCall& call : st.init) {
      const std::vector<std::string>& names = initParams().at(call.fn);
      InitStep is{call.fn, std::vector<double>(names.size(), NAN), ""};
      for (size_t i = 0; i < call.args.size(); ++i) {
        const Arg& a = call.args[i];
        size_t slot = i;
        if (!a.key.empty())
          for (size_t j = 0; j < names.size(); ++j)
            if (names[j] == a.key) slot = j;
        if (names[slot] == "of") is.of = a.value->name;
        else is.args[slot] = constant(*a.value);
      }
      steps.push_back(std::move(is));
    }
    return steps;
  }

  // A compile-time scalar (sema has checked that it is one).
  double constant(const Expr& e) {
    NodeId id = expr(e);
    if (g_[id].op != Op::Const) throw InternalError("initializer argument did not fold to a number");
    return g_[id].value;
  }

  // States and outputs are batched: a value computed only from params is broadcast over the batch.
  NodeId fit(NodeId v, const Shape& s) { return g_.broadcast(v, s); }

  NodeId name(const Expr& e) {
    if (e.primed) return primed_.at(e.name);
    if (auto it = env_.find(e.name); it != env_.end()) return it->second;
    const Symbol* sym = prog_.find(e.name);
    if (sym->kind == SymKind::Dim) return g_.constant(static_cast<double>(sym->dimValue));
    if (sym->kind == SymKind::Const) {
      SourceLoc saved = g_.loc();
      NodeId v = expr(*sym->stmt->value);
      g_.setLoc(saved);
      if (sym->stmt->shape) v = g_.broadcast(v, sym->shape);
      return env_[e.name] = v;
    }
    throw InternalError("unresolved name " + e.name);
  }

  NodeId expr(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Number: return g_.constant(e.number);
      case Expr::Kind::Name: return name(e);
      case Expr::Kind::Neg: return fold(g_.neg(expr(*e.args[0])));
      case Expr::Kind::Binary: {
        NodeId a = expr(*e.args[0]), b = expr(*e.args[1]);
        switch (e.op) {
          case '+': return fold(g_.add(a, b));
          case '-': return fold(g_.sub(a, b));
          case '*': return fold(g_.mul(a, b));
          case '/': return fold(g_.div(a, b));
          case '^': return fold(g_.binary(Op::Pow, a, b));
          case '@': return g_.binary(Op::MatMul, a, b);
          case '<': return fold(g_.binary(Op::Lt, a, b));
          case 'L': return fold(g_.binary(Op::Le, a, b));
          case '>': return fold(g_.binary(Op::Lt, b, a));  // a > b is b < a
          case 'G': return fold(g_.binary(Op::Le, b, a));
        }
        break;
      }
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Index: return index(e);
    }
    throw InternalError("unknown expression");
  }

  // Scalar constant folding here keeps consts such as sqrt(2 * alpha) * sigma_rec single numbers.
  NodeId fold(NodeId id) {
    const Node& n = g_[id];
    for (NodeId i : n.in)
      if (g_[i].op != Op::Const) return id;
    if (n.in.empty() || n.shape.rank() != 0) return id;
    double a = g_[n.in[0]].value, b = n.in.size() > 1 ? g_[n.in[1]].value : 0;
    double c = n.in.size() > 2 ? g_[n.in[2]].value : 0;
    double v;
    switch (n.op) {
      case Op::Neg: v = -a; break;
      case Op::Exp: v = std::exp(a); break;
      case Op::Log: v = std::log(a); break;
      case Op::Tanh: v = std::tanh(a); break;
      case Op::Sigmoid: v = 1 / (1 + std::exp(-a)); break;
      case Op::Relu: v = a > 0 ? a : 0; break;
      case Op::Softplus: v = std::max(a, 0.0) + std::log1p(std::exp(-std::fabs(a))); break;
      case Op::Abs: v = std::fabs(a); break;
      case Op::Sqrt: v = std::sqrt(a); break;
      case Op::Add: v = a + b; break;
      case Op::Sub: v = a - b; break;
      case Op::Mul: v = a * b; break;
      case Op::Div: v = a / b; break;
      case Op::Pow: v = std::pow(a, b); break;
      case Op::Min: v = std::min(a, b); break;
      case Op::Max: v = std::max(a, b); break;
      case Op::Clip: v = std::min(std::max(a, b), c); break;
      case Op::Lt: v = a < b ? 1 : 0; break;
      case Op::Le: v = a <= b ? 1 : 0; break;
      case Op::Where: v = a != 0 ? b : c; break;
      case Op::Heaviside: case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
        v = a > 0 ? 1 : 0;
        break;
      default: return id;
    }
    return g_.constant(v);
  }

  NodeId call(const Expr& e) {
    const std::string& f = e.name;
    auto arg = [&](size_t i) { return expr(*e.callArgs[i].value); };
    static const std::map<std::string, Op> unaries = {
        {"exp", Op::Exp}, {"log", Op::Log}, {"tanh", Op::Tanh}, {"sigmoid", Op::Sigmoid},
        {"relu", Op::Relu}, {"softplus", Op::Softplus}, {"abs", Op::Abs}, {"sqrt", Op::Sqrt}};
    if (auto it = unaries.find(f); it != unaries.end()) return fold(g_.unary(it->second, arg(0)));
    if (f == "min") return fold(g_.binary(Op::Min, arg(0), arg(1)));
    if (f == "max") return fold(g_.binary(Op::Max, arg(0), arg(1)));
    if (f == "clip") return fold(g_.clip(arg(0), arg(1), arg(2)));
    if (f == "where") return fold(g_.where(arg(0), arg(1), arg(2)));
    if (f == "heaviside") {  // the surrogate by name, fast_sigmoid unless named; k = 10 unless given
      static_assert(std::size(kHeavisideOps) == std::size(kSurrogateNames), "one op per surrogate name");
      Op op = Op::Heaviside;
      if (e.callArgs.size() > 1)
        for (size_t i = 0; i < std::size(kHeavisideOps); ++i)
          if (e.callArgs[1].key == kSurrogateNames[i]) op = kHeavisideOps[i];
      NodeId k = e.callArgs.size() > 1 ? g_.constant(constant(*e.callArgs[1].value)) : g_.constant(kHeavisideSlope);
      return fold(g_.binary(op, arg(0), k));
    }
    if (f == "outer") return g_.binary(Op::Outer, arg(0), arg(1));
    if (f == "transpose") return g_.transpose(arg(0));
    if (f == "sum" || f == "mean") {
      NodeId x = arg(0);
      const Shape s = g_[x].shape;  // a copy: the factories below may move the node storage
      int64_t axis = e.callArgs.size() > 1 ? static_cast<int64_t>(constant(*e.callArgs[1].value)) : -1;
      NodeId r = g_.sum(x, axis);
      if (f == "sum") return r;
      double count = axis < 0 ? static_cast<double>(s.numel()) : static_cast<double>(s.dims[axis]);
      return g_.div(r, g_.constant(count));
    }
    if (f == "amax") {
      int64_t axis = e.callArgs.size() > 1 ? static_cast<int64_t>(constant(*e.callArgs[1].value)) : -1;
      return g_.amax(arg(0), axis);
    }
    if (f == "softmax" || f == "log_softmax" || f == "logsumexp") return normalize(f, arg(0));
    if (f == "concat") {
      std::vector<NodeId> xs;
      for (size_t i = 0; i < e.callArgs.size(); ++i) xs.push_back(arg(i));
      return g_.concat(xs);
    }
    if (f == "eye") return g_.eye(static_cast<int64_t>(constant(*e.callArgs[0].value)));
    if (f == "dale") {
      int64_t n = e.shape.dims.at(0);
      double frac = constant(*e.callArgs[0].value);
      return g_.dale(n, static_cast<int64_t>(std::floor(frac * static_cast<double>(n) + 1e-9)));
    }
    throw InternalError("no IR for function " + f);
  }

  // softmax, log_softmax and logsumexp over the last axis, from amax, exp, sum and log (so their
  // derivatives and code come from those ops'). Shifted by the max, exp never overflows and the
  // sum is at least 1; the shift's own derivative cancels (to rounding, at the argmax).
  //   z = x - amax(x),  s = sum(exp(z)):  softmax = exp(z) / s,  log_softmax = z - log(s),
  //   logsumexp = amax(x) + log(s)
  NodeId normalize(const std::string& f, NodeId x) {
    const Shape xs = g_[x].shape;
    const int64_t axis = xs.rank() - 1;
    auto back = [&](NodeId v) { return g_.broadcast(g_.unsqueeze(v, axis), xs); };
    NodeId m = g_.amax(x, axis);
    NodeId z = g_.sub(x, back(m));
    NodeId e = g_.unary(Op::Exp, z);
    NodeId s = g_.sum(e, axis);
    if (f == "softmax") return g_.div(e, back(s));
    NodeId logS = g_.unary(Op::Log, s);
    if (f == "log_softmax") return g_.sub(z, back(logS));
    return g_.add(m, logS);
  }

  NodeId index(const Expr& e) {
    NodeId x = expr(*e.args[0]);
    int64_t axis = 0;
    for (const IndexItem& it : e.indices) {
      int64_t size = g_[x].shape.dims[axis];
      if (!it.isSlice) {
        int64_t i = static_cast<int64_t>(constant(*it.at));
        x = g_.squeeze(g_.slice(x, axis, i, i + 1), axis);
        continue;
      }
      int64_t lo = it.lo ? static_cast<int64_t>(constant(*it.lo)) : 0;
      int64_t hi = it.hi ? static_cast<int64_t>(constant(*it.hi)) : size;
      x = g_.slice(x, axis, lo, hi);
      ++axis;
    }
    return x;
  }

  const Program& prog_;
  Step& step_;
  Graph& g_;
  std::map<std::string, NodeId> env_, primed_;
};

}  // namespace

Step buildStep(const Program& prog) {
  Step step;
  step.cellName = prog.ast.name;
  Builder(prog, step).run();
  return step;
}

}  // namespace cellc::ir
