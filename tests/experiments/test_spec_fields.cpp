// The schema table and the typed settings cannot drift apart: every key is bound to a field of its
// own (a row carries its member, and the type comes from it), and every field has a key (a struct
// holds as many fields as the table binds to it). Defaults are the schema's.
#include <catch2/catch.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>

#include "experiment/Spec.h"

using namespace cellc::runtime;

namespace {

// The number of fields of an aggregate: the most initializers it takes.
struct AnyField {
  template <class T> operator T() const;
};
template <class T, class... A> constexpr size_t fieldCount() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) return fieldCount<T, A..., AnyField>();
  else return sizeof...(A);
}

size_t boundKeys(FieldRef::Scope scope, const std::string& prefix) {
  size_t n = 0;
  for (const KeySpec& k : experimentKeys())
    if (k.field.scope == scope && k.path.rfind(prefix, 0) == 0) ++n;
  return n;
}

// A value of the key's type unlike its default.
Value marker(const KeySpec& k, int i) {
  Value v{Value::Kind::Int};
  const double x = 1000 + i;
  if (k.type == "int") v = {Value::Kind::Int, x};
  if (k.type == "float") v = {Value::Kind::Float, x + 0.5};
  if (k.type == "bool") v = {Value::Kind::Bool, 0, k.def != "true"};
  if (k.type == "string") v = {Value::Kind::String, 0, false, "m" + std::to_string(i)};
  if (k.type == "floats") v = {Value::Kind::Floats, 0, false, "", {x}};
  if (k.type == "strings") v = {Value::Kind::Strings, 0, false, "", {}, {"m" + std::to_string(i)}};
  return v;
}

bool same(const Value& a, const Value& b) {
  return a.num == b.num && a.flag == b.flag && a.str == b.str && a.nums == b.nums && a.strs == b.strs;
}

