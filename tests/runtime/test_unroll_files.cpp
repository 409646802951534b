// `cellc unroll` (runtime/unroll/UnrollFiles.h): a folder of .npy arrays through the JIT in
// float64, against forwardSequence/backwardSequence with the reference evaluator, against central
// finite differences of loss.npy, and every kind of bad folder; then the built binary's exit codes.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "driver/Compile.h"
#include "eval/Evaluate.h"
#include "io/npy.h"
#include "pipeline/Lower.h"
#include "sema/Program.h"
#include "unroll/Unroll.h"
#include "unroll/UnrollFiles.h"

using namespace cellc;
using Catch::Contains;
using runtime::LossKind;

namespace {

namespace fs = std::filesystem;

constexpr int64_t kT = 7, kB = 2;

// A fresh directory per test case, so parallel test runs do not collide.
struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_unroll_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

StepIR lowerCell(const std::string& file, const Overrides& o) {
  std::string err;
  SourceFile f = SourceFile::load(std::string(CELLC_SOURCE_DIR "/cells/") + file, &err);
  REQUIRE(err.empty());
  DiagnosticSink d;
  std::optional<Program> prog = loadCell(f, o, d);
  REQUIRE(prog);
  return lower(*prog);
}

std::vector<double> randn(std::mt19937& rng, int64_t n, double scale = 0.5) {
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = dist(rng);
  return v;
}

std::vector<int64_t> withTB(const ir::Slot& s, bool withT) {
  std::vector<int64_t> sh;
  if (withT) sh.push_back(kT);
  sh.push_back(kB);
  sh.insert(sh.end(), s.shape.dims.begin(), s.shape.dims.end());
  return sh;
}

// Arrays by file name (without .npy), as written to the folder.
using Arrays = std::map<std::string, std::vector<double>>;

void save(const std::string& dir, const std::string& name, const std::vector<int64_t>& shape,
          const std::vector<double>& v, Arrays& keep) {
  npy::write((fs::path(dir) / (name + ".npy")).string(), shape, v.data());
  keep[name] = v;
}

// Every param and every input, random.
Arrays writeFolder(const ir::Layout& L, const std::string& dir, std::mt19937& rng) {
  Arrays a;
  for (const ir::Slot& s : L.params) save(dir, s.name, s.shape.dims, randn(rng, s.size), a);
  for (const ir::Slot& s : L.inputs) save(dir, s.name, withTB(s, true), randn(rng, kT * kB * s.size, 1.0), a);
  return a;
}

npy::Array load(const std::string& dir, const std::string& name) {
  return npy::read((fs::path(dir) / (name + ".npy")).string());
}

// The same data as a Sequence, laid out by this test on its own (slot i at B * offset).
runtime::Sequence<double> sequenceOf(const ir::Layout& L, const Arrays& a) {
  runtime::Sequence<double> seq;
  seq.batch = kB;
  seq.params.assign(L.paramSize, 0);
  for (const ir::Slot& s : L.params)
    std::copy(a.at(s.name).begin(), a.at(s.name).end(), seq.params.begin() + s.offset);
  seq.initialState.assign(L.stateSize * kB, 0);
  for (const ir::Slot& s : L.states) {
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t i = 0; i < s.size; ++i) {
        double v = a.count(s.name)       ? a.at(s.name)[b * s.size + i]
                   : s.initParam >= 0 ? a.at(L.params[s.initParam].name)[i]
                                      : s.initValue;
        seq.initialState[kB * s.offset + b * s.size + i] = v;
      }
  }
  auto perStep = [&](const std::vector<ir::Slot>& slots, int64_t size) {
    std::vector<std::vector<double>> steps(kT, std::vector<double>(size * kB, 0.0));
    for (const ir::Slot& s : slots)
      if (a.count(s.name))
        for (int64_t t = 0; t < kT; ++t)
          for (int64_t i = 0; i < kB * s.size; ++i)
            steps[t][kB * s.offset + i] = a.at(s.name)[t * kB * s.size + i];
    return steps;
  };
  seq.inputs = perStep(L.inputs, L.inputSize);
  if (!L.noises.empty()) seq.noise = perStep(L.noises, L.noiseSize);
  return seq;
}

