// The reference evaluator against hand-computed values, one small graph per op, and the
// Evaluator's StepKernel contract (buffers, batch layout, dParams accumulating).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "GradCheck.h"
#include "eval/Evaluate.h"
#include "ir/Graph.h"
#include "ir/Step.h"

using namespace cellc;
using ir::NodeId;
using ir::Op;
using cellc::Shape;
using Catch::Matchers::Approx;

namespace {

using Vec = std::vector<double>;

// A graph with a hand-made layout: each leaf gets the next slot of its role.
struct Fixture {
  ir::Graph g;
  ir::Layout L;
  Vec params, state, input, noise, adjState, adjOutput;
  int64_t B = 1;

  explicit Fixture(int64_t batch = 1) : B(batch) {}

  NodeId add(std::vector<ir::Slot>& slots, int64_t& total, Vec& buf, Op op, ir::Role role,
             std::vector<int64_t> dims, const Vec& values, bool batched) {
    Shape s{batched, dims};
    ir::Slot slot;
    slot.name = std::string(ir::roleName(role)) + std::to_string(slots.size());
    slot.role = role;
    slot.shape = s;
    slot.offset = total;
    slot.size = s.numel();
    total += slot.size;
    slots.push_back(slot);
    REQUIRE(static_cast<int64_t>(values.size()) == (batched ? B : 1) * s.numel());
    buf.insert(buf.end(), values.begin(), values.end());
    return g.leaf(op, static_cast<int64_t>(slots.size() - 1), s);
  }
  NodeId param(std::vector<int64_t> dims, const Vec& v) {
    return add(L.params, L.paramSize, params, Op::Param, ir::Role::Param, dims, v, false);
  }
  NodeId stateLeaf(std::vector<int64_t> dims, const Vec& v) {
    return add(L.states, L.stateSize, state, Op::State, ir::Role::State, dims, v, true);
  }
  NodeId inputLeaf(std::vector<int64_t> dims, const Vec& v) {
    return add(L.inputs, L.inputSize, input, Op::Input, ir::Role::Input, dims, v, true);
  }
  NodeId noiseLeaf(std::vector<int64_t> dims, const Vec& v) {
    return add(L.noises, L.noiseSize, noise, Op::Noise, ir::Role::Noise, dims, v, true);
  }
  NodeId outputSlot(std::vector<int64_t> dims, const Vec& adj) {
    return add(L.outputs, L.outputSize, adjOutput, Op::AdjOutput, ir::Role::Output, dims, adj, true);
  }

  Vec eval(NodeId root) {
    eval::Leaves leaves{params.data(), state.data(), input.data(), noise.data(), adjState.data(),
                        adjOutput.data()};
    return eval::evaluate(g, {root}, L, leaves, B)[0];
  }
};

}  // namespace

TEST_CASE("evaluator: leaves read their slots", "[eval]") {
  Fixture f(2);
  NodeId p0 = f.param({2}, {1, 2});
  NodeId p1 = f.param({}, {7});
  NodeId s0 = f.stateLeaf({2}, {1, 2, 3, 4});        // [B=2, 2]
  NodeId s1 = f.stateLeaf({1, 3}, {5, 6, 7, 8, 9, 10});  // [B=2, 1, 3]: at B * offset = 4
  NodeId x0 = f.inputLeaf({}, {-1, -2});
  NodeId x1 = f.inputLeaf({2}, {11, 12, 13, 14});    // at B * 1 = 2
  NodeId n0 = f.noiseLeaf({3}, {0.5, 0.25, 0.125, 1, 2, 3});
  f.adjState = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30};  // states' layout: [2, 2] then [2, 1, 3]
  NodeId a1 = f.g.leaf(Op::AdjState, 1, Shape{true, {1, 3}});
  NodeId o0 = f.outputSlot({}, {31, 32});
  NodeId o1 = f.outputSlot({2}, {41, 42, 43, 44});

  CHECK(f.eval(p0) == Vec{1, 2});
  CHECK(f.eval(p1) == Vec{7});
  CHECK(f.eval(s0) == Vec{1, 2, 3, 4});
  CHECK(f.eval(s1) == Vec{5, 6, 7, 8, 9, 10});
  CHECK(f.eval(x0) == Vec{-1, -2});
  CHECK(f.eval(x1) == Vec{11, 12, 13, 14});
  CHECK(f.eval(n0) == Vec{0.5, 0.25, 0.125, 1, 2, 3});
  CHECK(f.eval(a1) == Vec{25, 26, 27, 28, 29, 30});
  CHECK(f.eval(o0) == Vec{31, 32});
  CHECK(f.eval(o1) == Vec{41, 42, 43, 44});

  // A leaf whose shape disagrees with its slot is a malformed graph.
  NodeId bad = f.g.leaf(Op::Param, 0, Shape{false, {3}});
  CHECK_THROWS_AS(f.eval(bad), ir::InternalError);
  NodeId missing = f.g.leaf(Op::Param, 5, Shape{false, {2}});
  CHECK_THROWS_AS(f.eval(missing), ir::InternalError);
}

