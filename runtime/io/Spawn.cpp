#include "io/Spawn.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

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

// Closes every descriptor from `from` up, except `keepA` and `keepB` (-1: none; async-signal-safe).
void closeFrom(int from, int keepA, int keepB) {
  if (keepA > keepB) std::swap(keepA, keepB);
  for (int keep : {keepA, keepB}) {
    if (keep < from) continue;
    if (keep > from) ::syscall(SYS_close_range, from, keep - 1, 0);
    from = keep + 1;
  }
  ::syscall(SYS_close_range, from, ~0U, 0);
}

// This executable: its path when first asked, and a descriptor of the file itself. A sweep starts
// its runs through the descriptor, so they run the binary the sweep started with even after the
// file at the path is replaced (a rebuild, an install: /proc/self/exe then names a deleted file,
// which execv cannot start) or removed.
struct Self {
  std::string path;
  int fd = -1;
};
const Self& self() {
  static const Self s = [] {
    Self r;
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) r.path.assign(buf, static_cast<size_t>(n));
    r.fd = ::open("/proc/self/exe", O_PATH | O_CLOEXEC);
    return r;
  }();
  return s;
}

}  // namespace

std::string selfExecutable() {
  const Self& s = self();
  if (s.path.empty()) throw SpawnError(std::string("cannot find this executable: ") + std::strerror(errno));
  return s.path;
}

pid_t spawnChild(const std::vector<std::string>& argv, const std::string& logPath, int keepFd) {
  // Everything the child needs is prepared here: between fork and exec only async-signal-safe calls.
  std::vector<char*> av;
  for (const std::string& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  int logFd = -1;
  if (!logPath.empty()) {
    logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logFd < 0) throw SpawnError("cannot open " + logPath + ": " + std::strerror(errno));
  }
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const bool ownGroup = !logPath.empty();
  // This executable again (a run of the sweep): through its descriptor (see self()).
  const int selfFd = !argv.empty() && argv[0] == self().path ? self().fd : -1;
  // What the child says when it cannot execute the program (formatted here: after fork, only
  // async-signal-safe calls).
  const std::string program = argv.empty() ? std::string("a program") : argv[0];
  const std::string cannot = "cellc: cannot execute " + program + "\n";
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    if (logFd >= 0) ::close(logFd);
    if (nullFd >= 0) ::close(nullFd);
    throw SpawnError("cannot start " + program + ": fork: " + std::strerror(e));
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
    closeFrom(3, keepFd, selfFd);
    if (selfFd >= 0) ::syscall(SYS_execveat, selfFd, "", av.data(), environ, AT_EMPTY_PATH);
    ::execv(av[0], av.data());
    ssize_t ignored = ::write(2, cannot.data(), cannot.size());
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
  self();  // this executable, before anything can replace it
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