// [T][role size * B] -> slot s as [T, B, dims...].
std::vector<double> gather(const std::vector<std::vector<double>>& steps, const ir::Slot& s) {
  std::vector<double> out;
  for (const auto& step : steps)
    out.insert(out.end(), step.begin() + kB * s.offset, step.begin() + kB * (s.offset + s.size));
  return out;
}

std::vector<double> slice(const std::vector<double>& v, int64_t offset, int64_t n) {
  return std::vector<double>(v.begin() + offset, v.begin() + offset + n);
}

double maxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

runtime::UnrollSummary unroll(StepKernel<double>& k, const std::string& in, const std::string& out,
                              LossKind loss) {
  runtime::UnrollOptions o;
  o.loss = loss;
  return runtime::unrollFiles(k, k.layout(), o, in, out);
}

double lossOf(StepKernel<double>& k, const std::string& in, const std::string& out, LossKind loss) {
  unroll(k, in, out, loss);
  npy::Array a = load(out, "loss");
  REQUIRE(a.shape.empty());
  return a.data.at(0);
}

// d loss / d (entry i of param `name`) by central differences, rewriting the param's file.
double finiteDifference(StepKernel<double>& k, const ir::Slot& p, Arrays& a, int64_t i,
                        const std::string& in, const std::string& out, LossKind loss,
                        double eps = 1e-5) {
  std::vector<double> v = a.at(p.name);
  auto at = [&](double x) {
    std::vector<double> w = v;
    w[i] = x;
    Arrays scratch;
    save(in, p.name, p.shape.dims, w, scratch);
    return lossOf(k, in, out, loss);
  };
  double d = (at(v[i] + eps) - at(v[i] - eps)) / (2 * eps);
  Arrays scratch;
  save(in, p.name, p.shape.dims, v, scratch);  // restore
  return d;
}

const ir::Slot& param(const ir::Layout& L, const std::string& name) {
  const ir::Slot* s = L.find(ir::Role::Param, name);
  REQUIRE(s);
  return *s;
}

}  // namespace

TEST_CASE("unroll: outputs and final state equal forwardSequence with the evaluator", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  auto jit = compileCell<double>(ir);
  eval::Evaluator ref(ir);
  TempDir in, out;
  std::mt19937 rng(1);
  Arrays a = writeFolder(ir.layout, in.dir.string(), rng);
  const ir::Layout& L = ir.layout;

  SECTION("declared initial state") {}
  SECTION("initial state from h.npy") {
    save(in.dir.string(), "h", withTB(L.states[0], false), randn(rng, kB * L.states[0].size), a);
  }
  runtime::UnrollSummary s = unroll(*jit, in.dir.string(), out.dir.string(), LossKind::Auto);
  CHECK(s.steps == kT);
  CHECK(s.batch == kB);
  CHECK(s.precision == "f64");
  CHECK(s.loss == LossKind::None);  // no d_*.npy
  CHECK_FALSE(s.lossValue);
  CHECK(s.written.size() == L.outputs.size() + L.states.size());
  CHECK_FALSE(fs::exists(out.path("loss.npy")));

  runtime::Sequence<double> seq = sequenceOf(L, a);
  runtime::Trajectory<double> traj = runtime::forwardSequence(ref, seq);
  for (const ir::Slot& o : L.outputs) {
    npy::Array y = load(out.dir.string(), o.name);
    CHECK(y.shape == withTB(o, true));
    CHECK(y.dtype == "<f8");
    CHECK(maxAbsDiff(y.data, gather(traj.outputs, o)) <= 1e-10);
  }
  for (const ir::Slot& st : L.states) {
    npy::Array h = load(out.dir.string(), "final_" + st.name);
    CHECK(h.shape == withTB(st, false));
    CHECK(maxAbsDiff(h.data, slice(traj.finalState(), kB * st.offset, kB * st.size)) <= 1e-10);
  }
}

