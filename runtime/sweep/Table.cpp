#include "sweep/Table.h"

#include <charconv>
#include <cstdint>
#include <string_view>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/AtomicFile.h"
#include "sweep/Status.h"

namespace cellc::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void flatten(const json& j, const std::string& name, std::vector<std::pair<std::string, double>>& out) {
  auto sub = [&](const std::string& k) { return name.empty() ? k : name + "." + k; };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), sub(it.key()), out);
  } else if (j.is_array()) {
    if (j.size() > kMaxArray) return;
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], sub(std::to_string(i)), out);
  } else if (j.is_boolean()) {
    out.push_back({name, j.get<bool>() ? 1.0 : 0.0});
  } else if (j.is_number()) {
    out.push_back({name, j.get<double>()});
  }
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string readText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string numberText(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::vector<std::pair<std::string, double>> flattenSummary(const std::string& jsonText) {
  std::vector<std::pair<std::string, double>> out;
  json j = json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) flatten(j, "", out);
  return out;
}

namespace {

// A file written atomically in pieces (io::AtomicFile), its errors as SweepError ("cannot write
// PATH: REASON"); buffered, so a table of 10^6 rows is neither held whole nor written a row at a
// time.
class TableFile {
 public:
  explicit TableFile(const fs::path& p) try : file_(p.string()) {
  } catch (const io::WriteError& e) {
    throw SweepError(e.what());
  }
  TableFile& operator<<(std::string_view s) {
    buf_ += s;
    if (buf_.size() >= (1 << 20)) flush();
    return *this;
  }
  void commit() {
    flush();
    try {
      file_.commit();
    } catch (const io::WriteError& e) {
      throw SweepError(e.what());
    }
  }

 private:
  void flush() {
    try {
      file_.write(buf_);
    } catch (const io::WriteError& e) {
      throw SweepError(e.what());
    }
    buf_.clear();
  }
  io::AtomicFile file_;
  std::string buf_;
};

}  // namespace

// Written once when the sweep starts, one run per line (streamed: nothing per run is held).
void writeSweepManifest(const Sweep& s, const fs::path& outDir) {
  json axes = json::array();
  for (const SweepAxis& a : s.axes) axes.push_back(json{{"keys", a.keys}});
  json plots = json::array();
  for (const SweepPlot& p : s.plots)
    plots.push_back(json{{"metric", p.metric}, {"x", p.x}, {"group", p.group}, {"log", p.log}});
  TableFile f(outDir / "sweep.json");
  f << "{\n  \"name\": " << json(s.name).dump() << ",\n  \"file\": " << json(s.path).dump()
    << ",\n  \"base\": " << json(s.base).dump() << ",\n  \"profile\": " << json(s.profile).dump()
    << ",\n  \"sets\": " << json(s.sets).dump() << ",\n  \"axes\": " << axes.dump()
    << ",\n  \"plots\": " << plots.dump() << ",\n  \"seed_key\": \"experiment.seed\",\n  \"runs\": [";
  for (size_t i = 0; i < s.size(); ++i) {
    SweepRun r = s.run(i);
    json point = json::object();
    for (const SweepEdit& e : r.point) point[e.key] = e.shown;
    f << (i ? ",\n    " : "\n    ") << json{{"name", r.name}, {"point", point}, {"sets", r.sets}}.dump();
  }
  f << "\n  ]\n}\n";
  f.commit();
}

// Two passes over the run folders, so that memory does not grow with the grid: the first finds
// the summaries' columns (in order of first appearance), the second writes the rows.
void writeSweepTable(const Sweep& s, const fs::path& outDir) {
  std::vector<std::string> keys = s.axisKeys();
  std::vector<std::string> columns;
  std::map<std::string, size_t> known;  // name -> column index (axis keys and fixed columns: none)
  for (const std::string& k : keys) known[k] = SIZE_MAX;
  for (const char* k : {"run", "status", "exit_code"}) known[k] = SIZE_MAX;
  auto summaryOf = [&](const fs::path& dir, const RunStatus& st) {
    std::vector<std::pair<std::string, double>> v;
    if (st.state == RunState::Finished && fs::exists(dir / "summary.json")) v = flattenSummary(readText(dir / "summary.json"));
    return v;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    fs::path dir = outDir / s.runName(i);
    RunStatus st = readStatus(dir);
    for (auto& [name, v] : summaryOf(dir, st))
      if (known.emplace(name, columns.size()).second) columns.push_back(name);
  }
  TableFile f(outDir / "sweep.csv");
  std::string line = "run";
  for (const std::string& k : keys) line += "," + csvField(k);
  line += ",status,exit_code";
  for (const std::string& c : columns) line += "," + csvField(c);
  f << line << "\n";
  std::vector<std::string> cells(columns.size());
  for (size_t i = 0; i < s.size(); ++i) {
    SweepRun r = s.run(i);
    fs::path dir = outDir / r.name;
    RunStatus st = readStatus(dir);
    line = csvField(r.name);
    for (const SweepEdit& e : r.point) line += "," + csvField(e.shown);
    line += "," + std::string(runStateName(st.state)) + "," + (st.exitCode >= 0 ? std::to_string(st.exitCode) : "");
    std::fill(cells.begin(), cells.end(), std::string());
    for (auto& [name, v] : summaryOf(dir, st)) {
      auto it = known.find(name);
      // A summary written between the passes may add a column: it waits for the next table.
      if (it != known.end() && it->second != SIZE_MAX && cells[it->second].empty()) cells[it->second] = numberText(v);
    }
    for (const std::string& c : cells) line += "," + c;
    f << line << "\n";
  }
  f.commit();
}

}  // namespace cellc::runtime
