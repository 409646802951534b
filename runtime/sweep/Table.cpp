#include "sweep/Table.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

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

void writeSweepManifest(const Sweep& s, const fs::path& outDir) {
  json axes = json::array();
  for (const SweepAxis& a : s.axes) axes.push_back(json{{"keys", a.keys}});
  json runs = json::array();
  for (const SweepRun& r : s.runs) {
    json point = json::object();
    for (const SweepEdit& e : r.point) point[e.key] = e.shown;
    runs.push_back(json{{"name", r.name}, {"point", point}, {"sets", r.sets}});
  }
  json plots = json::array();
  for (const SweepPlot& p : s.plots)
    plots.push_back(json{{"metric", p.metric}, {"x", p.x}, {"group", p.group}, {"log", p.log}});
  json j = {{"name", s.name}, {"file", s.path},   {"base", s.base}, {"profile", s.profile},
            {"sets", s.sets}, {"axes", axes},     {"runs", runs},   {"plots", plots},
            {"seed_key", "experiment.seed"}};
  writeAtomic(outDir / "sweep.json", j.dump(2) + "\n");
}

void writeSweepTable(const Sweep& s, const fs::path& outDir) {
  std::vector<std::string> keys = s.axisKeys();
  std::vector<std::string> columns;  // the summaries' numbers, in order of first appearance
  std::map<std::string, bool> known;
  for (const std::string& k : keys) known[k] = true;
  for (const char* k : {"run", "status", "exit_code"}) known[k] = true;
  std::vector<std::map<std::string, double>> values(s.runs.size());
  std::vector<RunStatus> status(s.runs.size());
  for (size_t i = 0; i < s.runs.size(); ++i) {
    fs::path dir = outDir / s.runs[i].name;
    status[i] = readStatus(dir);
    if (status[i].state != "finished" || !fs::exists(dir / "summary.json")) continue;
    for (auto& [name, v] : flattenSummary(readText(dir / "summary.json"))) {
      if (!known.count(name)) known[name] = true, columns.push_back(name);
      values[i][name] = v;
    }
  }
  std::ostringstream os;
  os << "run";
  for (const std::string& k : keys) os << "," << csvField(k);
  os << ",status,exit_code";
  for (const std::string& c : columns) os << "," << csvField(c);
  os << "\n";
  for (size_t i = 0; i < s.runs.size(); ++i) {
    const SweepRun& r = s.runs[i];
    os << csvField(r.name);
    for (const SweepEdit& e : r.point) os << "," << csvField(e.shown);
    os << "," << status[i].state << "," << (status[i].exitCode >= 0 ? std::to_string(status[i].exitCode) : "");
    for (const std::string& c : columns) {
      auto it = values[i].find(c);
      os << "," << (it == values[i].end() ? "" : numberText(it->second));
    }
    os << "\n";
  }
  writeAtomic(outDir / "sweep.csv", os.str());
}

}  // namespace cellc::runtime