TEST_CASE("unroll: --loss adjoints gives backwardSequence's gradients", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  auto jit = compileCell<double>(ir);
  eval::Evaluator ref(ir);
  TempDir in, out;
  std::mt19937 rng(2);
  const std::string dir = in.dir.string();
  Arrays a = writeFolder(ir.layout, dir, rng);
  const ir::Layout& L = ir.layout;
  const ir::Slot& y = L.outputs.at(0);
  const ir::Slot& h = L.states.at(0);
  save(dir, "d_" + y.name, withTB(y, true), randn(rng, kT * kB * y.size, 1.0), a);
  save(dir, "d_final_" + h.name, withTB(h, false), randn(rng, kB * h.size, 1.0), a);

  // The default loss is adjoints once a d_*.npy is there.
  runtime::UnrollSummary s = unroll(*jit, dir, out.dir.string(), LossKind::Auto);
  REQUIRE(s.loss == LossKind::Adjoints);
  REQUIRE(s.lossValue);

  runtime::Sequence<double> seq = sequenceOf(L, a);
  runtime::Trajectory<double> traj = runtime::forwardSequence(ref, seq);
  std::vector<std::vector<double>> dOut(kT);
  for (int64_t t = 0; t < kT; ++t)
    dOut[t] = slice(a.at("d_" + y.name), t * kB * y.size, kB * y.size);  // one output at offset 0
  const std::vector<double>& dFinal = a.at("d_final_" + h.name);
  runtime::SequenceGradients<double> g = runtime::backwardSequence(ref, seq, traj, dOut, dFinal);

  double loss = 0;
  for (int64_t t = 0; t < kT; ++t)
    for (size_t i = 0; i < dOut[t].size(); ++i) loss += dOut[t][i] * traj.outputs[t][i];
  for (size_t i = 0; i < dFinal.size(); ++i) loss += dFinal[i] * traj.finalState()[i];
  CHECK(std::fabs(*s.lossValue - loss) <= 1e-10 * std::max(1.0, std::fabs(loss)));
  CHECK(std::fabs(load(out.dir.string(), "loss").data.at(0) - loss) <= 1e-10 * std::max(1.0, std::fabs(loss)));

  for (const ir::Slot& p : L.params) {
    INFO("param " << p.name);
    npy::Array gp = load(out.dir.string(), "grad_" + p.name);
    CHECK(gp.shape == p.shape.dims);
    CHECK(maxAbsDiff(gp.data, slice(g.dParams, p.offset, p.size)) <= 1e-10);
  }
  for (const ir::Slot& x : L.inputs) {
    npy::Array gx = load(out.dir.string(), "grad_" + x.name);
    CHECK(gx.shape == withTB(x, true));
    CHECK(maxAbsDiff(gx.data, gather(g.dInputs, x)) <= 1e-10);
  }
  npy::Array gh = load(out.dir.string(), "grad_init_" + h.name);
  CHECK(gh.shape == withTB(h, false));
  CHECK(maxAbsDiff(gh.data, slice(g.dInitialState, kB * h.offset, kB * h.size)) <= 1e-10);
}

TEST_CASE("unroll: mse and mse_last gradients equal finite differences of loss.npy", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  auto jit = compileCell<double>(ir);
  TempDir in, out, fd;
  std::mt19937 rng(3);
  const std::string dir = in.dir.string();
  Arrays a = writeFolder(ir.layout, dir, rng);
  const ir::Layout& L = ir.layout;
  const ir::Slot& y = L.outputs.at(0);

  SECTION("mse with a mask") {
    save(dir, "target_" + y.name, withTB(y, true), randn(rng, kT * kB * y.size), a);
    std::vector<double> mask(kT * kB * y.size);
    std::bernoulli_distribution coin(0.7);
    for (double& m : mask) m = coin(rng) ? 1.0 : 0.0;
    save(dir, "mask_" + y.name, withTB(y, true), mask, a);
    unroll(*jit, dir, out.dir.string(), LossKind::Mse);

    // The loss by hand: sum(mask (y - target)^2) / (T B units), whatever the mask.
    std::vector<double> ys = load(out.dir.string(), y.name).data;
    double loss = 0;
    for (size_t i = 0; i < ys.size(); ++i) {
      double r = ys[i] - a.at("target_" + y.name)[i];
      loss += mask[i] * r * r;
    }
    loss /= static_cast<double>(kT * kB * y.size);
    CHECK(std::fabs(load(out.dir.string(), "loss").data.at(0) - loss) <= 1e-12);

    for (auto [name, i] : {std::pair{"W_hh", 7}, {"b_z", 2}, {"W_rx", 4}}) {
      INFO(name << "[" << i << "]");
      const ir::Slot& p = param(L, name);
      double analytic = load(out.dir.string(), std::string("grad_") + name).data.at(i);
      double numeric = finiteDifference(*jit, p, a, i, dir, fd.dir.string(), LossKind::Mse);
      CHECK(std::fabs(analytic - numeric) <= 1e-6 * std::max(std::fabs(numeric), 1e-3));
    }
  }
  SECTION("mse_last") {
    save(dir, "target_" + y.name, withTB(y, false), randn(rng, kB * y.size), a);
    runtime::UnrollSummary s = unroll(*jit, dir, out.dir.string(), LossKind::MseLast);
    std::vector<double> ys = load(out.dir.string(), y.name).data;
    double loss = 0;
    for (int64_t i = 0; i < kB * y.size; ++i) {
      double r = ys[(kT - 1) * kB * y.size + i] - a.at("target_" + y.name)[i];
      loss += r * r;
    }
    loss /= static_cast<double>(kB * y.size);
    REQUIRE(s.lossValue);
    CHECK(std::fabs(*s.lossValue - loss) <= 1e-12);

    const ir::Slot& p = param(L, "W_zh");
    double analytic = load(out.dir.string(), "grad_W_zh").data.at(11);
    double numeric = finiteDifference(*jit, p, a, 11, dir, fd.dir.string(), LossKind::MseLast);
    CHECK(std::fabs(analytic - numeric) <= 1e-6 * std::max(std::fabs(numeric), 1e-3));
  }
}