void* ownerIn(Experiment& e, AnalysisSpec& a, FieldRef::Scope s) {
  switch (s) {
    case FieldRef::Scope::Experiment: return &e;
    case FieldRef::Scope::Phase: return &e.base;
    case FieldRef::Scope::Analysis: return &a;
    case FieldRef::Scope::None: break;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("every field of the typed settings has a schema key, and every key a field", "[spec]") {
  CHECK(fieldCount<TaskSettings>() == boundKeys(FieldRef::Scope::Phase, "task."));
  CHECK(fieldCount<TrainSettings>() == boundKeys(FieldRef::Scope::Phase, "train."));
  CHECK(fieldCount<EwcSettings>() == boundKeys(FieldRef::Scope::Phase, "ewc."));
  CHECK(fieldCount<PhaseSettings>() == 3);
  CHECK(fieldCount<AnalysisSpec>() == boundKeys(FieldRef::Scope::Analysis, "analysis[].") + 1);  // + where
  // path, text, dims, consts, params, base, phases, analyses and where are no keys of their own.
  CHECK(fieldCount<Experiment>() == boundKeys(FieldRef::Scope::Experiment, "") + 9);
  for (const KeySpec& k : experimentKeys()) {
    INFO(k.path);
    const bool byHand = k.path.find('*') != std::string::npos || k.path == "phase[].name";
    CHECK((k.field.scope == FieldRef::Scope::None) == byHand);
  }
}

TEST_CASE("each key writes a field of its own", "[spec]") {
  const std::vector<KeySpec>& keys = experimentKeys();
  for (size_t i = 0; i < keys.size(); ++i) {
    const KeySpec& k = keys[i];
    if (k.field.scope == FieldRef::Scope::None) continue;
    INFO(k.path);
    Experiment e = experimentFromEdits({}, "test");
    AnalysisSpec a;
    const Experiment before = e;
    const AnalysisSpec beforeA = a;
    k.field.set(ownerIn(e, a, k.field.scope), marker(k, static_cast<int>(i)));
    CHECK(same(k.field.get(ownerIn(e, a, k.field.scope)), marker(k, static_cast<int>(i))));
    Experiment b = before;
    AnalysisSpec bA = beforeA;
    for (const KeySpec& other : keys)
      if (&other != &k && other.field.scope == k.field.scope) {
        INFO("and " << other.path);
        CHECK(same(other.field.get(ownerIn(e, a, k.field.scope)), other.field.get(ownerIn(b, bA, k.field.scope))));
      }
  }
}

TEST_CASE("the loaded settings hold the schema's defaults", "[spec]") {
  // Nothing set reads as the key set to its schema default.
  const Experiment e = experimentFromEdits({}, "test");
  REQUIRE(e.phases.size() == 1);
  CHECK(e.phases[0].name == "train");
  for (const KeySpec& k : experimentKeys()) {
    if (k.def.empty() || (k.field.scope != FieldRef::Scope::Experiment && k.field.scope != FieldRef::Scope::Phase))
      continue;
    INFO(k.path);
    const Experiment set = experimentFromEdits({k.path + "=" + k.def}, "test");
    if (k.field.scope == FieldRef::Scope::Experiment) {
      CHECK(same(k.field.get(&e), k.field.get(&set)));
    } else {
      CHECK(same(k.field.get(static_cast<const PhaseSettings*>(&e.phases[0])),
                 k.field.get(static_cast<const PhaseSettings*>(&set.phases[0]))));
    }
  }
}

TEST_CASE("an analysis holds the schema's defaults", "[spec]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "cellc_spec_fields";
  std::filesystem::create_directories(dir);
  auto load = [&](const std::string& line) {
    const std::filesystem::path file = dir / "a.toml";
    std::ofstream(file) << "[cell]\nfile = \"x.cell\"\n[task]\nkind = \"copy_first\"\n[[analysis]]\nkind = \"trace\"\n"
                        << line << "\n";
    return loadExperiment(file.string()).analyses.at(0);
  };
  const AnalysisSpec unset = load("");
  for (const KeySpec& k : experimentKeys()) {
    if (k.def.empty() || k.field.scope != FieldRef::Scope::Analysis) continue;
    INFO(k.path);
    const AnalysisSpec set = load(k.path.substr(std::string("analysis[].").size()) + " = " + k.def);
    CHECK(same(k.field.get(&unset), k.field.get(&set)));
  }
  CHECK_FALSE(unset.trials);
  CHECK_FALSE(unset.states);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a phase starts from the top level's settings, then its own", "[spec]") {
  const Experiment e =
      experimentFromEdits({"train.batch=7", "train.optimizer=\"adam\"", "task.kind=\"copy_first\""}, "test");
  CHECK(e.phases[0].train.batch == 7);
  CHECK(e.phases[0].train.optimizer == "adam");
  CHECK(e.phases[0].train.learningRate == 0.001);  // the schema's
  CHECK(e.phases[0].task.kind == "copy_first");
  CHECK(keyWhere(e, e.phases[0], "train.batch") == "test: train.batch=7");
  CHECK(keyWhere(e, e.phases[0], "train.clip_norm") == "test (train.clip_norm at its default)");
}

namespace {

// An experiment of a cell and a copy_first task, then `rest`, loaded from DIR/NAME.
Experiment loadWith(const std::filesystem::path& dir, const std::string& name, const std::string& rest) {
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / name;
  std::ofstream(file) << "[cell]\nfile = \"x.cell\"\n[task]\nkind = \"copy_first\"\n" << rest;
  return loadExperiment(file.string());
}

}  // namespace

TEST_CASE("analysis names and `after` are checked when the experiment is loaded", "[spec]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "cellc_spec_checks";
  auto load = [&](const std::string& analyses) { return loadWith(dir, "c.toml", analyses); };
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(load("[[analysis]]\nkind = \"trace\"\n[[analysis]]\nkind = \"trace\"\n"),
                    Contains("c.toml:8:1: error: two analyses are named 'trace'"));
  CHECK_THROWS_WITH(load("[[analysis]]\nkind = \"trace\"\nafter = \"task9\"\n"),
                    Contains("c.toml:7:1: error: analysis.after: no phase named 'task9'"));
  const Experiment e = load("[[analysis]]\nkind = \"trace\"\n[[analysis]]\nkind = \"trace\"\nname = \"again\"\nafter = \"train\"\n");
  CHECK(analysisName(e.analyses[0]) == "trace");
  CHECK(analysisName(e.analyses[1]) == "again");
  std::filesystem::remove_all(dir);
}

TEST_CASE("train.rehearse names a phase before the one that sets it", "[spec]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "cellc_spec_rehearse";
  auto load = [&](const std::string& phases) { return loadWith(dir, "r.toml", phases); };
  using Catch::Matchers::Contains;
  const std::string a = "[[phase]]\nname = \"a\"\n", b = "[[phase]]\nname = \"b\"\n";
  CHECK_THROWS_WITH(load(a + "train.rehearse = \"b\"\n" + b),
                    Contains("r.toml:7:7: error: key 'train.rehearse' of phase 'a': no phase named 'b' before it"));
  CHECK_THROWS_WITH(load(a + b + "train.rehearse = \"b\"\n"),
                    Contains("r.toml:9:7: error: key 'train.rehearse' of phase 'b': no phase named 'b' before it"));
  const Experiment e = load(a + b + "train.rehearse = \"a\"\n");
  CHECK(e.phases[0].train.rehearse.empty());
  CHECK(e.phases[1].train.rehearse == "a");
  std::filesystem::remove_all(dir);
}
