#include "sweep/Driver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>

#include "experiment/RunFolder.h"
#include "blas/Threads.h"
#include "io/Spawn.h"
#include "run/Figures.h"
#include "sweep/Status.h"
#include "sweep/Table.h"

namespace cellc::runtime {

namespace fs = std::filesystem;

SweepLock::SweepLock(const fs::path& outDir) {
  fs::create_directories(outDir);
  std::string path = (outDir / ".lock").string();
  // Not close-on-exec: the runs keep the folder locked until the last of them has stopped.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd_ < 0) throw SweepError("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw SweepError(outDir.string() + " is in use by another sweep (or by the runs of one that was killed, "
                     "which stop within seconds); the lock is " + path +
                     ". Wait for it, or give another --out.");
  }
}

SweepLock::~SweepLock() {
  if (fd_ >= 0) ::close(fd_);
}

SweepDriver::SweepDriver(const Sweep& s, const SweepOptions& opt, std::ostream& log)
    : s_(s), opt_(opt), log_(log) {
  out_ = opt.outDir.empty() ? fs::path("sweeps") / s.name : fs::path(opt.outDir);
  out_ = fs::absolute(out_).lexically_normal();
}

std::vector<std::string> SweepDriver::edits(size_t i) const {
  std::vector<std::string> sets = s_.run(i).sets;
  const bool own = std::any_of(sets.begin(), sets.end(),
                               [](const std::string& e) { return e.rfind("train.threads=", 0) == 0; });
  if (opt_.runsPerMachine > 1 && !own) {
    sets.push_back("train.threads=" + std::to_string(std::max(1, hardwareThreads() / opt_.runsPerMachine)));
  }
  return sets;
}

std::vector<std::string> SweepDriver::command(size_t i) const {
  std::vector<std::string> argv = {selfExecutable(), "run", s_.base, "--out", runDir(i).string(), "--no-plot"};
  if (!s_.profile.empty()) argv.insert(argv.end(), {"--profile", s_.profile});
  for (const std::string& set : edits(i)) argv.insert(argv.end(), {"--set", set});
  return argv;
}

namespace {

bool nameHas(const std::string& name, const std::string& part) {
  for (size_t b = 0; b <= name.size();) {
    size_t e = name.find(',', b);
    if (e == std::string::npos) e = name.size();
    if (name.compare(b, e - b, part) == 0) return true;
    b = e + 1;
  }
  return false;
}

// How a run's --set edits (key=value) differ between the folder's record and the sweep now,
// skipping the settings a resume may change (threads, max_steps, ...: `cellc run` checks those
// itself); empty when they agree.
std::string trainingSetsDifference(const std::vector<std::string>& before, const std::vector<std::string>& now) {
  auto training = [](const std::vector<std::string>& sets) {
    std::vector<std::string> out;
    for (const std::string& s : sets)
      if (!resumeMayChange(s.substr(0, s.find('=')))) out.push_back(s);
    return out;
  };
  std::vector<std::string> a = training(before), b = training(now);
  if (a == b) return "";
  for (const std::string& s : b)
    if (std::find(a.begin(), a.end(), s) == a.end()) return "now --set " + s + ", not when it started";
  for (const std::string& s : a)
    if (std::find(b.begin(), b.end(), s) == b.end()) return "started with --set " + s + ", not now";
  return "the same --set edits in another order";
}

}  // namespace

std::vector<std::string> unmatchedFilters(const Sweep& s, const std::vector<std::string>& only) {
  std::vector<std::string> errors;
  for (const std::string& f : only) {
    bool any = false;
    for (size_t i = 0; i < s.size() && !any; ++i) any = nameHas(s.runName(i), f);
    if (!any)
      errors.push_back("--only " + f + ": no run of the sweep has '" + f + "' in its name (they look like " +
                       (s.size() == 0 ? std::string("nothing: the sweep has no runs") : s.runName(0)) + ")");
  }
  return errors;
}

bool SweepDriver::selected(size_t i) const {
  for (const std::string& f : opt_.only)
    if (!nameHas(s_.runName(i), f)) return false;
  return true;
}

std::vector<size_t> SweepDriver::prepare() {
  std::vector<size_t> todo;
  std::string clashes;
  for (size_t i = 0; i < s_.size(); ++i) {
    RunStatus st = readStatus(runDir(i));
    std::string diff;  // a folder the sweep started must still be the same run
    if (st.state != RunState::Pending) {
      diff = trainingSetsDifference(st.sets, s_.run(i).sets);
      if (diff.empty() && st.profile != s_.profile)
        diff = "started with profile '" + st.profile + "', now '" + s_.profile + "'";
    }
    if (!diff.empty())
      clashes += "\n  " + runDir(i).string() + " (" + diff + ")";
    else if (!(st.state == RunState::Finished && st.exitCode == 0 && fs::exists(runDir(i) / "summary.json")) && selected(i))
      todo.push_back(i);  // runDone(runDir(i)), without reading the status twice
  }
  if (!clashes.empty())
    throw SweepError("these run folders were made with other settings (--set edits or profile) than the sweep "
                     "now gives them; delete them or give another --out:" + clashes);
  writeSweepManifest(s_, out_);
  writeTable();
  todo_ = todo.size();
  size_t nSelected = s_.size();
  if (!opt_.only.empty())
    for (size_t i = 0; i < s_.size(); ++i) nSelected -= selected(i) ? 0 : 1;
  log_ << "sweep " << s_.name << ": " << s_.size() << " runs in " << out_.string() << ", ";
  if (!opt_.only.empty()) log_ << nSelected << " selected by --only, " << nSelected - todo.size() << " of them";
  else log_ << nSelected - todo.size();
  log_ << " already finished, " << todo.size() << " to run\n";
  return todo;
}

