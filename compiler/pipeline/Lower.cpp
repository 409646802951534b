#include "pipeline/Lower.h"

#include "ir/Simplify.h"

namespace cellc {

StepIR lower(const Program& prog) {
  ir::Step step = ir::buildStep(prog);
  autodiff::Backward bw = autodiff::differentiate(step);
  std::vector<ir::NodeId> omega = autodiff::omegaGradient(step);

  // Simplify forward and backward together so they share nodes (the tape is what they share).
  std::vector<ir::NodeId> roots = step.forwardRoots();
  std::vector<ir::NodeId> bwRoots = bw.roots();
  roots.insert(roots.end(), bwRoots.begin(), bwRoots.end());
  std::vector<ir::NodeId> eff;
  for (ir::NodeId e : step.effective)
    if (e >= 0) roots.push_back(e);
  for (auto& [name, id] : step.named) roots.push_back(id);
  roots.insert(roots.end(), omega.begin(), omega.end());

  StepIR out;
  out.g = ir::simplify(step.g, roots);
  out.layout = step.layout;
  out.cellName = step.cellName;
  size_t k = 0;
  auto take = [&](size_t n) {
    std::vector<ir::NodeId> v(roots.begin() + k, roots.begin() + k + n);
    k += n;
    return v;
  };
  out.stateNext = take(step.stateNext.size());
  out.outputs = take(step.outputs.size());
  out.dState = take(bw.dState.size());
  out.dInput = take(bw.dInput.size());
  out.dParam = take(bw.dParam.size());
  for (ir::NodeId e : step.effective) out.effective.push_back(e >= 0 ? roots[k++] : -1);
  // Named values the simplifier folded into constants or leaves keep the name of what they became.
  for (auto& [name, id] : step.named) out.named.push_back({name, roots[k++]});
  out.omegaParam = take(omega.size());
  return out;
}

}  // namespace cellc
