#include "sweep/SweepFile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "diag/Text.h"
#include "experiment/Model.h"
#include "run/Runner.h"
#include "experiment/Spec.h"

namespace cellc::runtime {

namespace fs = std::filesystem;

namespace {

std::string at(const std::string& file, const toml::source_region& r) {
  return file + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

[[noreturn]] void fail(const std::string& where, const std::string& msg) {
  throw SweepError(where + ": error: " + msg);
}

// A TOML value as the text `--set key=TEXT` takes: strings double-quoted, numbers in their
// shortest exact form (toml++ would print 0.1 as 0.10000000000000001), arrays in brackets.
std::string tomlText(const toml::node& n) {
  if (const auto* d = n.as_floating_point()) {
    double v = d->get();
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    std::string t(buf, end);
    if (t.find_first_of(".eE") == std::string::npos) t += ".0";  // stays a float
    return t;
  }
  if (const auto* s = n.as_string()) {
    std::string t = "\"";
    for (char c : s->get()) {
      if (c == '"' || c == '\\') t += '\\', t += c;
      else if (static_cast<unsigned char>(c) < 0x20) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", c);
        t += esc;
      } else t += c;
    }
    return t + "\"";
  }
  if (const auto* a = n.as_array()) {
    std::string t = "[";
    for (size_t i = 0; i < a->size(); ++i) t += (i ? ", " : "") + tomlText(*a->get(i));
    return t + "]";
  }
  if (const auto* tb = n.as_table()) {
    std::string t = "{";
    bool first = true;
    for (auto&& [k, v] : *tb) t += (first ? " " : ", ") + std::string(k.str()) + " = " + tomlText(v), first = false;
    return t + " }";
  }
  std::ostringstream os;  // integers, booleans, dates
  toml::table t;
  t.insert_or_assign("v", n);
  os << t;
  std::string s = os.str();
  return s.substr(s.find('=') + 2);
}

// How a value shows in a run name and in sweep.csv: strings bare, a path by its stem.
std::string shownText(const toml::node& n) {
  if (const auto* s = n.as_string()) {
    const std::string& v = s->get();
    if (v.find('/') != std::string::npos || v.ends_with(".cell") || v.ends_with(".toml"))
      return fs::path(v).stem().string();
    return v;
  }
  return tomlText(n);
}

struct Leaf {
  std::string key;
  const toml::node* node;
  toml::source_region where;
};

// Leaves of a table with dotted names (dotted keys and sub-tables both nest in TOML).
void leaves(const toml::table& t, const std::string& prefix, std::vector<Leaf>& out) {
  for (auto&& [k, node] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = node.as_table()) leaves(*sub, key, out);
    else out.push_back({key, &node, k.source()});
  }
}

// toml++ iterates tables by key; the file's order is the order of the lines.
void byLine(std::vector<Leaf>& v) {
  std::stable_sort(v.begin(), v.end(), [](const Leaf& a, const Leaf& b) {
    return std::tie(a.where.begin.line, a.where.begin.column) <
           std::tie(b.where.begin.line, b.where.begin.column);
  });
}

const toml::table* tableOf(const std::string& file, const toml::table& root, const char* name) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (!n->is_table()) fail(at(file, n->source()), std::string("'") + name + "' must be a table: [" + name + "]");
  return n->as_table();
}

void onlyKeys(const std::string& file, const toml::table& t, const std::string& section,
              const std::set<std::string>& allowed) {
  for (auto&& [k, node] : t)
    if (!allowed.count(std::string(k.str()))) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(at(file, k.source()), "unknown key '" + section + std::string(k.str()) + "' (expected one of " + list + ")");
    }
}

std::string str(const std::string& file, const toml::table& t, const std::string& section,
                const std::string& key, bool required, const toml::source_region& tableAt) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) fail(at(file, tableAt), "[" + section + "] needs a key '" + key + "'");
    return "";
  }
  if (!n->is_string()) fail(at(file, n->source()), "key '" + section + "." + key + "': expected a string");
  return n->as_string()->get();
}

