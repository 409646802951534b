// Gradients through a dropout mask: dale_rnn (whose `noise keep[n] ~ dropout()` multiplies the rates
// W_rec reads) with masks of 0 and 1 / (1 - p) as the trainer draws them, one per trial and one per
// step, against central finite differences in double over a whole sequence (BPTT, T = 20).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "GradCheck.h"
#include "train/NoiseDraw.h"

using namespace cellc;
using namespace cellc::testing;

TEST_CASE("BPTT gradients through dale_rnn's dropout mask match finite differences",
          "[gradients][dropout]") {
  const bool perStep = GENERATE(false, true);
  INFO((perStep ? "a mask per step" : "a mask per trial"));
  StepIR ir = lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/dale_rnn.cell",
                        {{"n", 6}, {"n_in", 2}, {"n_out", 3}});
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  const ir::Slot* keep = L.find(ir::Role::Noise, "keep");
  REQUIRE(keep);
  REQUIRE(keep->dropout);
  const int64_t B = 3, T = 20;
  std::mt19937 rng(17);
  runtime::Sequence<double> seq = randomSequence(L, B, T, rng);
  std::mt19937_64 normals(1), masks(2);
  seq.noise = runtime::drawNoise<double>(L, B, T, &normals, {0.5, perStep}, &masks);
  // The mask really drops units and scales the kept ones by 1 / (1 - p) = 2.
  int dropped = 0, kept = 0;
  for (const auto& step : seq.noise)
    for (int64_t i = 0; i < B * keep->size; ++i) {
      double m = step[B * keep->offset + i];
      REQUIRE((m == 0.0 || m == 2.0));
      (m == 0.0 ? dropped : kept)++;
    }
  CHECK(dropped > 0);
  CHECK(kept > 0);

  LinearLoss loss = LinearLoss::random(L, B, T, rng);
  auto traj = runtime::forwardSequence<double>(ev, seq);
  REQUIRE(std::isfinite(loss(traj)));
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);
  auto lossOf = [&](const runtime::Sequence<double>& s) {
    return loss(runtime::forwardSequence<double>(ev, s));
  };
  for (int dir = 0; dir < 3; ++dir) {
    INFO("direction " << dir);
    std::vector<double> d = randomUnit(rng, L.paramSize);
    FdResult r = compareWithFd(dot(grads.dParams, d), [&](double eps) {
      runtime::Sequence<double> s = seq;
      axpy(s.params, eps, d);
      return lossOf(s);
    });
    INFO("params: " << r.str());
    CHECK(r.err <= kFdTolerance);
    std::vector<double> d0 = randomUnit(rng, L.stateSize * B);
    FdResult r0 = compareWithFd(dot(grads.dInitialState, d0), [&](double eps) {
      runtime::Sequence<double> s = seq;
      axpy(s.initialState, eps, d0);
      return lossOf(s);
    });
    INFO("initial state: " << r0.str());
    CHECK(r0.err <= kFdTolerance);
  }
  // A dropped unit's rate reaches no one: the gradient of W_rec_raw's column of a unit dropped at
  // every step is zero. (Per trial, a unit dropped in batch element 0 only still counts in the
  // others, so look at a batch of one.)
  if (!perStep) {
    runtime::Sequence<double> one = seq;
    one.batch = 1;
    one.initialState.resize(L.stateSize);
    for (auto& x : one.inputs) x.resize(L.inputSize);
    for (auto& x : one.noise) {
      std::vector<double> nz(L.noiseSize);
      for (const ir::Slot& s : L.noises)
        std::copy_n(x.begin() + B * s.offset, s.size, nz.begin() + s.offset);
      x = nz;
    }
    LinearLoss l1 = LinearLoss::random(L, 1, T, rng);
    auto tr1 = runtime::forwardSequence<double>(ev, one);
    auto g1 = runtime::backwardSequence<double>(ev, one, tr1, l1.w, l1.v);
    const ir::Slot* w = L.find(ir::Role::Param, "W_rec_raw");
    REQUIRE(w);
    const int64_t n = keep->size;
    int droppedUnits = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (one.noise[0][keep->offset + j] != 0.0) continue;
      ++droppedUnits;
      for (int64_t i = 0; i < n; ++i) CHECK(g1.dParams[w->offset + i * n + j] == 0.0);
    }
    CHECK(droppedUnits > 0);
  }
}
