// One step of a cell as a graph, and the layout that tells a generic runtime where everything
// lives. Buffers are flat, one per role; a slot of a batched role (state, input, noise, output)
// holds [B, dims...] contiguously at offset B * slot.offset, so one layout serves every batch size.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "ir/Graph.h"
#include "sema/Program.h"

namespace cellc::ir {

enum class Role { Param, State, Input, Noise, Output };
const char* roleName(Role r);

// One initializer call of a param, with its arguments resolved to numbers (`of` names the
// effective matrix of spectral_radius).
struct InitStep {
  std::string fn;
  std::vector<double> args;  // in the initializer's declared order; NaN where left to default
  std::string of;
};

struct Slot {
  std::string name;
  Role role;
  Shape shape;
  int64_t offset = 0;  // elements (per batch element for batched roles)
  int64_t size = 0;    // elements (per batch element for batched roles)
  SourceLoc loc;
  std::vector<InitStep> init;  // params
  double initValue = 0;        // states starting from a number
  int initParam = -1;          // states starting from a param: its slot index
  bool dropout = false;        // noise `~ dropout()`: a mask of 0 and 1 / (1 - p); default 1
};

struct Layout {
  std::vector<Slot> params, states, inputs, noises, outputs;
  int64_t paramSize = 0, stateSize = 0, inputSize = 0, noiseSize = 0, outputSize = 0;

  const std::vector<Slot>& of(Role r) const;
  const Slot* find(Role r, const std::string& name) const;
  bool hasDropout() const;

  // The noise buffer of one step when nothing is drawn (noise off, evaluation): 0 for normal
  // noise, 1 for a dropout mask (every unit kept).
  template <class T>
  std::vector<T> defaultNoise(int64_t batch) const {
    std::vector<T> v(static_cast<size_t>(noiseSize * batch), T(0));
    for (const Slot& s : noises)
      if (s.dropout) std::fill_n(v.begin() + batch * s.offset, batch * s.size, T(1));
    return v;
  }

  // A state slot's declared start over a batch, written to its block `dst` ([batch, size]): the
  // param it starts from (`state x[n] = x0`) broadcast over the batch, else its number.
  template <class T>
  void fillDeclaredState(const Slot& s, const T* paramValues, int64_t batch, T* dst) const {
    if (s.initParam >= 0) {
      const T* p = paramValues + params.at(static_cast<size_t>(s.initParam)).offset;
      for (int64_t b = 0; b < batch; ++b) std::copy_n(p, s.size, dst + b * s.size);
    } else {
      std::fill_n(dst, batch * s.size, static_cast<T>(s.initValue));
    }
  }

  // The whole state buffer at t = 0 as declared (the trainer's start; unrolls where no state0 is
  // given use fillDeclaredState per slot).
  template <class T>
  std::vector<T> declaredState(const T* paramValues, int64_t batch) const {
    std::vector<T> v(static_cast<size_t>(stateSize * batch));
    for (const Slot& s : states) fillDeclaredState(s, paramValues, batch, v.data() + batch * s.offset);
    return v;
  }
};

struct Step {
  Graph g;
  Layout layout;
  std::vector<NodeId> stateNext;  // per state slot
  std::vector<NodeId> outputs;    // per output slot
  std::vector<NodeId> effective;  // per param: the node `spectral_radius(.., of = W)` names, or -1
  std::vector<std::pair<std::string, NodeId>> named;  // intermediates, h', outputs: for printing
  std::string cellName;

  std::vector<NodeId> forwardRoots() const;
};

Step buildStep(const Program& prog);

}  // namespace cellc::ir