// The label of a key in run names: "cell.file" -> cell, "experiment.seed" -> seed, otherwise the
// key without its section ("cell.dims.n" -> dims.n, "train.learning_rate" -> learning_rate).
std::string label(const std::string& key) {
  if (key == "cell.file") return "cell";
  if (key == "experiment.seed") return "seed";
  auto dot = key.find('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Removes "BASE:LINE:COL: error: " from a message about a --set edit: the location is that of
// the parsed edit text, not of anything in a file.
std::string stripBaseLocation(const std::string& msg, const std::string& base) {
  // An edit's error is located on the command line ("command line: --set K=V: error: ..."): the
  // sweep locates it itself, at its axis; keep the edit, drop the origin.
  const std::string cli = "command line: ";
  if (msg.rfind(cli, 0) == 0) {
    auto e = msg.find(": error: ");
    if (e != std::string::npos) return msg.substr(cli.size(), e - cli.size()) + ": " + msg.substr(e + 9);
  }
  if (msg.rfind(base + ":", 0) != 0) return msg;
  auto e = msg.find(": error: ", base.size());
  if (e == std::string::npos) return msg;
  std::string loc = msg.substr(base.size() + 1, e - base.size() - 1);
  if (loc.empty() || loc.find_first_not_of("0123456789:") != std::string::npos) return msg;
  return msg.substr(e + 9);
}

// The cell file as the runner finds it: beside the experiment, or from the working directory.
bool cellExists(const Experiment& e) {
  if (!e.where.count("cell.file")) return true;  // loadExperiment reports it
  const std::string& f = e.cellFile;
  return fs::exists(fs::path(e.path).parent_path() / f) || fs::exists(f);
}

}  // namespace

std::vector<std::string> Sweep::axisKeys() const {
  std::vector<std::string> keys;
  for (const SweepAxis& a : axes) keys.insert(keys.end(), a.keys.begin(), a.keys.end());
  return keys;
}

std::string sanitizeName(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || std::string("._,=+-").find(c) != std::string::npos;
    out += ok ? c : '_';
  }
  if (out.empty() || out[0] == '.' || out[0] == '-') out = "_" + out;
  return out;
}

std::string Sweep::naturalName(size_t r) const {
  std::string n;
  size_t rest = r, stride = count_;
  for (size_t ax = 0; ax < axes.size(); ++ax) {
    const SweepAxis& a = axes[ax];
    stride /= a.values.size();
    size_t i = rest / stride;
    rest %= stride;
    for (size_t k = 0; k < a.keys.size(); ++k) n += (n.empty() ? "" : ",") + labels_[ax][k] + "=" + a.shown[i][k];
  }
  n = sanitizeName(n.empty() ? "run" : n);
  if (n.size() > 150) n = n.substr(0, 140) + "-" + std::to_string(r);
  return n;
}

std::string Sweep::runName(size_t r) const { return namesKept_.empty() ? naturalName(r) : namesKept_.at(r); }

SweepRun Sweep::run(size_t r) const {
  if (r >= count_) throw std::out_of_range("sweep run " + std::to_string(r) + " of " + std::to_string(count_));
  SweepRun run;
  run.index = r;
  run.sets = sets;
  size_t rest = r, stride = count_;
  for (const SweepAxis& a : axes) {
    stride /= a.values.size();
    size_t i = rest / stride;
    rest %= stride;
    for (size_t k = 0; k < a.keys.size(); ++k) {
      run.sets.push_back(a.keys[k] + "=" + a.values[i][k]);
      run.point.push_back({a.keys[k], a.values[i][k], a.shown[i][k]});
    }
  }
  run.name = runName(r);
  return run;
}

