#include "ir/StepIR.h"

namespace cellc {

std::vector<ir::NodeId> StepIR::forwardRoots() const {
  std::vector<ir::NodeId> r = stateNext;
  r.insert(r.end(), outputs.begin(), outputs.end());
  return r;
}

std::vector<ir::NodeId> StepIR::backwardRoots() const {
  std::vector<ir::NodeId> r = dState;
  r.insert(r.end(), dInput.begin(), dInput.end());
  r.insert(r.end(), dParam.begin(), dParam.end());
  r.insert(r.end(), dHoisted.begin(), dHoisted.end());
  r.insert(r.end(), segmentValues.begin(), segmentValues.end());
  r.insert(r.end(), dStaged.begin(), dStaged.end());
  return r;
}

}  // namespace cellc