TEST_CASE("unroll: a state that starts from a param sends its gradient to the param", "[unroll]") {
  StepIR ir = lowerCell("dale_rnn.cell", {{"n", 5}, {"n_out", 2}});
  auto jit = compileCell<double>(ir);
  const ir::Layout& L = ir.layout;
  const ir::Slot& x = L.states.at(0);
  REQUIRE(x.initParam >= 0);
  const ir::Slot& x0 = L.params.at(x.initParam);
  REQUIRE(x0.name == "x0");
  TempDir in, out, fd;
  std::mt19937 rng(4);
  const std::string dir = in.dir.string();
  Arrays a = writeFolder(L, dir, rng);
  for (const ir::Slot& e : L.noises) save(dir, e.name, withTB(e, true), randn(rng, kT * kB * e.size), a);
  const ir::Slot& z = L.outputs.at(0);
  save(dir, "target_" + z.name, withTB(z, true), randn(rng, kT * kB * z.size), a);

  unroll(*jit, dir, out.dir.string(), LossKind::Mse);
  std::vector<double> gx0 = load(out.dir.string(), "grad_x0").data;
  std::vector<double> gInit = load(out.dir.string(), "grad_init_x").data;
  REQUIRE(gx0.size() == static_cast<size_t>(x0.size));
  double norm = 0;
  for (int64_t i = 0; i < x0.size; ++i) {
    INFO("x0[" << i << "]");
    // x0 appears in no equation: its whole gradient is the batch sum of the initial state's.
    double sum = 0;
    for (int64_t b = 0; b < kB; ++b) sum += gInit[b * x.size + i];
    CHECK(std::fabs(gx0[i] - sum) <= 1e-12);
    double numeric = finiteDifference(*jit, x0, a, i, dir, fd.dir.string(), LossKind::Mse);
    CHECK(std::fabs(gx0[i] - numeric) <= 1e-6 * std::max(std::fabs(numeric), 1e-3));
    norm += std::fabs(gx0[i]);
  }
  CHECK(norm > 1e-6);  // the check above means something

  // With x.npy given, x0 is unused: its gradient is zero.
  save(dir, x.name, withTB(x, false), randn(rng, kB * x.size), a);
  unroll(*jit, dir, out.dir.string(), LossKind::Mse);
  for (double v : load(out.dir.string(), "grad_x0").data) CHECK(v == 0.0);
}

// Two inputs, noise, two outputs (one of them a scalar), two states (one starting from a param),
// a scalar param: every slot past the first sits at a non-zero offset.
constexpr const char* kMultiCell = R"(cell multi {
  dim n = 3
  dim m = 2
  input a[n]
  input b[m]
  noise e[n]
  param W[n, n] ~ orthogonal()
  param V[n, m] ~ glorot()
  param s ~ fill(0.5)
  param c0[n] ~ zeros()
  state h[n] = c0
  state c[m, n] = 0.25
  h' = tanh(W @ h + V @ b + s * a + 0.1 * e + sum(c, 0))
  c' = 0.5 * c + outer(b, h')
  output y = h' * s
  output q = sum(c')
}
)";

