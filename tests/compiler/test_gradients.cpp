// The backward of every cell in cells/ against central finite differences, in double, through the
// reference evaluator: over a whole sequence (BPTT, T = 20) and for one step, root by root.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "GradCheck.h"

using namespace cellc;
using namespace cellc::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> cellFiles() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(CELLC_SOURCE_DIR) / "cells"))
    if (e.path().extension() == ".cell") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Small sizes for the dims a cell has: n = 6 (or k = 3 where n = 2k), n_in = 2, n_out = 3.
Overrides smallDims(const std::string& path) {
  std::string error;
  SourceFile file = SourceFile::load(path, &error);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  if (!prog) throw std::runtime_error("cannot load " + path);
  Overrides ov;
  auto has = [&](const char* name) {
    const Symbol* s = prog->find(name);
    return s && s->kind == SymKind::Dim;
  };
  if (has("k")) ov["k"] = 3;
  else if (has("n")) ov["n"] = 6;
  if (has("n_in")) ov["n_in"] = 2;
  if (has("n_out")) ov["n_out"] = 3;
  return ov;
}

// A stable per-cell seed (std::hash is not stable across library versions).
uint32_t seedOf(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

}  // namespace

TEST_CASE("the cells directory has cells", "[gradients]") { CHECK(cellFiles().size() >= 8); }

TEST_CASE("BPTT gradients of every cell match finite differences", "[gradients][bptt]") {
  const std::string path = GENERATE(from_range(cellFiles()));
  const std::string name = stem(path);
  INFO("cell " << name);
  StepIR ir = lowerFile(path, smallDims(path));
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  const int64_t B = 3, T = 20;
  std::mt19937 rng(seedOf(name));
  runtime::Sequence<double> seq = randomSequence(L, B, T, rng);
  LinearLoss loss = LinearLoss::random(L, B, T, rng);

  auto traj = runtime::forwardSequence<double>(ev, seq);
  const double L0 = loss(traj);
  INFO("loss " << L0);
  REQUIRE(std::isfinite(L0));
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);

  auto lossOf = [&](const runtime::Sequence<double>& s) {
    return loss(runtime::forwardSequence<double>(ev, s));
  };

  for (int dir = 0; dir < 3; ++dir) {
    INFO("direction " << dir);
    {  // params
      std::vector<double> d = randomUnit(rng, L.paramSize);
      FdResult r = compareWithFd(dot(grads.dParams, d), [&](double eps) {
        runtime::Sequence<double> s = seq;
        axpy(s.params, eps, d);
        return lossOf(s);
      });
      INFO("params: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
    if (L.inputSize > 0) {  // inputs of every step
      std::vector<std::vector<double>> d;
      double ad = 0;
      std::vector<double> flat = randomUnit(rng, T * L.inputSize * B);
      for (int64_t t = 0; t < T; ++t) {
        d.emplace_back(flat.begin() + t * L.inputSize * B, flat.begin() + (t + 1) * L.inputSize * B);
        ad += dot(grads.dInputs[t], d.back());
      }
      FdResult r = compareWithFd(ad, [&](double eps) {
        runtime::Sequence<double> s = seq;
        for (int64_t t = 0; t < T; ++t) axpy(s.inputs[t], eps, d[t]);
        return lossOf(s);
      });
      INFO("inputs: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
    {  // initial state
      std::vector<double> d = randomUnit(rng, L.stateSize * B);
      FdResult r = compareWithFd(dot(grads.dInitialState, d), [&](double eps) {
        runtime::Sequence<double> s = seq;
        axpy(s.initialState, eps, d);
        return lossOf(s);
      });
      INFO("initial state: " << r.str());
      CHECK(r.err <= kFdTolerance);
    }
  }
}

// One step, one root at a time (each state' and each output): the loss <w, root> with the
// adjoint w in that root's slot only, checked along a random direction inside each param, state
// and input slot, so a failure names the root and the slot.
TEST_CASE("one-step gradients of every cell, root by root, match finite differences",
          "[gradients][step]") {
  const std::string path = GENERATE(from_range(cellFiles()));
  const std::string name = stem(path);
  INFO("cell " << name);
  StepIR ir = lowerFile(path, smallDims(path));
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  const int64_t B = 3;
  std::mt19937 rng(seedOf(name) ^ 0x5eed);
  runtime::Sequence<double> seq = randomSequence(L, B, 1, rng);
  const std::vector<double>& params = seq.params;
  const std::vector<double>& state = seq.initialState;
  const std::vector<double>& input = seq.inputs[0];
  const std::vector<double>& noise = seq.noise[0];

  struct Root {
    std::string name;
    bool isState;
    const ir::Slot* slot;
  };
  std::vector<Root> roots;
  for (const ir::Slot& s : L.states) roots.push_back({s.name + "'", true, &s});
  for (const ir::Slot& s : L.outputs) roots.push_back({"output " + s.name, false, &s});

  for (const Root& root : roots) {
    INFO("root " << root.name);
    std::vector<double> dNext(L.stateSize * B, 0.0), dOut(L.outputSize * B, 0.0);
    std::vector<double>& adj = root.isState ? dNext : dOut;
    std::vector<double> w = randn(rng, root.slot->size * B);
    std::copy(w.begin(), w.end(), adj.begin() + B * root.slot->offset);

    auto lossAt = [&](const std::vector<double>& p, const std::vector<double>& s,
                      const std::vector<double>& x) {
      std::vector<double> next(L.stateSize * B), out(L.outputSize * B);
      ev.forward(p.data(), s.data(), x.data(), noise.data(), next.data(), out.data(), nullptr, B);
      return dot(dNext, next) + dot(dOut, out);
    };
    std::vector<double> dState(L.stateSize * B), dInput(L.inputSize * B), dParams(L.paramSize, 0.0);
    ev.backward(params.data(), state.data(), input.data(), noise.data(), nullptr, dNext.data(),
                dOut.data(), dState.data(), dInput.data(), dParams.data(), B);

    // One random direction inside one slot of one role; `which` 0 params, 1 state, 2 input.
    auto check = [&](int which, const ir::Slot& slot) {
      const std::vector<double>& base = which == 0 ? params : which == 1 ? state : input;
      const std::vector<double>& grad = which == 0 ? dParams : which == 1 ? dState : dInput;
      int64_t off = which == 0 ? slot.offset : B * slot.offset;
      int64_t len = which == 0 ? slot.size : B * slot.size;
      std::vector<double> d(base.size(), 0.0);
      std::vector<double> u = randomUnit(rng, len);
      std::copy(u.begin(), u.end(), d.begin() + off);
      FdResult r = compareWithFd(dot(grad, d), [&](double eps) {
        std::vector<double> p = params, s = state, x = input;
        axpy(which == 0 ? p : which == 1 ? s : x, eps, d);
        return lossAt(p, s, x);
      });
      INFO((which == 0 ? "param " : which == 1 ? "state " : "input ") << slot.name << ": " << r.str());
      CHECK(r.err <= kFdTolerance);
    };
    for (const ir::Slot& s : L.params) check(0, s);
    for (const ir::Slot& s : L.states) check(1, s);
    for (const ir::Slot& s : L.inputs) check(2, s);
  }
}
