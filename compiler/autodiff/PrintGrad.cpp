#include "autodiff/PrintGrad.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "syntax/Print.h"

namespace cellc::autodiff {
namespace {

// What `cellc grad` says above a spiking cell's backward: its gradient is a surrogate, which one.
// Each surrogate's rule as Vjp.cpp builds it, in kHeavisideOps' order.
constexpr const char* kSurrogateRules[] = {
    "1 / ((1 + k * abs(x)) * (1 + k * abs(x)))", "k * s * (1 - s) with s = sigmoid(k * x)",
    "(k / 2) / (1 + (pi / 2 * k * x)^2)", "max(0, 1 - k * abs(x))"};
static_assert(std::size(kSurrogateRules) == std::size(ir::kHeavisideOps), "one rule per surrogate");

std::string surrogateNote(ir::Op op) {
  const int i = ir::surrogateIndex(op);
  return std::string("# heaviside(x, ") + kSurrogateNames[i] + " = k) passes the surrogate gradient " +
         kSurrogateRules[i] + ",\n# not its derivative (0 almost everywhere; docs/language.md, Spikes).\n";
}

using ir::Node;
using ir::NodeId;
using ir::Op;

enum Prec { kAdd = 1, kMul = 2, kNeg = 3, kPow = 4, kAtom = 5 };

// The deepest expression printed on one line; deeper subexpressions get a temp of their own.
constexpr int kMaxInlineDepth = 40;

class GradPrinter {
 public:
  GradPrinter(const Program& p, const StepIR& ir) : prog_(p), ir_(ir), g_(ir.g) {}

  std::string run() {
    std::vector<NodeId> fwd = ir::topoOrder(g_, ir_.forwardRoots());
    fwdSet_.insert(fwd.begin(), fwd.end());
    nameLeaves();
    for (auto& [name, id] : ir_.named)
      if (!names_.count(id)) names_[id] = name;

    std::vector<NodeId> order = ir::topoOrder(g_, ir_.backwardRoots());
    std::map<NodeId, int> uses;
    for (NodeId id : order)
      if (!fwdSet_.count(id))
        for (NodeId i : g_[id].in) ++uses[i];
    const std::vector<NodeId> rootList = ir_.backwardRoots();
    std::set<NodeId> roots(rootList.begin(), rootList.end());
    int temp = 0;
    std::ostringstream os;
    os << "# Backward step of cell " << ir_.cellName << ", as cellc derived it.\n"
       << "# d_X is the adjoint dL/dX. Given: d_s' (the adjoint of each next state s') and d_y\n"
       << "# (of each output y). Param gradients accumulate (+=) over time steps and are summed\n"
       << "# over the batch (sum_batch). [a < b] is 1 where a < b, else 0.\n";
    // A spiking cell's gradient is not its derivative: say so where it is read.
    std::set<ir::Op> said;
    for (const ir::Node& n : g_.nodes())
      if (ir::isHeaviside(n.op) && said.insert(n.op).second) os << surrogateNote(n.op);
    std::vector<std::pair<std::string, NodeId>> lines;
    // How deep expr() recurses to print each node inline. A long chain of single-use adjoints
    // (a 10,000-line cell) would nest as deep as the chain: past kMaxInlineDepth a node gets its
    // own temp line, which keeps both the recursion and each printed line bounded.
    std::map<NodeId, int> depth;
    for (NodeId id : order) {
      if (names_.count(id)) continue;
      const Node& n = g_[id];
      int d = 1;
      for (NodeId i : n.in)
        if (auto it = depth.find(i); it != depth.end() && !names_.count(i)) d = std::max(d, it->second + 1);
      depth[id] = d;
      bool deep = d > kMaxInlineDepth;
      if (fwdSet_.count(id) && !deep) continue;
      bool constant = n.op == Op::Const || (n.op == Op::Broadcast && g_[n.in[0]].op == Op::Const);
      bool own = !constant && (ir::opKind(n.op) == ir::OpKind::Contract || uses[id] >= 2 || deep);
      if (!own || roots.count(id)) continue;
      names_[id] = "t" + std::to_string(++temp);
      lines.push_back({names_[id] + " = ", id});
    }
    // Roots last, named by what they are the adjoint of.
    const ir::Layout& L = ir_.layout;
    for (size_t i = 0; i < ir_.dState.size(); ++i) lines.push_back({"d_" + L.states[i].name + " = ", ir_.dState[i]});
    for (size_t i = 0; i < ir_.dInput.size(); ++i) lines.push_back({"d_" + L.inputs[i].name + " = ", ir_.dInput[i]});
    for (size_t i = 0; i < ir_.dParam.size(); ++i) lines.push_back({"d_" + L.params[i].name + " += ", ir_.dParam[i]});
    for (auto& [lhs, id] : lines) {
      // A root that is itself a named temp prints as that name.
      std::string rhs = names_.count(id) && lhs.rfind(names_[id], 0) != 0 ? names_[id] : expr(id, true).first;
      std::string text = lhs + rhs;
      os << text;
      const SourceLoc loc = g_[id].loc;
      std::string note = initNote(id);
      if (!note.empty()) {
        os << std::string(text.size() < 56 ? 56 - text.size() : 1, ' ') << "# " << note << "\n";
        continue;
      }
      if (loc.line > 0) {
        os << std::string(text.size() < 56 ? 56 - text.size() : 1, ' ') << "# line " << loc.line
           << ": " << sourceLine(loc.line);
      }
      os << "\n";
    }
    return os.str();
  }