TEST_CASE("unroll: every slot of a cell with several of each role lands in its file", "[unroll]") {
  SourceFile file("multi.cell", kMultiCell);
  DiagnosticSink diags;
  std::optional<Program> prog = loadCell(file, {}, diags);
  REQUIRE(prog);
  StepIR ir = lower(*prog);
  const ir::Layout& L = ir.layout;
  REQUIRE(L.inputs.size() == 2);
  REQUIRE(L.outputs.size() == 2);
  REQUIRE(L.states.size() == 2);
  auto jit = compileCell<double>(ir);
  eval::Evaluator ref(ir);
  TempDir in, out;
  std::mt19937 rng(8);
  const std::string dir = in.dir.string();
  Arrays a = writeFolder(L, dir, rng);

  SECTION("everything given") {
    for (const ir::Slot& e : L.noises) save(dir, e.name, withTB(e, true), randn(rng, kT * kB * e.size), a);
    const ir::Slot& c = *L.find(ir::Role::State, "c");
    save(dir, c.name, withTB(c, false), randn(rng, kB * c.size), a);
    for (const ir::Slot& o : L.outputs)
      save(dir, "d_" + o.name, withTB(o, true), randn(rng, kT * kB * o.size, 1.0), a);
    for (const ir::Slot& st : L.states)
      save(dir, "d_final_" + st.name, withTB(st, false), randn(rng, kB * st.size, 1.0), a);
  }
  SECTION("defaults: no noise, declared initial states, one adjoint") {
    const ir::Slot& q = *L.find(ir::Role::Output, "q");
    save(dir, "d_" + q.name, withTB(q, true), randn(rng, kT * kB * q.size, 1.0), a);
  }
  runtime::UnrollSummary s = unroll(*jit, dir, out.dir.string(), LossKind::Auto);
  REQUIRE(s.loss == LossKind::Adjoints);
  CHECK(s.warnings.empty());

  runtime::Sequence<double> seq = sequenceOf(L, a);
  runtime::Trajectory<double> traj = runtime::forwardSequence(ref, seq);
  std::vector<std::vector<double>> dOut(kT, std::vector<double>(L.outputSize * kB, 0.0));
  std::vector<double> dFinal(L.stateSize * kB, 0.0);
  for (const ir::Slot& o : L.outputs)
    if (a.count("d_" + o.name))
      for (int64_t t = 0; t < kT; ++t)
        for (int64_t i = 0; i < kB * o.size; ++i)
          dOut[t][kB * o.offset + i] = a.at("d_" + o.name)[t * kB * o.size + i];
  for (const ir::Slot& st : L.states)
    if (a.count("d_final_" + st.name))
      std::copy_n(a.at("d_final_" + st.name).begin(), kB * st.size, dFinal.begin() + kB * st.offset);
  runtime::SequenceGradients<double> g = runtime::backwardSequence(ref, seq, traj, dOut, dFinal);

  for (const ir::Slot& o : L.outputs) {
    INFO("output " << o.name);
    npy::Array y = load(out.dir.string(), o.name);
    CHECK(y.shape == withTB(o, true));
    CHECK(maxAbsDiff(y.data, gather(traj.outputs, o)) <= 1e-10);
  }
  for (const ir::Slot& st : L.states) {
    INFO("state " << st.name);
    npy::Array h = load(out.dir.string(), "final_" + st.name);
    CHECK(h.shape == withTB(st, false));
    CHECK(maxAbsDiff(h.data, slice(traj.finalState(), kB * st.offset, kB * st.size)) <= 1e-10);
    npy::Array gi = load(out.dir.string(), "grad_init_" + st.name);
    CHECK(maxAbsDiff(gi.data, slice(g.dInitialState, kB * st.offset, kB * st.size)) <= 1e-10);
  }
  for (const ir::Slot& x : L.inputs) {
    INFO("input " << x.name);
    CHECK(maxAbsDiff(load(out.dir.string(), "grad_" + x.name).data, gather(g.dInputs, x)) <= 1e-10);
  }
  for (const ir::Slot& p : L.params) {
    INFO("param " << p.name);
    std::vector<double> expected = slice(g.dParams, p.offset, p.size);
    for (const ir::Slot& st : L.states)  // h starts from c0 unless h.npy was given
      if (st.initParam >= 0 && L.params[st.initParam].name == p.name && !a.count(st.name))
        for (int64_t b = 0; b < kB; ++b)
          for (int64_t i = 0; i < p.size; ++i)
            expected[i] += g.dInitialState[kB * st.offset + b * st.size + i];
    npy::Array gp = load(out.dir.string(), "grad_" + p.name);
    CHECK(gp.shape == p.shape.dims);
    CHECK(maxAbsDiff(gp.data, expected) <= 1e-10);
  }
}