void SweepDriver::started(size_t i) {
  fs::create_directories(runDir(i));
  RunStatus st;
  st.state = RunState::Running;
  st.sets = s_.run(i).sets;
  st.profile = s_.profile;
  writeStatus(runDir(i), st);
  std::ofstream logFile(runDir(i) / "log.txt", std::ios::app);
  std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  logFile << "=== cellc sweep " << s_.path << ", " << when << ":";
  std::vector<std::string> argv = command(i);
  argv[0] = "cellc";
  for (const std::string& a : argv) logFile << " " << a;
  logFile << "\n";
}

void SweepDriver::ended(size_t i, int exitCode, double seconds) {
  RunStatus st;
  st.exitCode = exitCode;
  st.state = stateOfExit(exitCode, fs::exists(runDir(i) / "summary.json"));
  st.seconds = seconds;
  st.sets = s_.run(i).sets;
  st.profile = s_.profile;
  if (st.state == RunState::Failed) st.error = tailLines(runDir(i) / "log.txt", 5);
  if (st.state == RunState::Killed) st.error = kKilledReason;
  writeStatus(runDir(i), st);
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - tableAt_).count();
  if (since >= std::max(kTableEvery, 20 * tableSeconds_)) writeTable();
  ++ended_;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", seconds);
  log_ << "[" << ended_ << "/" << todo_ << "] " << runStateName(st.state) << " " << s_.runName(i) << " (" << secs << " s";
  if (st.state != RunState::Finished) log_ << ", exit status " << exitCode;
  if (st.state == RunState::Killed) log_ << ": " << kKilledReason;
  log_ << ")\n";
  if (st.state == RunState::Failed) {
    std::string last = tailLines(runDir(i) / "log.txt", 1);
    log_ << "    " << last << "\n";
  }
}

void SweepDriver::list(std::ostream& os) const {
  os << s_.size() << " runs of " << s_.base;
  if (!s_.profile.empty()) os << " (profile " << s_.profile << ")";
  os << " into " << out_.string() << ":\n";
  const bool exists = fs::exists(out_);  // a sweep not started has no finished runs to look for
  for (size_t i = 0; i < s_.size(); ++i) {
    os << "  " << s_.runName(i) << (exists && runDone(runDir(i)) ? "  [finished]" : "")
       << (selected(i) ? "" : "  [not selected by --only]") << "\n     ";
    for (const std::string& set : edits(i)) os << " --set " << set;
    os << "\n";
  }
}

int SweepDriver::report(int signal) {
  int finished = 0, failed = 0, interrupted = 0, killed = 0, notRun = 0, selectedLeft = 0;
  std::string failures, killedRuns;
  for (size_t i = 0; i < s_.size(); ++i) {
    RunStatus st = readStatus(runDir(i));
    const bool done = st.state == RunState::Finished && runDone(runDir(i));
    if (selected(i) && !done) ++selectedLeft;
    if (done) ++finished;
    else if (st.state == RunState::Failed) {
      ++failed;
      failures += "  " + s_.runName(i) + " (exit status " + std::to_string(st.exitCode) + ", log " +
                  (runDir(i) / "log.txt").string() + "):\n";
      std::string err = st.error;
      for (size_t p = 0; (p = err.find('\n', p)) != std::string::npos; p += 6) err.replace(p, 1, "\n     ");
      failures += "     " + err + "\n";
    } else if (st.state == RunState::Killed) {
      ++killed;
      killedRuns += "  " + s_.runName(i) + " (log " + (runDir(i) / "log.txt").string() + ")\n";
    } else if (st.state == RunState::Interrupted || st.state == RunState::Running) ++interrupted;
    else ++notRun;
  }
  writeTable();
  log_ << "sweep " << s_.name << ": " << finished << " finished, " << failed << " failed, " << interrupted
       << " interrupted, " << (killed ? std::to_string(killed) + " killed, " : "") << notRun
       << " not run; table " << (out_ / "sweep.csv").string() << "\n";
  if (!failures.empty()) log_ << "failed runs:\n" << failures;
  if (!killedRuns.empty())
    log_ << "runs " << kKilledReason << "; a rerun resumes them from their checkpoints:\n" << killedRuns;
  if (signal == 0 && opt_.plot && finished > 0) drawFigures();
  if (selectedLeft == 0) return 0;
  if (signal != 0) {
    log_ << "interrupted: run the same command again to resume\n";
    return 128 + signal;
  }
  return 1;
}

void SweepDriver::writeTable() {
  auto start = std::chrono::steady_clock::now();
  writeSweepTable(s_, out_);
  tableAt_ = std::chrono::steady_clock::now();
  tableSeconds_ = std::chrono::duration<double>(tableAt_ - start).count();
}

void SweepDriver::drawFigures() {
  if (s_.plots.empty()) return;
  // A plot_sweep.py beside the sweep file replaces cellc's own (docs/sweeps.md).
  std::vector<FigureCall> calls;
  for (const SweepPlot& pl : s_.plots) {
    FigureCall c{{out_.string(), "--metric", pl.metric, "--x", pl.x}, "metric " + pl.metric};
    if (!pl.group.empty()) c.args.insert(c.args.end(), {"--group", pl.group});
    if (pl.log) c.args.push_back("--log");
    calls.push_back(std::move(c));
  }
  runtime::drawFigures({"plot_sweep.py", opt_.plotScript, fs::path(s_.path).parent_path(),
                        "a plot_sweep.py beside the sweep file, not cellc's own; --no-plot skips it"},
                       calls, log_);
}

}  // namespace cellc::runtime
