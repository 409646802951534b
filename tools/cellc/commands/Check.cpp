// `cellc check` and `cellc print`: the front end on its own.
#include <iostream>

#include "Cli.h"

namespace cellc::cli {

int runCheck(const Args& a) {
  int bad = 0;
  for (const std::string& path : a.positional)
    if (!loadOrReport(path, a.overrides)) ++bad;
  if (!a.flag("quiet"))
    std::cerr << (a.positional.size() - bad) << " of " << a.positional.size()
              << " file(s) checked clean\n";
  return bad ? 1 : 0;
}

int runPrint(const Args& a) {
  std::optional<Program> prog = loadOrReport(a.positional[0], a.overrides);
  if (!prog) return 1;
  std::cout << printProgram(*prog);
  return 0;
}

}  // namespace cellc::cli
