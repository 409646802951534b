#include "sweep/Spawn.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "sweep/SweepFile.h"

namespace cellc::runtime {

namespace {

constexpr int kMaxChildren = 1024;
std::atomic<pid_t> gChildren[kMaxChildren];
volatile std::sig_atomic_t gSignal = 0;

void onSignal(int sig) {
  if (gSignal == 0) gSignal = sig;
  for (auto& c : gChildren) {
    pid_t p = c.load();
    if (p > 0) ::kill(p, SIGINT);
  }
}

// Closes every descriptor from `from` up, except `keep` (async-signal-safe).
void closeFrom(int from, int keep) {
  if (keep >= from) {
    if (keep > from) ::syscall(SYS_close_range, from, keep - 1, 0);
    ::syscall(SYS_close_range, keep + 1, ~0U, 0);
  } else {
    ::syscall(SYS_close_range, from, ~0U, 0);
  }
}

}  // namespace

std::string selfExecutable() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw SweepError(std::string("cannot find this executable: ") + std::strerror(errno));
  return std::string(buf, static_cast<size_t>(n));
}

pid_t spawnChild(const std::vector<std::string>& argv, const std::string& logPath, int keepFd) {
  // Everything the child needs is prepared here: between fork and exec only async-signal-safe calls.
  std::vector<char*> av;
  for (const std::string& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  int logFd = -1;
  if (!logPath.empty()) {
    logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logFd < 0) throw SweepError("cannot open " + logPath + ": " + std::strerror(errno));
  }
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const bool ownGroup = !logPath.empty();
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    if (logFd >= 0) ::close(logFd);
    if (nullFd >= 0) ::close(nullFd);
    throw SweepError(std::string("cannot start a run: fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    if (ownGroup) ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGINT);
    if (::getppid() != parent) ::_exit(130);  // the driver died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
    if (nullFd >= 0) ::dup2(nullFd, 0);
    if (logFd >= 0) {
      ::dup2(logFd, 1);
      ::dup2(logFd, 2);
    }
    closeFrom(3, keepFd);
    ::execv(av[0], av.data());
    const char msg[] = "cellc sweep: cannot execute the run\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  if (logFd >= 0) ::close(logFd);
  if (nullFd >= 0) ::close(nullFd);
  return pid;
}

int exitCodeOf(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

pid_t waitChild(pid_t pid, int* code) {
  int st = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &st, 0);
    if (r > 0) {
      *code = exitCodeOf(st);
      return r;
    }
    if (errno != EINTR) return -1;
  }
}

void installSweepSignals() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int sweepSignal() { return gSignal; }

void registerChild(pid_t pid) {
  for (auto& c : gChildren) {
    pid_t empty = 0;
    if (c.compare_exchange_strong(empty, pid)) break;
  }
  if (gSignal != 0) ::kill(pid, SIGINT);  // a signal that came while it was starting
}

void unregisterChild(pid_t pid) {
  for (auto& c : gChildren) {
    pid_t mine = pid;
    if (c.compare_exchange_strong(mine, 0)) return;
  }
}

}  // namespace cellc::runtime
