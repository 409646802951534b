// The figures of a run or a sweep: a Python script (cellc's own experiments/plot.py or
// plot_sweep.py, or one that replaces it) started by Debian's python3 from an argument vector, so
// that no shell ever sees a path or a name. `cellc run` and `cellc sweep` both draw theirs here.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace cellc::runtime {

struct FigureScript {
  std::string name;               // "plot.py": cellc's own is experiments/<name> in the source tree
  std::filesystem::path chosen;   // --plot-script; empty: <name> in `beside` if there is one
  std::filesystem::path beside;   // the folder of the experiment or sweep file
  std::string notOwn;             // why the log names a script other than cellc's own
};

// One run of the script: its arguments after the script's path, and what the log calls that run
// when it fails ("metric M"; empty: nothing).
struct FigureCall {
  std::vector<std::string> args;
  std::string what;
};

// Runs the script once per call and waits for it; its output goes to ours. What cannot be drawn
// (no script, no python3 with numpy and matplotlib) is said in the log with the command that
// draws it later; a script that fails is said too. Never throws for a figure.
void drawFigures(const FigureScript& script, const std::vector<FigureCall>& calls,
                 std::ostream& log);

}  // namespace cellc::runtime