TEST_CASE("evaluator: constants, eye, dale", "[eval]") {
  Fixture f;
  CHECK(f.eval(f.g.constant(2.5)) == Vec{2.5});
  CHECK(f.eval(f.g.eye(3)) == Vec{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(f.eval(f.g.dale(5, 3)) == Vec{1, 1, 1, -1, -1});
  CHECK(f.eval(f.g.dale(4, 0)) == Vec{-1, -1, -1, -1});
  CHECK(f.eval(f.g.broadcast(f.g.constant(7), Shape{false, {2, 2}})) == Vec{7, 7, 7, 7});
}

TEST_CASE("evaluator: unary elementwise ops", "[eval]") {
  Fixture f;
  NodeId x = f.param({4}, {-2, -0.5, 0, 1.5});
  CHECK(f.eval(f.g.unary(Op::Neg, x)) == Vec{2, 0.5, -0.0, -1.5});
  CHECK(f.eval(f.g.unary(Op::Relu, x)) == Vec{0, 0, 0, 1.5});
  CHECK(f.eval(f.g.unary(Op::Abs, x)) == Vec{2, 0.5, 0, 1.5});
  CHECK_THAT(f.eval(f.g.unary(Op::Exp, x)),
             Approx(Vec{0.1353352832366127, 0.6065306597126334, 1, 4.4816890703380645}).epsilon(1e-15));
  CHECK_THAT(f.eval(f.g.unary(Op::Tanh, x)),
             Approx(Vec{-0.9640275800758169, -0.46211715726000974, 0, 0.9051482536448664}).epsilon(1e-15));
  CHECK_THAT(f.eval(f.g.unary(Op::Sigmoid, x)),
             Approx(Vec{0.11920292202211755, 0.3775406687981454, 0.5, 0.8175744761936437}).epsilon(1e-15));
  CHECK_THAT(f.eval(f.g.unary(Op::Softplus, x)),
             Approx(Vec{0.1269280110429725, 0.4740769841801067, 0.6931471805599453, 1.7014132779827524}).epsilon(1e-15));

  NodeId y = f.param({3}, {0.25, 4, 10});
  CHECK_THAT(f.eval(f.g.unary(Op::Sqrt, y)), Approx(Vec{0.5, 2, 3.1622776601683795}).epsilon(1e-15));
  CHECK_THAT(f.eval(f.g.unary(Op::Log, y)),
             Approx(Vec{-1.3862943611198906, 1.3862943611198906, 2.302585092994046}).epsilon(1e-15));
}

TEST_CASE("evaluator: softplus and sigmoid stay finite and accurate at large |x|", "[eval]") {
  Fixture f;
  NodeId x = f.param({6}, {-1000, -40, -20, 20, 40, 1000});
  Vec sp = f.eval(f.g.unary(Op::Softplus, x));
  for (double v : sp) CHECK(std::isfinite(v));
  CHECK(sp[0] == 0.0);                                          // exp(-1000) underflows to 0
  CHECK_THAT(sp[1], Catch::Matchers::WithinRel(4.248354255291589e-18, 1e-12));  // log1p(e^-40)
  CHECK_THAT(sp[2], Catch::Matchers::WithinRel(2.061153620314381e-09, 1e-12));
  CHECK_THAT(sp[3], Catch::Matchers::WithinRel(20.000000002061153, 1e-15));
  CHECK(sp[4] == 40.0);  // 40 + 4e-18 rounds to 40
  CHECK(sp[5] == 1000.0);  // the naive log(1 + exp(1000)) would be inf
  Vec sg = f.eval(f.g.unary(Op::Sigmoid, x));
  CHECK(sg[0] == 0.0);
  CHECK(sg[5] == 1.0);
  CHECK_THAT(sg[1], Catch::Matchers::WithinRel(4.248354255291589e-18, 1e-12));
}

TEST_CASE("evaluator: binary elementwise ops broadcast like numpy", "[eval]") {
  Fixture f(2);
  NodeId m = f.param({2, 3}, {1, 2, 3, 4, 5, 6});
  NodeId r = f.param({3}, {10, 20, 30});
  NodeId c = f.param({2, 1}, {100, 200});
  NodeId s = f.param({}, {2});
  NodeId xb = f.stateLeaf({3}, {1, 2, 3, -1, -2, -3});  // [B=2, 3]

  // Unbatched results have no batch axis.
  CHECK(f.eval(f.g.add(m, r)) == Vec{11, 22, 33, 14, 25, 36});
  CHECK(f.eval(f.g.add(m, c)) == Vec{101, 102, 103, 204, 205, 206});
  CHECK(f.eval(f.g.mul(c, r)) == Vec{1000, 2000, 3000, 2000, 4000, 6000});  // [2,1] * [3] -> [2,3]
  CHECK(f.eval(f.g.sub(s, m)) == Vec{1, 0, -1, -2, -3, -4});
  CHECK(f.eval(f.g.div(r, s)) == Vec{5, 10, 15});
  // Batched with unbatched: the unbatched operand is the same for every batch element.
  CHECK(f.eval(f.g.add(xb, r)) == Vec{11, 22, 33, 9, 18, 27});
  CHECK(f.eval(f.g.mul(m, xb)) == Vec{1, 4, 9, 4, 10, 18, -1, -4, -9, -4, -10, -18});  // [B,2,3]
  CHECK(f.eval(f.g.sub(c, xb)) == Vec{99, 98, 97, 199, 198, 197, 101, 102, 103, 201, 202, 203});

  NodeId a = f.param({3}, {4, 9, 2});
  CHECK(f.eval(f.g.binary(Op::Pow, a, f.g.constant(0.5))) == Vec{2, 3, std::sqrt(2.0)});
  CHECK(f.eval(f.g.binary(Op::Pow, s, f.g.constant(3))) == Vec{8});
  CHECK(f.eval(f.g.binary(Op::Pow, f.g.constant(2), xb)) == Vec{2, 4, 8, 0.5, 0.25, 0.125});

  NodeId b = f.param({3}, {3, 9, 1});
  CHECK(f.eval(f.g.binary(Op::Min, a, b)) == Vec{3, 9, 1});
  CHECK(f.eval(f.g.binary(Op::Max, a, b)) == Vec{4, 9, 2});
  CHECK(f.eval(f.g.binary(Op::Min, xb, s)) == Vec{1, 2, 2, -1, -2, -3});
  CHECK(f.eval(f.g.binary(Op::Lt, a, b)) == Vec{0, 0, 0});
  CHECK(f.eval(f.g.binary(Op::Le, a, b)) == Vec{0, 1, 0});
  CHECK(f.eval(f.g.binary(Op::Lt, b, a)) == Vec{1, 0, 1});
  CHECK(f.eval(f.g.binary(Op::Lt, xb, s)) == Vec{1, 0, 0, 1, 1, 1});
  CHECK(f.eval(f.g.binary(Op::Le, xb, s)) == Vec{1, 1, 0, 1, 1, 1});
}

TEST_CASE("evaluator: clip = min(max(x, lo), hi)", "[eval]") {
  Fixture f;
  NodeId x = f.param({4}, {-2, 0.5, 1, 3});
  CHECK(f.eval(f.g.clip(x, f.g.constant(0), f.g.constant(1))) == Vec{0, 0.5, 1, 1});
  NodeId lo = f.param({4}, {-3, 1, 0, 0});
  NodeId hi = f.param({4}, {2, 2, 0.5, 5});
  CHECK(f.eval(f.g.clip(x, lo, hi)) == Vec{-2, 1, 0.5, 3});
  // lo > hi: min(max(x, lo), hi) is hi.
  CHECK(f.eval(f.g.clip(x, f.g.constant(1), f.g.constant(0))) == Vec{0, 0, 0, 0});
  // Broadcast: x [2, 1] against lo [3].
  NodeId xc = f.param({2, 1}, {0.5, 5});
  NodeId lo3 = f.param({3}, {0, 1, 2});
  CHECK(f.eval(f.g.clip(xc, lo3, f.g.constant(4))) == Vec{0.5, 1, 2, 4, 4, 4});
}

TEST_CASE("evaluator: matmul cases", "[eval]") {
  Fixture f(2);
  NodeId A = f.param({3, 2}, {1, 2, 3, 4, 5, 6});
  NodeId x = f.param({2}, {1, -1});
  NodeId a = f.param({3}, {1, 2, 3});
  NodeId Bm = f.param({2, 3}, {1, 0, 2, 0, 1, 3});
  NodeId c = f.param({3}, {4, 5, 6});

  CHECK(f.eval(f.g.binary(Op::MatMul, A, x)) == Vec{-1, -1, -1});           // [m,k] @ [k]
  CHECK(f.eval(f.g.binary(Op::MatMul, a, A)) == Vec{22, 28});               // [k] @ [k,p]
  CHECK(f.eval(f.g.binary(Op::MatMul, A, Bm)) == Vec{1, 2, 8, 3, 4, 18, 5, 6, 28});  // [m,k] @ [k,p]
  CHECK(f.eval(f.g.binary(Op::MatMul, a, c)) == Vec{32});                   // [k] @ [k]
  CHECK(f.eval(f.g.binary(Op::MatMul, Bm, A)) == Vec{11, 14, 18, 22});      // [2,3] @ [3,2]

  // Batched operands: B = 2.
  NodeId Ab = f.stateLeaf({3, 2}, {1, 2, 3, 4, 5, 6, 2, 4, 6, 8, 10, 12});
  NodeId xb = f.inputLeaf({2}, {1, -1, 0, 1});
  NodeId ab = f.noiseLeaf({3}, {1, 2, 3, 0, 0, 1});
  CHECK(f.eval(f.g.binary(Op::MatMul, Ab, x)) == Vec{-1, -1, -1, -2, -2, -2});  // batched A
  CHECK(f.eval(f.g.binary(Op::MatMul, A, xb)) == Vec{-1, -1, -1, 2, 4, 6});     // batched x
  CHECK(f.eval(f.g.binary(Op::MatMul, Ab, xb)) == Vec{-1, -1, -1, 4, 8, 12});   // both
  CHECK(f.eval(f.g.binary(Op::MatMul, ab, A)) == Vec{22, 28, 5, 6});            // [B,k] @ [k,p]
  CHECK(f.eval(f.g.binary(Op::MatMul, ab, c)) == Vec{32, 6});                   // [B,k] @ [k]
  CHECK(f.eval(f.g.binary(Op::MatMul, Bm, Ab)) == Vec{11, 14, 18, 22, 22, 28, 36, 44});
}

TEST_CASE("evaluator: outer and transpose", "[eval]") {
  Fixture f(2);
  NodeId a = f.param({2}, {1, 2});
  NodeId b = f.param({3}, {3, 4, 5});
  CHECK(f.eval(f.g.binary(Op::Outer, a, b)) == Vec{3, 4, 5, 6, 8, 10});
  NodeId ab = f.stateLeaf({2}, {1, 2, -1, 0});
  CHECK(f.eval(f.g.binary(Op::Outer, ab, b)) == Vec{3, 4, 5, 6, 8, 10, -3, -4, -5, 0, 0, 0});
  CHECK(f.eval(f.g.binary(Op::Outer, b, ab)) == Vec{3, 6, 4, 8, 5, 10, -3, 0, -4, 0, -5, 0});

  NodeId m = f.param({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(f.eval(f.g.transpose(m)) == Vec{1, 4, 2, 5, 3, 6});
  NodeId mb = f.inputLeaf({1, 2}, {1, 2, 3, 4});
  CHECK(f.eval(f.g.transpose(mb)) == Vec{1, 2, 3, 4});  // [B,1,2] -> [B,2,1]: same elements
  NodeId mb2 = f.noiseLeaf({2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(f.eval(f.g.transpose(mb2)) == Vec{1, 3, 2, 4, 5, 7, 6, 8});
}

TEST_CASE("evaluator: slice, squeeze, unsqueeze, pad", "[eval]") {
  Fixture f(2);
  NodeId m = f.param({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(f.eval(f.g.slice(m, 1, 1, 3)) == Vec{2, 3, 5, 6});
  CHECK(f.eval(f.g.slice(m, 0, 1, 2)) == Vec{4, 5, 6});
  CHECK(f.eval(f.g.slice(m, 1, 0, 1)) == Vec{1, 4});
  NodeId v = f.param({5}, {1, 2, 3, 4, 5});
  CHECK(f.eval(f.g.slice(v, 0, 2, 4)) == Vec{3, 4});
  NodeId vb = f.stateLeaf({4}, {1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(f.eval(f.g.slice(vb, 0, 1, 3)) == Vec{2, 3, 6, 7});
  // A point index: slice then squeeze.
  CHECK(f.eval(f.g.squeeze(f.g.slice(m, 1, 2, 3), 1)) == Vec{3, 6});
  CHECK(f.eval(f.g.squeeze(f.g.slice(m, 0, 0, 1), 0)) == Vec{1, 2, 3});
  CHECK(f.eval(f.g.squeeze(f.g.slice(vb, 0, 3, 4), 0)) == Vec{4, 8});
  NodeId u = f.g.unsqueeze(v, 1);
  CHECK(f.g[u].shape == Shape{false, {5, 1}});
  CHECK(f.eval(u) == Vec{1, 2, 3, 4, 5});
  CHECK(f.eval(f.g.unsqueeze(vb, 0)) == Vec{1, 2, 3, 4, 5, 6, 7, 8});

  NodeId p = f.param({2}, {1, 2});
  CHECK(f.eval(f.g.pad(p, 0, 1, 4)) == Vec{0, 1, 2, 0});
  CHECK(f.eval(f.g.pad(p, 0, 0, 3)) == Vec{1, 2, 0});
  NodeId q = f.param({2, 2}, {1, 2, 3, 4});
  CHECK(f.eval(f.g.pad(q, 1, 1, 4)) == Vec{0, 1, 2, 0, 0, 3, 4, 0});
  CHECK(f.eval(f.g.pad(q, 0, 1, 3)) == Vec{0, 0, 1, 2, 3, 4});
  NodeId pb = f.inputLeaf({2}, {1, 2, 3, 4});
  CHECK(f.eval(f.g.pad(pb, 0, 2, 4)) == Vec{0, 0, 1, 2, 0, 0, 3, 4});
  // Pad inverts slice.
  CHECK(f.eval(f.g.slice(f.g.pad(q, 1, 1, 4), 1, 1, 3)) == Vec{1, 2, 3, 4});
}

TEST_CASE("evaluator: concat along the last axis", "[eval]") {
  Fixture f(2);
  NodeId a = f.param({2}, {1, 2});
  NodeId b = f.param({1}, {3});
  NodeId c = f.param({3}, {4, 5, 6});
  CHECK(f.eval(f.g.concat({a, b, c})) == Vec{1, 2, 3, 4, 5, 6});
  NodeId m1 = f.param({2, 1}, {1, 2});
  NodeId m2 = f.param({2, 2}, {3, 4, 5, 6});
  CHECK(f.eval(f.g.concat({m1, m2})) == Vec{1, 3, 4, 2, 5, 6});
  CHECK(f.eval(f.g.concat({m2, m1})) == Vec{3, 4, 1, 5, 6, 2});
  NodeId xb = f.stateLeaf({2}, {1, 2, 3, 4});
  NodeId nine = f.param({1}, {9});
  CHECK(f.eval(f.g.concat({xb, nine})) == Vec{1, 2, 9, 3, 4, 9});
  CHECK(f.eval(f.g.concat({nine, xb, nine})) == Vec{9, 1, 2, 9, 9, 3, 4, 9});
}

TEST_CASE("evaluator: broadcast to the node's shape", "[eval]") {
  Fixture f(2);
  NodeId r = f.param({3}, {1, 2, 3});
  CHECK(f.eval(f.g.broadcast(r, Shape{false, {2, 3}})) == Vec{1, 2, 3, 1, 2, 3});
  CHECK(f.eval(f.g.broadcast(r, Shape{true, {3}})) == Vec{1, 2, 3, 1, 2, 3});
  CHECK(f.eval(f.g.broadcast(r, Shape{true, {2, 3}})) == Vec{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  NodeId c = f.param({2, 1}, {1, 2});
  CHECK(f.eval(f.g.broadcast(c, Shape{false, {2, 3}})) == Vec{1, 1, 1, 2, 2, 2});
  NodeId s = f.param({1, 1}, {5});
  CHECK(f.eval(f.g.broadcast(s, Shape{false, {2, 2}})) == Vec{5, 5, 5, 5});
  NodeId xb = f.stateLeaf({1}, {7, 8});
  CHECK(f.eval(f.g.broadcast(xb, Shape{true, {3}})) == Vec{7, 7, 7, 8, 8, 8});
  NodeId sb = f.inputLeaf({}, {1, -1});
  CHECK(f.eval(f.g.broadcast(sb, Shape{true, {2, 2}})) == Vec{1, 1, 1, 1, -1, -1, -1, -1});
}

TEST_CASE("evaluator: sums over axes, over the batch, and BatchOuterSum", "[eval]") {
  Fixture f(2);
  NodeId m = f.param({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(f.eval(f.g.sum(m, 0)) == Vec{5, 7, 9});
  CHECK(f.eval(f.g.sum(m, 1)) == Vec{6, 15});
  CHECK(f.eval(f.g.sum(m, -1)) == Vec{21});
  NodeId v = f.param({3}, {1, 2, 4});
  CHECK(f.eval(f.g.sum(v, 0)) == Vec{7});
  CHECK(f.eval(f.g.sum(v, -1)) == Vec{7});
  NodeId mb = f.stateLeaf({2, 2}, {1, 2, 3, 4, 10, 20, 30, 40});
  CHECK(f.eval(f.g.sum(mb, 0)) == Vec{4, 6, 40, 60});
  CHECK(f.eval(f.g.sum(mb, 1)) == Vec{3, 7, 30, 70});
  CHECK(f.eval(f.g.sum(mb, -1)) == Vec{10, 100});
  CHECK(f.eval(f.g.sumBatch(mb)) == Vec{11, 22, 33, 44});
  NodeId u = f.g.unsqueeze(v, 0);  // [1, 3]
  CHECK(f.eval(f.g.sum(u, 0)) == Vec{1, 2, 4});

  NodeId a = f.inputLeaf({2}, {1, 2, 3, 4});
  NodeId b = f.noiseLeaf({3}, {1, 0, 1, 0, 1, 2});
  CHECK(f.eval(f.g.batchOuterSum(a, b)) == Vec{1, 3, 7, 2, 4, 10});
  CHECK(f.eval(f.g.batchOuterSum(b, a)) == Vec{1, 2, 3, 4, 7, 10});
}

TEST_CASE("evaluator: evaluate returns every root, batched ones with the batch axis", "[eval]") {
  Fixture f(3);
  NodeId p = f.param({2}, {1, 2});
  NodeId x = f.stateLeaf({2}, {1, 1, 2, 2, 3, 3});
  NodeId y = f.g.mul(p, x);
  eval::Leaves leaves{f.params.data(), f.state.data()};
  auto vals = eval::evaluate(f.g, {y, p, f.g.sumBatch(y)}, f.L, leaves, 3);
  REQUIRE(vals.size() == 3);
  CHECK(vals[0] == Vec{1, 2, 2, 4, 3, 6});
  CHECK(vals[1] == Vec{1, 2});
  CHECK(vals[2] == Vec{6, 12});
}

namespace {

const char* kTinyCell = R"(cell tiny {
  dim n = 2
  input x[n]
  state h[n] = 0
  param W[n, n] ~ zeros()
  param b ~ zeros()
  h' = tanh(W @ h + x)
  output y = sum(h') * b
}
)";

}  // namespace

TEST_CASE("Evaluator: forward and backward of a tiny cell by hand", "[eval][kernel]") {
  StepIR ir = testing::lowerText("tiny.cell", kTinyCell);
  eval::Evaluator ev(ir);
  const ir::Layout& L = ev.layout();
  REQUIRE(L.paramSize == 5);
  REQUIRE(L.stateSize == 2);
  REQUIRE(L.inputSize == 2);
  REQUIRE(L.outputSize == 1);
  CHECK(ev.tapeSize(4) == 0);
  const int64_t B = 2;
  Vec W = {0.5, -0.25, 0.125, 1.0}, bvec = {0.75};
  Vec params = W;
  params.push_back(bvec[0]);
  Vec h = {0.1, -0.2, 0.3, 0.4};  // [B, 2]
  Vec x = {1.0, 0.5, -1.0, 0.0};

  // By hand.
  Vec hn(4), y(2);
  for (int b = 0; b < B; ++b) {
    for (int i = 0; i < 2; ++i)
      hn[b * 2 + i] = std::tanh(W[i * 2] * h[b * 2] + W[i * 2 + 1] * h[b * 2 + 1] + x[b * 2 + i]);
    y[b] = (hn[b * 2] + hn[b * 2 + 1]) * bvec[0];
  }
  Vec stateNext(4, -99), out(2, -99);
  ev.run(Stage::Forward, {.params = params.data(),
                          .state = h.data(),
                          .input = x.data(),
                          .stateNext = stateNext.data(),
                          .output = out.data(),
                          .batch = B});
  CHECK_THAT(stateNext, Approx(hn).epsilon(1e-15));
  CHECK_THAT(out, Approx(y).epsilon(1e-15));

  Vec dNext = {1, -2, 0.5, 3}, dOut = {2, -1};
  Vec dW(4, 0), dh(4, 0), dx(4, 0);
  double db = 0;
  for (int b = 0; b < B; ++b) {
    double dpre[2];
    for (int i = 0; i < 2; ++i) {
      double g = dNext[b * 2 + i] + dOut[b] * bvec[0];
      dpre[i] = g * (1 - hn[b * 2 + i] * hn[b * 2 + i]);
      dx[b * 2 + i] = dpre[i];
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        dW[i * 2 + j] += dpre[i] * h[b * 2 + j];
        dh[b * 2 + j] += W[i * 2 + j] * dpre[i];
      }
    db += dOut[b] * (hn[b * 2] + hn[b * 2 + 1]);
  }
  Vec dState(4, 123), dInput(4, 456), dParams(5, 1.0);  // dParams accumulates onto 1
  ev.run(Stage::Backward, {.params = params.data(),
                           .state = h.data(),
                           .input = x.data(),
                           .dStateNext = dNext.data(),
                           .dOutput = dOut.data(),
                           .dState = dState.data(),
                           .dInput = dInput.data(),
                           .dParams = dParams.data(),
                           .batch = B});
  CHECK_THAT(dState, Approx(dh).epsilon(1e-14));
  CHECK_THAT(dInput, Approx(dx).epsilon(1e-14));
  Vec expectParams = {1 + dW[0], 1 + dW[1], 1 + dW[2], 1 + dW[3], 1 + db};
  CHECK_THAT(dParams, Approx(expectParams).epsilon(1e-14));

  // A second call accumulates again.
  ev.run(Stage::Backward, {.params = params.data(),
                           .state = h.data(),
                           .input = x.data(),
                           .dStateNext = dNext.data(),
                           .dOutput = dOut.data(),
                           .dState = dState.data(),
                           .dInput = dInput.data(),
                           .dParams = dParams.data(),
                           .batch = B});
  Vec twice = {1 + 2 * dW[0], 1 + 2 * dW[1], 1 + 2 * dW[2], 1 + 2 * dW[3], 1 + 2 * db};
  CHECK_THAT(dParams, Approx(twice).epsilon(1e-14));
}

TEST_CASE("unroller: BPTT over a tiny cell equals the hand-unrolled recursion", "[eval][unroll]") {
  StepIR ir = testing::lowerText("tiny.cell", kTinyCell);
  eval::Evaluator ev(ir);
  std::mt19937 rng(7);
  const int64_t B = 2, T = 4;
  runtime::Sequence<double> seq = testing::randomSequence(ev.layout(), B, T, rng);
  REQUIRE(seq.noise.size() == T);
  auto traj = runtime::forwardSequence<double>(ev, seq);
  REQUIRE(traj.states.size() == T + 1);
  REQUIRE(traj.outputs.size() == T);
  CHECK(traj.states[0] == seq.initialState);
  // Each step is one forward call on the previous state.
  for (int64_t t = 0; t < T; ++t) {
    Vec next(4), out(2);
    ev.run(Stage::Forward, {.params = seq.params.data(),
                            .state = traj.states[t].data(),
                            .input = seq.inputs[t].data(),
                            .stateNext = next.data(),
                            .output = out.data(),
                            .batch = B});
    CHECK(next == traj.states[t + 1]);
    CHECK(out == traj.outputs[t]);
  }
  // Backward: the adjoint recursion by hand, through the kernel's one-step backward.
  testing::LinearLoss loss = testing::LinearLoss::random(ev.layout(), B, T, rng);
  auto grads = runtime::backwardSequence<double>(ev, seq, traj, loss.w, loss.v);
  Vec dNext = loss.v, dParams(5, 0.0);
  for (int64_t t = T - 1; t >= 0; --t) {
    Vec dState(4), dInput(4);
    ev.run(Stage::Backward, {.params = seq.params.data(),
                             .state = traj.states[t].data(),
                             .input = seq.inputs[t].data(),
                             .dStateNext = dNext.data(),
                             .dOutput = loss.w[t].data(),
                             .dState = dState.data(),
                             .dInput = dInput.data(),
                             .dParams = dParams.data(),
                             .batch = B});
    CHECK(dInput == grads.dInputs[t]);
    dNext = dState;
  }
  CHECK(dNext == grads.dInitialState);
  CHECK(dParams == grads.dParams);

  // Wrong buffer sizes are refused.
  runtime::Sequence<double> bad = seq;
  bad.params.pop_back();
  CHECK_THROWS_AS(runtime::forwardSequence<double>(ev, bad), std::invalid_argument);
}

namespace {

// Runs `f` in a child process, so that a crash becomes a failure message instead of ending the
// test run. Returns "" when f returned true.
std::string isolated(const std::function<bool()>& f) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {  // the child: no Catch crash report, no output
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, SIG_DFL);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    bool ok = false;
    try {
      ok = f();
    } catch (...) {
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return "crashed with signal " + std::to_string(WTERMSIG(status));
  if (WEXITSTATUS(status) != 0) return "wrong value";
  return "";
}

}  // namespace

TEST_CASE("lowered mean divides by the reduced count, whatever the graph's size", "[eval][lower]") {
  // The IR builder reads the operand's shape through a reference into the node vector, which the
  // sum node (or the axis constant) may reallocate (compiler/ir/Step.cpp, `mean`). Padding the
  // graph with k unused intermediates moves the reallocation onto the mean. Each k runs in a
  // child process: with the bug, the dangling read can also crash.
  std::string failures;
  for (int k = 0; k < 40; ++k) {
    std::string src = "cell r {\n  dim n = 3\n  input u[n]\n  state h[n] = 0\n  state M[n, n] = 0\n";
    for (int i = 0; i < k; ++i) src += "  t" + std::to_string(i) + " = h * " + std::to_string(i + 2) + "\n";
    src += "  h' = h * mean(u, 0) + mean(M, 1) + mean(M)\n  M' = M\n}\n";
    std::string result = isolated([&] {
      StepIR ir = testing::lowerText("mean.cell", src);
      eval::Evaluator ev(ir);
      std::vector<double> u = {1, 2, 6}, state = {1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9}, next(12);
      ev.run(Stage::Forward,
             {.state = state.data(), .input = u.data(), .stateNext = next.data(), .batch = 1});
      // mean(u, 0) = 3; mean(M, 1) = [2, 5, 8]; mean(M) = 5.
      return std::vector<double>(next.begin(), next.begin() + 3) == std::vector<double>{10, 13, 16};
    });
    if (!result.empty()) failures += "k = " + std::to_string(k) + ": " + result + "\n";
  }
  INFO(failures);
  CHECK(failures.empty());
}

namespace {

// The Evaluator behind a float interface, to run the float instantiation of the unroller.
class FloatAdapter : public SelfContainedKernel<float> {
 public:
  explicit FloatAdapter(eval::Evaluator& ev) : ev_(ev) {}
  const ir::Layout& layout() const override { return ev_.layout(); }
  int64_t tapeSize(int64_t batch) const override { return 2; }  // a dummy tape, to check it is kept

 protected:
  void forward(const StepArgs<float>& a) override {
    const ir::Layout& L = layout();
    const int64_t B = a.batch;
    Vec next(L.stateSize * B), out(L.outputSize * B);
    Vec p = wide(a.params, L.paramSize), s = wide(a.state, L.stateSize * B),
        x = wide(a.input, L.inputSize * B), n = wide(a.noise, L.noiseSize * B);
    ev_.run(Stage::Forward, {.params = p.data(),
                             .state = s.data(),
                             .input = x.data(),
                             .noise = n.data(),
                             .stateNext = next.data(),
                             .output = out.data(),
                             .batch = B});
    std::copy(next.begin(), next.end(), a.stateNext);
    std::copy(out.begin(), out.end(), a.output);
    a.tape[0] = 42, a.tape[1] = static_cast<float>(B);
  }
  void backward(const StepArgs<float>& a) override {
    CHECK(a.tape[0] == 42);
    const ir::Layout& L = layout();
    const int64_t B = a.batch;
    Vec ds(L.stateSize * B), dx(L.inputSize * B), dp(L.paramSize, 0.0);
    Vec p = wide(a.params, L.paramSize), s = wide(a.state, L.stateSize * B),
        x = wide(a.input, L.inputSize * B), n = wide(a.noise, L.noiseSize * B),
        dsn = wide(a.dStateNext, L.stateSize * B), dout = wide(a.dOutput, L.outputSize * B);
    ev_.run(Stage::Backward, {.params = p.data(),
                              .state = s.data(),
                              .input = x.data(),
                              .noise = n.data(),
                              .dStateNext = dsn.data(),
                              .dOutput = dout.data(),
                              .dState = ds.data(),
                              .dInput = dx.data(),
                              .dParams = dp.data(),
                              .batch = B});
    std::copy(ds.begin(), ds.end(), a.dState);
    std::copy(dx.begin(), dx.end(), a.dInput);
    for (size_t i = 0; i < dp.size(); ++i) a.dParams[i] += static_cast<float>(dp[i]);
  }

 private:
  static Vec wide(const float* p, int64_t n) { return n ? Vec(p, p + n) : Vec(); }
  eval::Evaluator& ev_;
};

template <class T, class U>
std::vector<T> convert(const std::vector<U>& v) {
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("unroller: the float instantiation agrees with the double one", "[eval][unroll]") {
  StepIR ir = testing::lowerFile(std::string(CELLC_SOURCE_DIR) + "/cells/gru.cell", {{"n", 5}, {"n_in", 2}});
  eval::Evaluator ev(ir);
  FloatAdapter fk(ev);
  std::mt19937 rng(11);
  const int64_t B = 2, T = 6;
  runtime::Sequence<double> sd = testing::randomSequence(ev.layout(), B, T, rng);
  // Round the inputs to float first, so both runs see the same numbers.
  runtime::Sequence<float> sf;
  sf.batch = B;
  sf.params = convert<float>(sd.params);
  sf.initialState = convert<float>(sd.initialState);
  for (auto& x : sd.inputs) sf.inputs.push_back(convert<float>(x));
  sd.params = convert<double>(sf.params);
  sd.initialState = convert<double>(sf.initialState);
  for (int64_t t = 0; t < T; ++t) sd.inputs[t] = convert<double>(sf.inputs[t]);
  sd.noise.clear();  // no noise: zeros

  testing::LinearLoss loss = testing::LinearLoss::random(ev.layout(), B, T, rng);
  auto td = runtime::forwardSequence<double>(ev, sd);
  auto tf = runtime::forwardSequence<float>(fk, sf);
  REQUIRE(tf.tapes.size() == T);
  CHECK(tf.tapes[3] == std::vector<float>{42, 2});
  CHECK_THAT(convert<double>(tf.finalState()), Approx(td.finalState()).margin(1e-5));
  std::vector<std::vector<float>> wf;
  for (auto& w : loss.w) wf.push_back(convert<float>(w));
  auto gd = runtime::backwardSequence<double>(ev, sd, td, loss.w, loss.v);
  auto gf = runtime::backwardSequence<float>(fk, sf, tf, wf, convert<float>(loss.v));
  CHECK_THAT(convert<double>(gf.dParams), Approx(gd.dParams).margin(1e-4));
  CHECK_THAT(convert<double>(gf.dInitialState), Approx(gd.dInitialState).margin(1e-4));
  CHECK_THAT(convert<double>(gf.dInputs[0]), Approx(gd.dInputs[0]).margin(1e-4));
}
