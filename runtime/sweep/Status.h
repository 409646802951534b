// The sweep's record of each run: RUN/sweep-status.json, written atomically by the driver when a
// run starts and when it ends. A run is done when its status says it finished with exit status 0
// and its summary.json exists; anything else is run again (resuming from its checkpoints).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cellc::runtime {

// Where a run stands. Compared as an enum; written as its name (runStateName) only at the edges:
// sweep-status.json, sweep.csv's status column and the driver's log.
enum class RunState { Pending, Running, Finished, Failed, Interrupted, Killed };
const char* runStateName(RunState s);
std::optional<RunState> parseRunState(const std::string& name);

struct RunStatus {
  RunState state = RunState::Pending;
  int exitCode = -1;              // of `cellc run`: 0 finished, 1 error, 130/143 interrupted,
                                  // 137 killed (SIGKILL: the OOM killer?)
  double seconds = 0;
  std::string error;              // the last lines of the log when it failed
  std::vector<std::string> sets;  // the run's --set edits and profile: a rerun checks they agree
  std::string profile;
};

RunStatus readStatus(const std::filesystem::path& runDir);
void writeStatus(const std::filesystem::path& runDir, const RunStatus& s);
bool runDone(const std::filesystem::path& runDir);

// The state a `cellc run` exit status means, and its exit status for a signal death (128 + sig).
RunState stateOfExit(int exitCode, bool summaryExists);
// What a killed run's status and the log say about it (state "killed").
inline constexpr const char* kKilledReason =
    "killed by SIGKILL (out of memory? the kernel's OOM killer sends it: see dmesg or journalctl -k)";

// The last `lines` non-empty lines of a text file.
std::string tailLines(const std::filesystem::path& file, int lines);

// Writes via a temporary file and a rename, so that readers never see half a file
// (io::writeFileAtomic). Throws SweepError naming the path and the OS reason; no temp is left.
void writeAtomic(const std::filesystem::path& p, const std::string& text);

}  // namespace cellc::runtime
