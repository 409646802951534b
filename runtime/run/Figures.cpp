#include "run/Figures.h"

#include <system_error>

#include "io/Spawn.h"

namespace cellc::runtime {

namespace fs = std::filesystem;

void drawFigures(const FigureScript& s, const std::vector<FigureCall>& calls, std::ostream& log) {
  const fs::path own = fs::path(CELLC_SOURCE_DIR) / "experiments" / s.name;
  fs::path script = s.chosen;
  if (script.empty()) script = s.beside / s.name;
  if (!fs::exists(script)) script = own;
  const bool found = fs::exists(script);
  // A script other than cellc's own is code that runs with the user's rights: the log names it.
  std::error_code ec;
  if (found && !fs::equivalent(script, own, ec))
    log << "figures: running " << script.string() << " (" << s.notOwn << ")\n";
  const std::string python = "/usr/bin/python3";
  int code = 1;
  if (found && fs::exists(python)) {
    try {
      waitChild(spawnChild({python, "-c", "import numpy, matplotlib"}, "/dev/null"), &code);
    } catch (const SpawnError&) {
      code = 1;
    }
  }
  for (const FigureCall& c : calls) {
    std::vector<std::string> argv = {python, script.string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    if (!found || code != 0) {
      log << "figures: " << (found ? python + " with numpy and matplotlib not found" : "no " + script.string())
          << "; draw them later with\n  " << python;
      for (size_t k = 1; k < argv.size(); ++k) log << " " << argv[k];
      log << "\n";
      continue;
    }
    int rc = 1;
    try {
      waitChild(spawnChild(argv, ""), &rc);
    } catch (const SpawnError& e) {
      log << "figures: " << e.what() << "\n";
      continue;
    }
    if (rc != 0)
      log << "figures: " << script.string() << " failed" << (c.what.empty() ? "" : " for " + c.what)
          << " (exit status " << rc << ")\n";
  }
}

}  // namespace cellc::runtime