 private:
  void nameLeaves() {
    const ir::Layout& L = ir_.layout;
    for (NodeId id = 0; id < static_cast<NodeId>(g_.size()); ++id) {
      const Node& n = g_[id];
      switch (n.op) {
        case Op::Param: names_[id] = L.params[n.a0].name; break;
        case Op::State: names_[id] = L.states[n.a0].name; break;
        case Op::Input: names_[id] = L.inputs[n.a0].name; break;
        case Op::Noise: names_[id] = L.noises[n.a0].name; break;
        case Op::AdjState: names_[id] = "d_" + L.states[n.a0].name + "'"; break;
        case Op::AdjOutput: names_[id] = "d_" + L.outputs[n.a0].name; break;
        default: break;
      }
    }
  }

  // A param that is a state's initial value gets its gradient from the state's adjoint at t = 0,
  // which the runtime adds; say so where the step itself contributes nothing.
  std::string initNote(NodeId root) const {
    const ir::Layout& L = ir_.layout;
    for (size_t p = 0; p < ir_.dParam.size(); ++p) {
      if (ir_.dParam[p] != root) continue;
      for (const ir::Slot& st : L.states)
        if (st.initParam == static_cast<int>(p))
          return "initial value of state " + st.name + ": the runtime adds d_" + st.name +
                 " at t = 0, summed over the batch";
    }
    return "";
  }

  // The statement text of a source line, trimmed, for the trailing comment.
  std::string sourceLine(int line) {
    if (stmtAt_.empty())  // one lookup table, not a scan of every statement per printed line
      for (const Stmt& s : prog_.ast.stmts) stmtAt_.emplace(s.loc.line, &s);
    auto it = stmtAt_.lower_bound(line);  // the first statement on the line
    if (it == stmtAt_.end() || it->first != line) return "";
    const Stmt& s = *it->second;
    std::string lhs = s.name + (s.primed ? "'" : "");
    if (s.kind == Stmt::Kind::Output) lhs = "output " + s.name;
    if (s.kind == Stmt::Kind::Equation || s.kind == Stmt::Kind::Output)
      return lhs + " = " + printExpr(*s.value);
    return std::string(stmtKindName(s.kind)) + " " + s.name;
  }

