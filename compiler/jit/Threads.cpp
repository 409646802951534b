#include "jit/Threads.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace cellc {

namespace {
std::atomic<int> gThreads{0};  // 0: not set, all cores
}

int hardwareThreads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }
void setThreads(int n) { gThreads = n > 0 ? n : hardwareThreads(); }
int threads() {
  int n = gThreads;
  return n > 0 ? n : hardwareThreads();
}

}  // namespace cellc
