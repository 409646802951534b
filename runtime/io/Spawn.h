// Starting another program without a shell: the arguments go to it as they are, so no file name
// or experiment name can ever be read as a command.
#pragma once

#include <string>
#include <vector>

namespace cellc::runtime {

struct SpawnResult {
  bool started = false;   // false: the program could not be run (error says why)
  int status = -1;        // its exit status, or 128 + the signal that ended it
  std::string error;
};

// Runs argv[0] (a path; not looked up in PATH) with argv and waits for it. `output`: a file that
// receives its stdout and stderr (appended), "/dev/null", or empty to share ours.
SpawnResult spawnAndWait(const std::vector<std::string>& argv, const std::string& output = "");

}  // namespace cellc::runtime