Sweep loadSweep(const std::string& path, const std::vector<std::string>& cliSets,
                const std::string& cliProfile, bool allowLarge) {
  // A directory, a FIFO or a missing file: said so (the experiment file's check), not parsed.
  if (std::string why = unreadableFileReason(path); !why.empty())
    throw SweepError(path + ": error: the sweep file: " + why);
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(at(path, e.source()), std::string(e.description()));
  }
  onlyKeys(path, root, "", {"sweep", "set", "axes", "zip", "plot"});
  Sweep s;
  s.path = path;

  const toml::table* sw = tableOf(path, root, "sweep");
  if (!sw) throw SweepError(path + ": error: a sweep needs a [sweep] table with base = \"EXPERIMENT.toml\"");
  onlyKeys(path, *sw, "sweep.", {"base", "name", "profile", "seeds"});
  std::string base = str(path, *sw, "sweep", "base", true, sw->source());
  fs::path basePath = fs::path(path).parent_path() / base;
  if (!fs::exists(basePath))
    fail(at(path, sw->get("base")->source()), "key 'sweep.base': no such experiment file '" + basePath.string() + "'");
  s.base = fs::absolute(basePath).lexically_normal().string();
  s.name = str(path, *sw, "sweep", "name", false, sw->source());
  // The name is the default folder, sweeps/<name>: the run names' check, so no '/' or '..'.
  if (const toml::node* n = sw->get("name"); n && !isPlainName(s.name))
    fail(at(path, n->source()), "sweep.name '" + s.name.substr(0, 40) + "': " + kPlainName + " (choose the folder with --out)");
  if (s.name.empty()) s.name = fs::path(path).stem().string();
  if (!isPlainName(s.name))
    fail(path, "the file's stem '" + s.name.substr(0, 40) + "' is not a plain name for the sweep's folder: " + kPlainName +
                   "; give [sweep] name = \"...\"");
  s.profile = cliProfile.empty() ? str(path, *sw, "sweep", "profile", false, sw->source()) : cliProfile;

  // Edits of every run: the file's [set], then the command line's.
  std::vector<std::string> setWhere;  // where each edit was given
  if (const toml::table* set = tableOf(path, root, "set")) {
    std::vector<Leaf> ls;
    leaves(*set, "", ls);
    byLine(ls);
    for (const Leaf& l : ls) s.sets.push_back(l.key + "=" + tomlText(*l.node)), setWhere.push_back(at(path, l.where));
  }
  s.sets.insert(s.sets.end(), cliSets.begin(), cliSets.end());
  for (const std::string& c : cliSets) setWhere.push_back("command line: --set " + c.substr(0, 80));

  // Axes and zip groups, ordered as written; each key at most once.
  struct Pending {
    SweepAxis axis;
    toml::source_position pos;
  };
  std::vector<Pending> pending;
  std::map<std::string, std::string> seen;  // key -> where
  auto addKey = [&](SweepAxis& a, const Leaf& l) {
    std::string w = at(path, l.where);
    if (seen.count(l.key)) fail(w, "key '" + l.key + "' is swept twice (also at " + seen[l.key] + ")");
    seen[l.key] = w;
    const toml::array* arr = l.node->as_array();
    if (!arr) fail(w, "axis '" + l.key + "': expected a list of values, e.g. " + l.key + " = [1, 2]");
    if (arr->empty()) fail(w, "axis '" + l.key + "': the list of values is empty");
    for (const toml::node& v : *arr)
      if (v.is_table()) fail(w, "axis '" + l.key + "': a value is a table; name its keys in the axis instead");
    a.keys.push_back(l.key);
    a.where.push_back(w);
    return arr;
  };
  if (const toml::table* axes = tableOf(path, root, "axes")) {
    std::vector<Leaf> ls;
    leaves(*axes, "", ls);
    for (const Leaf& l : ls) {
      Pending p;
      const toml::array* arr = addKey(p.axis, l);
      for (const toml::node& v : *arr) p.axis.values.push_back({tomlText(v)});
      p.pos = l.where.begin;
      pending.push_back(std::move(p));
    }
  }
  if (const toml::node* z = root.get("zip")) {
    const toml::array* groups = z->as_array();
    if (!groups || !groups->is_array_of_tables())
      fail(at(path, z->source()), "'zip' must be an array of tables: [[zip]]");
    for (const toml::node& g : *groups) {
      std::vector<Leaf> ls;
      leaves(*g.as_table(), "", ls);
      byLine(ls);
      if (ls.empty()) fail(at(path, g.source()), "a [[zip]] group has no keys");
      Pending p;
      std::vector<const toml::array*> arrs;
      for (const Leaf& l : ls) arrs.push_back(addKey(p.axis, l));
      for (size_t k = 1; k < arrs.size(); ++k)
        if (arrs[k]->size() != arrs[0]->size())
          fail(p.axis.where[k], "[[zip]] key '" + p.axis.keys[k] + "' has " + std::to_string(arrs[k]->size()) +
                                    " values but '" + p.axis.keys[0] + "' has " + std::to_string(arrs[0]->size()) +
                                    ": zipped lists advance together and need equal lengths");
      for (size_t i = 0; i < arrs[0]->size(); ++i) {
        std::vector<std::string> row;
        for (const toml::array* a : arrs) row.push_back(tomlText(*a->get(i)));
        p.axis.values.push_back(row);
      }
      p.pos = ls[0].where.begin;
      pending.push_back(std::move(p));
    }
  }
  std::stable_sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  for (Pending& p : pending) s.axes.push_back(std::move(p.axis));
  if (const toml::node* seeds = sw->get("seeds")) {  // shorthand for an experiment.seed axis, last
    const toml::array* arr = seeds->as_array();
    std::string w = at(path, seeds->source());
    if (!arr || arr->empty()) fail(w, "key 'sweep.seeds': expected a non-empty list of integers");
    if (seen.count("experiment.seed"))
      fail(w, "key 'sweep.seeds' and an axis on 'experiment.seed' (at " + seen["experiment.seed"] + ") both set the seed");
    SweepAxis a;
    a.keys = {"experiment.seed"};
    a.where = {w};
    for (const toml::node& v : *arr) {
      if (!v.is_integer()) fail(w, "key 'sweep.seeds': expected a list of integers");
      a.values.push_back({tomlText(v)});
    }
    s.axes.push_back(std::move(a));
  }

  // An edit of a swept key would be overridden by every run's point, silently.
  for (size_t i = 0; i < s.sets.size(); ++i) {
    const std::string key = s.sets[i].substr(0, s.sets[i].find('='));
    for (const SweepAxis& a : s.axes)
      for (size_t k = 0; k < a.keys.size(); ++k)
        if (a.keys[k] == key)
          fail(setWhere[i], "key '" + key + "' is swept (its axis is at " + a.where[k] +
                                "): every run's point would override this setting; drop the setting or the axis");
  }

  // Labels for run names: short unless two keys would share one; each value's shown text, once.
  std::vector<std::string> keys = s.axisKeys();
  std::map<std::string, int> labelCount;
  for (const std::string& k : keys) ++labelCount[label(k)];
  auto labelOf = [&](const std::string& k) { return labelCount[label(k)] > 1 ? k : label(k); };
  for (SweepAxis& a : s.axes) {
    std::vector<std::string> labels;
    for (const std::string& k : a.keys) labels.push_back(labelOf(k));
    s.labels_.push_back(labels);
    for (const std::vector<std::string>& row : a.values) {
      std::vector<std::string> shown;
      for (const std::string& v : row) shown.push_back(shownText(*toml::parse("v = " + v).get("v")));
      a.shown.push_back(std::move(shown));
    }
  }

  // The product, first axis outermost; its size checked, as a wrapped product would list too few
  // runs or none (and a stride of 0 would divide by zero below).
  size_t total = 1;
  std::string sizes;
  for (const SweepAxis& a : s.axes) sizes += (sizes.empty() ? "" : " x ") + std::to_string(a.values.size());
  for (size_t k = 0; k < s.axes.size(); ++k)
    if (__builtin_mul_overflow(total, s.axes[k].values.size(), &total))
      fail(s.axes[k].where[0], "the grid has more runs than can be counted (" + sizes +
                                   " values: beyond 2^64 at axis '" + s.axes[k].keys[0] + "'); sweep fewer values");
  if (total > kMaxSweepRuns && !allowLarge)
    fail(path, "the grid has " + std::to_string(total) + " runs (" + sizes + " values), more than the limit of " +
                   std::to_string(kMaxSweepRuns) + " runs a sweep starts without being asked; pass --allow-large "
                   "to run it anyway, or sweep fewer values");
  s.count_ = total;

  // One folder per run. Names are unique without suffixes when, on every axis, the values' texts
  // in the name differ, none holds a ',' (so a name splits back into its parts) and no name is
  // cut at 150 characters; then no name is stored. Otherwise every name is made once here: a
  // repeated name gets the first free "-K" that is no other run's name (cells gru-2.cell,
  // a/gru.cell and b/gru.cell must not give two runs "cell=gru-2").
  bool unique = true;
  size_t longest = 0;
  for (size_t ax = 0; ax < s.axes.size(); ++ax) {
    std::set<std::string> texts;
    size_t widest = 0;
    for (size_t i = 0; i < s.axes[ax].values.size(); ++i) {
      std::string t;
      for (size_t k = 0; k < s.axes[ax].keys.size(); ++k) {
        std::string part = sanitizeName(s.labels_[ax][k] + "=" + s.axes[ax].shown[i][k]);
        if (part.find(',') != std::string::npos || part[0] == '_') unique = false;  // '_': a prefix sanitizeName added
        t += (k ? "," : "") + part;
      }
      widest = std::max(widest, t.size());
      if (!texts.insert(t).second) unique = false;
    }
    longest += widest + (ax ? 1 : 0);
  }
  if (longest > 150) unique = false;
  if (!unique) {
    std::vector<std::string> natural;  // each run's name from its point, before de-duplication
    natural.reserve(total);
    for (size_t r = 0; r < total; ++r) natural.push_back(s.naturalName(r));
    std::set<std::string> taken(natural.begin(), natural.end()), given;
    for (size_t r = 0; r < total; ++r) {
      std::string name = natural[r];
      if (given.count(name))
        for (int k = 2;; ++k)
          if (std::string t = name + "-" + std::to_string(k); !taken.count(t)) {
            name = t;
            break;
          }
      taken.insert(name);
      given.insert(name);
      s.namesKept_.push_back(name);
    }
  }

  // Figures drawn at the end.
  if (const toml::node* pl = root.get("plot")) {
    const toml::array* arr = pl->as_array();
    if (!arr || !arr->is_array_of_tables()) fail(at(path, pl->source()), "'plot' must be an array of tables: [[plot]]");
    for (const toml::node& n : *arr) {
      const toml::table& t = *n.as_table();
      onlyKeys(path, t, "plot.", {"metric", "x", "group", "log"});
      SweepPlot p;
      p.where = at(path, t.source());
      p.metric = str(path, t, "plot", "metric", true, t.source());
      p.x = str(path, t, "plot", "x", true, t.source());
      p.group = str(path, t, "plot", "group", false, t.source());
      if (const toml::node* lg = t.get("log")) {
        if (!lg->is_boolean()) fail(at(path, lg->source()), "key 'plot.log': expected true or false");
        p.log = lg->as_boolean()->get();
      }
      for (std::string* axisKey : {&p.x, &p.group}) {
        if (axisKey->empty()) continue;
        if (*axisKey == "seed") *axisKey = "experiment.seed";
        if (std::find(keys.begin(), keys.end(), *axisKey) == keys.end()) {
          std::string list;
          for (const std::string& k : keys) list += (list.empty() ? "" : ", ") + k;
          fail(at(path, t.get(axisKey == &p.x ? "x" : "group")->source()),
               "[[plot]] axis '" + *axisKey + "' is not an axis of the sweep (it has: " + list + ")");
        }
      }
      s.plots.push_back(p);
    }
  }
  return s;
}