  std::pair<std::string, int> expr(NodeId id, bool top = false) {
    if (!top)
      if (auto it = names_.find(id); it != names_.end()) return {it->second, kAtom};
    const Node& n = g_[id];
    auto sub = [&](size_t i) { return expr(n.in[i]); };
    auto wrap = [](const std::pair<std::string, int>& e, bool parens) {
      return parens ? "(" + e.first + ")" : e.first;
    };
    auto bin = [&](const char* op, int p) -> std::pair<std::string, int> {
      auto a = sub(0), b = sub(1);
      return {wrap(a, a.second < p) + op + wrap(b, b.second <= p), p};
    };
    auto fn = [&](const std::string& name) -> std::pair<std::string, int> {
      std::string s = name + "(";
      for (size_t i = 0; i < n.in.size(); ++i) s += (i ? ", " : "") + sub(i).first;
      return {s + ")", kAtom};
    };
    switch (n.op) {
      case Op::Const: return {printNumber(n.value), n.value < 0 ? kNeg : kAtom};
      case Op::Eye: return {"eye(" + std::to_string(n.shape.dims[0]) + ")", kAtom};
      case Op::Dale: return {"dale(" + std::to_string(n.a0) + " of " + std::to_string(n.shape.dims[0]) + ")", kAtom};
      case Op::Add: return bin(" + ", kAdd);
      case Op::Sub: return bin(" - ", kAdd);
      case Op::Mul: return bin(" * ", kMul);
      case Op::Div: return bin(" / ", kMul);
      case Op::MatMul: return bin(" @ ", kMul);
      case Op::Pow: {
        auto a = sub(0), b = sub(1);
        return {wrap(a, a.second <= kPow) + "^" + wrap(b, b.second < kPow), kPow};
      }
      case Op::Neg: {
        auto a = sub(0);
        return {"-" + wrap(a, a.second < kNeg), kNeg};
      }
      case Op::Lt: return {"[" + sub(0).first + " < " + sub(1).first + "]", kAtom};
      case Op::Le: return {"[" + sub(0).first + " <= " + sub(1).first + "]", kAtom};
      case Op::Exp: return fn("exp");
      case Op::Log: return fn("log");
      case Op::Tanh: return fn("tanh");
      case Op::Sigmoid: return fn("sigmoid");
      case Op::Relu: return fn("relu");
      case Op::Softplus: return fn("softplus");
      case Op::Abs: return fn("abs");
      case Op::Sqrt: return fn("sqrt");
      case Op::Min: return fn("min");
      case Op::Max: return fn("max");
      case Op::Clip: return fn("clip");
      case Op::Where: return fn("where");
      case Op::Heaviside: return fn("heaviside");
      case Op::HeavisideSigmoid: case Op::HeavisideAtan: case Op::HeavisideTriangle:
        return {"heaviside(" + sub(0).first + ", " + kSurrogateNames[ir::surrogateIndex(n.op)] + " = " +
                    sub(1).first + ")",
                kAtom};
      case Op::Outer: return fn("outer");
      case Op::Transpose: return fn("transpose");
      case Op::Concat: return fn("concat");
      case Op::SumBatch: return fn("sum_batch");
      case Op::BatchOuterSum: return {"sum_batch(outer(" + sub(0).first + ", " + sub(1).first + "))", kAtom};
      case Op::Sum:
        return {"sum(" + sub(0).first + (n.a0 >= 0 ? ", " + std::to_string(n.a0) : "") + ")", kAtom};
      case Op::Amax:
        return {"amax(" + sub(0).first + (n.a0 >= 0 ? ", " + std::to_string(n.a0) : "") + ")", kAtom};
      case Op::Broadcast: return sub(0);  // implicit, as in the source language
      case Op::Squeeze: return {"squeeze(" + sub(0).first + ", " + std::to_string(n.a0) + ")", kAtom};
      case Op::Unsqueeze: return {"unsqueeze(" + sub(0).first + ", " + std::to_string(n.a0) + ")", kAtom};
      case Op::Slice: {
        auto a = sub(0);
        std::string idx;
        for (int64_t i = 0; i < n.a0; ++i) idx += ":, ";
        return {wrap(a, a.second < kAtom) + "[" + idx + std::to_string(n.a1) + ":" + std::to_string(n.a2) + "]", kAtom};
      }
      case Op::Pad:
        return {"pad(" + sub(0).first + ", axis " + std::to_string(n.a0) + ", at " +
                    std::to_string(n.a1) + ", to " + std::to_string(n.a2) + ")", kAtom};
      default: return {ir::opName(n.op), kAtom};
    }
  }

  const Program& prog_;
  const StepIR& ir_;
  const ir::Graph& g_;
  std::set<NodeId> fwdSet_;
  std::map<NodeId, std::string> names_;
  std::multimap<int, const Stmt*> stmtAt_;  // source line -> statements on it, in order
};

}  // namespace

std::string printGradient(const Program& prog, const StepIR& ir) { return GradPrinter(prog, ir).run(); }

}  // namespace cellc::autodiff
