#include "blas/Threads.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace cellc {

namespace {
std::atomic<int> gThreads{0};  // 0: not set, all cores
}

// Asked once: glibc answers by reading /sys/devices/system/cpu/online (an open, a read and a close),
// and threads() is asked at every parallel product when no count was set.
int hardwareThreads() {
  static const int n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return n;
}
void setThreads(int n) { gThreads = n > 0 ? n : hardwareThreads(); }
int threads() {
  int n = gThreads;
  return n > 0 ? n : hardwareThreads();
}

}  // namespace cellc
