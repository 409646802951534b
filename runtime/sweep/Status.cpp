#include "sweep/Status.h"

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/AtomicFile.h"
#include "sweep/SweepFile.h"

namespace cellc::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;

void writeAtomic(const fs::path& p, const std::string& text) {
  try {
    io::writeFileAtomic(p.string(), text);
  } catch (const io::WriteError& e) {
    throw SweepError(e.what());  // "cannot write PATH: REASON"
  }
}

const char* runStateName(RunState s) {
  switch (s) {
    case RunState::Pending: return "pending";
    case RunState::Running: return "running";
    case RunState::Finished: return "finished";
    case RunState::Failed: return "failed";
    case RunState::Interrupted: return "interrupted";
    case RunState::Killed: return "killed";
  }
  return "unknown";
}

std::optional<RunState> parseRunState(const std::string& name) {
  for (RunState s : {RunState::Pending, RunState::Running, RunState::Finished, RunState::Failed,
                     RunState::Interrupted, RunState::Killed})
    if (name == runStateName(s)) return s;
  return std::nullopt;
}

RunStatus readStatus(const fs::path& runDir) {
  RunStatus s;
  std::ifstream in(runDir / "sweep-status.json");
  if (!in) return s;
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return s;  // a torn or foreign file: the run is simply not done
  // A state no cellc writes: a foreign file, whose run is simply not done.
  std::optional<RunState> state = parseRunState(j.value("state", "pending"));
  if (!state) return s;
  s.state = *state;
  s.exitCode = j.value("exit_code", -1);
  s.seconds = j.value("seconds", 0.0);
  s.error = j.value("error", "");
  s.profile = j.value("profile", "");
  if (j.contains("sets") && j["sets"].is_array())
    for (const json& x : j["sets"])
      if (x.is_string()) s.sets.push_back(x.get<std::string>());
  return s;
}

void writeStatus(const fs::path& runDir, const RunStatus& s) {
  json j = {{"state", runStateName(s.state)}, {"exit_code", s.exitCode}, {"seconds", s.seconds},
            {"error", s.error}, {"sets", s.sets},          {"profile", s.profile}};
  writeAtomic(runDir / "sweep-status.json", j.dump(2) + "\n");
}

bool runDone(const fs::path& runDir) {
  RunStatus s = readStatus(runDir);
  return s.state == RunState::Finished && s.exitCode == 0 && fs::exists(runDir / "summary.json");
}

RunState stateOfExit(int exitCode, bool summaryExists) {
  if (exitCode == 0) return summaryExists ? RunState::Finished : RunState::Failed;
  if (exitCode == 130 || exitCode == 143) return RunState::Interrupted;
  // The driver never sends SIGKILL: the kernel's OOM killer does (or someone's kill -9).
  if (exitCode == 128 + SIGKILL) return RunState::Killed;
  return RunState::Failed;
}

std::string tailLines(const fs::path& file, int lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);)
    if (l.find_first_not_of(" \t\r") != std::string::npos) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : "\n") + all[i];
  return out;
}

}  // namespace cellc::runtime
