// The local scheduler: `cellc sweep FILE --jobs N`.
#include <sys/wait.h>

#include <chrono>
#include <map>

#include "sweep/Driver.h"
#include "io/Spawn.h"

namespace cellc::runtime {

void runLocal(SweepDriver& d, const std::vector<size_t>& todo, int jobs, int keepFd) {
  using clock = std::chrono::steady_clock;
  struct Active {
    size_t index;
    clock::time_point start;
  };
  std::map<pid_t, Active> active;
  size_t next = 0;
  while (true) {
    while (sweepSignal() == 0 && static_cast<int>(active.size()) < jobs && next < todo.size()) {
      size_t i = todo[next++];
      d.started(i);
      pid_t pid = spawnChild(d.command(i), (d.runDir(i) / "log.txt").string(), keepFd);
      registerChild(pid);
      active[pid] = {i, clock::now()};
    }
    if (active.empty()) break;
    int code = 0;
    pid_t pid = waitChild(-1, &code);
    if (pid < 0) break;  // no children left (cannot happen while `active` holds some)
    auto it = active.find(pid);
    if (it == active.end()) continue;
    unregisterChild(pid);
    d.ended(it->second.index, code, std::chrono::duration<double>(clock::now() - it->second.start).count());
    active.erase(it);
  }
}

}  // namespace cellc::runtime