TEST_CASE("unroll: bad folders are errors that name the file", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  // Compiled once for all the sections (Catch runs the test case again for each).
  static std::unique_ptr<CompiledCell<double>> jit = compileCell<double>(ir);
  TempDir in, out;
  std::mt19937 rng(5);
  const std::string dir = in.dir.string(), outDir = out.path("results");
  Arrays a = writeFolder(ir.layout, dir, rng);
  // gru's input x[n_in] and output y, whatever their sizes; the tests need x to be a vector.
  REQUIRE(ir.layout.find(ir::Role::Input, "x")->shape.dims.size() == 1);
  REQUIRE(ir.layout.find(ir::Role::Output, "y")->shape.dims.size() == 1);
  const int64_t xDim = ir.layout.find(ir::Role::Input, "x")->shape.dims[0];
  const int64_t yDim = ir.layout.find(ir::Role::Output, "y")->shape.dims[0];
  auto run = [&](LossKind loss = LossKind::Auto) { return unroll(*jit, dir, outDir, loss); };
  auto write = [&](const std::string& name, const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    save(dir, name, shape, std::vector<double>(n, 0.5), a);
  };
  auto spit = [&](const std::string& file, const std::string& bytes) {
    std::ofstream f(in.path(file), std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };

  SECTION("a missing param") {
    fs::remove(in.path("W_zh.npy"));
    REQUIRE_THROWS_WITH(run(), Contains("missing") && Contains("W_zh.npy") &&
                                   Contains("param W_zh, shape (5, 5)"));
  }
  SECTION("a wrong shape") {
    const std::string nIn = std::to_string(xDim), wrong = std::to_string(xDim + 1);
    write("x", {kT, kB, xDim + 1});
    REQUIRE_THROWS_WITH(run(), Contains("x.npy has shape (7, 2, " + wrong + ") but input x needs (T, B, " +
                                        nIn + ") = (7, 2, " + nIn + ")"));
  }
  SECTION("a param of the wrong shape") {
    write("b_z", {5, 1});
    REQUIRE_THROWS_WITH(run(), Contains("b_z.npy has shape (5, 1) but param b_z needs (5,)"));
  }
  SECTION("T disagrees with the input") {
    const std::string nOut = std::to_string(yDim);
    write("d_y", {kT - 1, kB, yDim});
    REQUIRE_THROWS_WITH(run(), Contains("d_y.npy has shape (6, 2, " + nOut + ")") &&
                                   Contains("(T, B, " + nOut + ") = (7, 2, " + nOut + ")") &&
                                   Contains("T = 7 and B = 2 come from") && Contains("x.npy"));
  }
  SECTION("B disagrees with the input") {
    write("h", {kB + 1, 5});
    REQUIRE_THROWS_WITH(run(), Contains("h.npy has shape (3, 5)") && Contains("(B, 5) = (2, 5)"));
  }
  SECTION("a file that is not .npy") {
    spit("b_r.npy", "W,x\n1,2\n");
    REQUIRE_THROWS_WITH(run(), Contains("b_r.npy") && Contains("not an .npy file"));
  }
  SECTION("a float16 file") {
    std::string dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }";
    std::string header = dict + std::string((64 - (10 + dict.size() + 1) % 64) % 64, ' ') + "\n";
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header + std::string(10, '\0');  // five float16 zeros
    spit("b_h.npy", bytes);
    REQUIRE_THROWS_WITH(run(), Contains("b_h.npy") && Contains("unsupported dtype '<f2'"));
  }
  SECTION("NaN in an input") {
    std::vector<double> x = a.at("x");
    x[(3 * kB + 1) * xDim + 0] = std::nan("");
    save(dir, "x", {kT, kB, xDim}, x, a);
    REQUIRE_THROWS_WITH(run(), Contains("x.npy holds NaN at index (3, 1, 0)"));
  }
  SECTION("Inf in a param") {
    std::vector<double> w = a.at("W_hh");
    w[7] = -INFINITY;
    save(dir, "W_hh", {5, 5}, w, a);
    REQUIRE_THROWS_WITH(run(), Contains("W_hh.npy holds Inf at index (1, 2)"));
  }
  SECTION("--loss mse without a target") {
    REQUIRE_THROWS_WITH(run(LossKind::Mse), Contains("needs a target") && Contains("target_y.npy"));
  }
  SECTION("a missing folder") {
    fs::remove_all(in.dir);
    REQUIRE_THROWS_WITH(run(), Contains(dir) && Contains("no such directory"));
  }
  // Nothing is written when the run fails.
  CHECK_FALSE(fs::exists(outDir));
}

