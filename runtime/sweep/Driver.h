// The sweep driver's bookkeeping, shared by the local scheduler (--jobs) and the MPI coordinator:
// the sweep folder and its lock, which runs are still to do, each run's command line, status file
// and log, sweep.csv (rewritten on a timer and at the end), the final report and the figures.
//
//   SWEEP/.lock                  flock: one driver per folder (held by its runs too)
//   SWEEP/sweep.json             the sweep: axes, runs and their --set edits
//   SWEEP/sweep.csv              one row per run: point, status, summary.json numbers (on a timer)
//   SWEEP/RUN/                   an ordinary `cellc run` folder, plus
//   SWEEP/RUN/log.txt            the run's stdout and stderr (appended on every attempt)
//   SWEEP/RUN/sweep-status.json  the driver's record of the run
//   SWEEP/figures/*.png          experiments/plot_sweep.py, for each [[plot]]
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "sweep/SweepFile.h"

namespace cellc::runtime {

struct SweepOptions {
  std::string outDir;      // empty: sweeps/<name>
  int jobs = 1;            // runs at a time (local scheduler)
  // Runs sharing this machine's cores (--jobs, or MPI ranks per node). Above 1, each run gets
  // cores / runsPerMachine threads (--set train.threads=K) unless its edits set train.threads:
  // threaded products that share cores with other runs wait on each other at every join.
  int runsPerMachine = 1;
  bool plot = true;        // draw the [[plot]] figures at the end
  std::string plotScript;  // empty: plot_sweep.py beside the sweep file, or the source tree's
  // --only NAME=VALUE (repeatable, all must hold): run only the runs whose name has each as one
  // of its comma-separated parts (cell=nbrc, seed=1); the others are left as they are.
  std::vector<std::string> only;
};

// The --only filters that match no run of the sweep, each with a message; empty when all match.
std::vector<std::string> unmatchedFilters(const Sweep& s, const std::vector<std::string>& only);

// An exclusive flock on SWEEP/.lock for the driver's lifetime; its runs inherit it, so a second
// sweep also waits for the runs of a killed driver to stop.
class SweepLock {
 public:
  explicit SweepLock(const std::filesystem::path& outDir);  // throws SweepError if held
  ~SweepLock();
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class SweepDriver {
 public:
  SweepDriver(const Sweep& s, const SweepOptions& opt, std::ostream& log);

  const Sweep& sweep() const { return s_; }
  const std::filesystem::path& out() const { return out_; }
  std::filesystem::path runDir(size_t i) const { return out_ / s_.runName(i); }
  bool selected(size_t i) const;  // by --only (every run without it)

  // Run i's --set edits: the sweep's, plus train.threads when runs share the cores
  // (SweepOptions::runsPerMachine) and the edits do not set it.
  std::vector<std::string> edits(size_t i) const;
  // `cellc run` of run i: argv[0] is this executable.
  std::vector<std::string> command(size_t i) const;

  // The runs not done yet, in order. Throws SweepError if a run folder was made by a different
  // point (other --set edits or profile). Writes sweep.json and a first sweep.csv.
  std::vector<size_t> prepare();

  void started(size_t i);                              // status "running", a header in its log
  void ended(size_t i, int exitCode, double seconds);  // status, a progress line, sweep.csv on a timer

  // The dry-run listing: every run, its status and its --set edits.
  void list(std::ostream& os) const;

  // Final table and figures; the exit status: 0 when every selected run finished, 130/143 after
  // SIGINT/SIGTERM, 1 otherwise.
  int report(int signal);

 private:
  const Sweep& s_;
  SweepOptions opt_;
  std::ostream& log_;
  std::filesystem::path out_;
  size_t todo_ = 0, ended_ = 0;
  // sweep.csv is rewritten when a run ends only if kTableEvery has passed since the last rewrite
  // and at least 20 times the last rewrite's duration: on a large grid a rewrite reads every run's
  // status and summary, and after every run that was quadratic (a 10^6-run grid spent seconds per
  // run on it). report() always writes it, so it is complete when the driver exits.
  static constexpr double kTableEvery = 2.0;  // seconds
  std::chrono::steady_clock::time_point tableAt_{};
  double tableSeconds_ = 0;
  void writeTable();

  void drawFigures();
};

// Runs `todo` with at most `jobs` children at a time; on SIGINT/SIGTERM stops starting runs and
// waits for the running ones to checkpoint. `keepFd`: the lock, inherited by the children.
void runLocal(SweepDriver& d, const std::vector<size_t>& todo, int jobs, int keepFd);

}  // namespace cellc::runtime
