// Starting other programs: from an argument vector (fork + execv, never a shell), so that no file
// name or experiment name can ever be read as a command, and a crash in the child cannot take its
// parent down. The sweep driver's runs (`cellc run ...` children) and the figure scripts
// (run/Figures.h) start this way.
#pragma once

#include <sys/types.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace cellc::runtime {

// A child that could not be started (fork failed, the log file would not open).
struct SpawnError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// This executable (/proc/self/exe resolved when first asked), to start `cellc run` children with.
// spawnChild starts this path through a descriptor of the file opened then: the runs of a sweep
// run the binary it started with, even once the file is replaced or removed.
std::string selfExecutable();

// Starts argv (argv[0] a path) with stdin from /dev/null and stdout and stderr appended to
// `logPath` (empty: inherited). The child runs in its own process group, so a terminal's Ctrl-C
// reaches only the driver, which forwards it once; and it gets SIGINT if the driver dies (SIGKILL
// included), so a run checkpoints and stops rather than outliving its sweep. Descriptors other
// than 0-2 and `keepFd` are closed. Throws SpawnError if it cannot start.
pid_t spawnChild(const std::vector<std::string>& argv, const std::string& logPath, int keepFd = -1);

// The exit status of a finished child: its exit code, or 128 + the signal that ended it.
int exitCodeOf(int waitStatus);

// Waits for `pid` (or any child if -1) to end, retrying on EINTR. Returns the pid and sets *code.
pid_t waitChild(pid_t pid, int* code);

// SIGINT, SIGTERM and SIGHUP to the sweep driver: remembered, and forwarded as SIGINT (the signal
// on which `cellc run` checkpoints and exits 130) to every registered child.
void installSweepSignals();
int sweepSignal();  // the first signal received, 0 if none
void registerChild(pid_t pid);
void unregisterChild(pid_t pid);

}  // namespace cellc::runtime