TEST_CASE("unroll: an unknown .npy file is a warning that names the expected files", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  auto jit = compileCell<double>(ir);
  TempDir in, out;
  std::mt19937 rng(6);
  Arrays a = writeFolder(ir.layout, in.dir.string(), rng);
  save(in.dir.string(), "tagret_y", {kT, kB, 1}, std::vector<double>(kT * kB, 0.0), a);
  std::vector<std::string> seen;
  runtime::UnrollOptions o;
  o.onWarning = [&](const std::string& w) { seen.push_back(w); };
  runtime::UnrollSummary s = runtime::unrollFiles(*jit, ir.layout, o, in.dir.string(), out.dir.string());
  REQUIRE(s.warnings.size() == 1);
  CHECK(seen == s.warnings);
  CHECK_THAT(s.warnings[0], Contains("tagret_y.npy") && Contains("did you mean target_y.npy?") &&
                                Contains("W_zh.npy") && Contains("x.npy"));
  CHECK(fs::exists(out.path("y.npy")));
}

TEST_CASE("unroll: cellc unroll exits 1 on a bad folder and 2 on a bad command line", "[unroll]") {
  StepIR ir = lowerCell("gru.cell", {{"n", 5}});
  TempDir in, out;
  std::mt19937 rng(7);
  writeFolder(ir.layout, in.dir.string(), rng);
  auto cellc = [&](const std::string& extra) {
    std::string cmd = std::string("'") + CELLC_BINARY + "' unroll '" CELLC_SOURCE_DIR
                      "/cells/gru.cell' '" + in.dir.string() + "' --out '" + out.path("r") +
                      "' -D n=5 " + extra + " >/dev/null 2>&1";
    int status = std::system(cmd.c_str());
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };
  CHECK(cellc("") == 0);
  CHECK(fs::exists(out.path("r/y.npy")));
  CHECK(cellc("--precision f16") == 2);
  CHECK(cellc("--loss mean") == 2);
  fs::remove(in.path("W_hx.npy"));
  CHECK(cellc("") == 1);
  CHECK(cellc("--precision f32") == 1);
}

TEST_CASE("cellc emit-llvm --plan shows the three stages of a hoisted step", "[cli][hoist]") {
  auto plan = [](const std::string& cell) {
    std::string cmd = std::string("'") + CELLC_BINARY + "' emit-llvm --plan -D n=8 '" CELLC_SOURCE_DIR
                      "/cells/" + cell + "' 2>&1";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    while (size_t got = fread(buf, 1, sizeof buf, p)) out.append(buf, got);
    int status = pclose(p);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return out;
  };
  std::string dale = plan("dale_rnn.cell");
  INFO(dale);
  CHECK_THAT(dale, Contains("# hoisted (sequence-invariant): ") && Contains("W_rec [8, 8]"));
  size_t pro = dale.find("# prologue (invariant, once per sequence)"), fwd = dale.find("# forward (per step)"),
         bwd = dale.find("# backward (per step)"), epi = dale.find("# epilogue (once at the end of the backward walk)");
  CHECK(pro < fwd);
  CHECK(fwd < bwd);
  CHECK(bwd < epi);
  CHECK(epi != std::string::npos);
  CHECK_THAT(dale, Contains("-> hoisted+0") && Contains("-> d_hoisted+"));
  // A step with nothing invariant worth hoisting prints its two functions only.
  std::string gru = plan("gru.cell");
  CHECK_THAT(gru, Contains("# forward: ") && !Contains("prologue") && !Contains("hoisted"));
}