std::vector<std::string> validateSweep(const Sweep& s) {
  std::vector<std::string> errors;
  // The experiment of these --set edits loads; with `models`, it also passes every check against
  // its compiled cell (checkExperiment).
  auto load = [&](const std::vector<std::string>& sets, std::string& err, ModelCache* models = nullptr) -> bool {
    try {
      Experiment e = loadExperiment(s.base, sets, s.profile);
      if (!cellExists(e)) {
        err = "no such cell file '" + e.cellFile + "' (looked beside " + s.base + " and in the working directory)";
        return false;
      }
      if (models) checkExperiment(e, *models);
      return true;
    } catch (const ExperimentError& e) {
      err = e.what();
      return false;
    }
  };
  std::string err;
  if (!load(s.sets, err)) {
    errors.push_back(s.path + ": error: the base experiment " + s.base +
                     (s.sets.empty() ? "" : " with the sweep's settings") + ": " + stripBaseLocation(err, s.base));
    return errors;  // every point would repeat it
  }
  // Each value of each axis on its own, so that an error names the axis key that caused it.
  for (const SweepAxis& a : s.axes)
    for (const std::vector<std::string>& row : a.values) {
      std::vector<std::string> sets = s.sets;
      for (size_t k = 0; k < a.keys.size(); ++k) sets.push_back(a.keys[k] + "=" + row[k]);
      if (load(sets, err)) continue;
      size_t k = 0;  // the key the message names, else the group's first
      for (size_t j = 0; j < a.keys.size(); ++j)
        if (err.find("'" + a.keys[j] + "'") != std::string::npos || err.find("--set " + a.keys[j]) != std::string::npos ||
            (a.keys[j] == "cell.file" && err.find("cell file") != std::string::npos))
          k = j;
      errors.push_back(a.where[k] + ": error: axis '" + a.keys[k] + "' = " + row[k] + ": " + stripBaseLocation(err, s.base));
    }
  if (!errors.empty()) return errors;
  // Then every point as a whole, its keys first, then against its compiled cell (dims that break
  // the cell, a task that does not fit it, an analysis out of range): what `cellc run` would
  // refuse at that run's start, found before the first run starts.
  ModelCache models;
  for (size_t i = 0; i < s.size(); ++i) {
    SweepRun r = s.run(i);
    if (!load(r.sets, err, &models)) errors.push_back(s.path + ": error: run " + r.name + ": " + stripBaseLocation(err, s.base));
  }
  return errors;
}

}  // namespace cellc::runtime
