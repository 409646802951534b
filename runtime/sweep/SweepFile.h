// Sweep files (experiments/sweep_*.toml): a base experiment and axes over its keys. A sweep
// expands to runs; each run is exactly a list of `--set key=value` edits on the base, so each
// point is an experiment a user could have written (and `cellc run BASE --set ...` reproduces it).
// The format is documented key by key in docs/sweeps.md.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace cellc::runtime {

struct SweepError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One dimension of the product: a plain axis has one key; a [[zip]] group has several keys whose
// lists advance together.
struct SweepAxis {
  std::vector<std::string> keys;                  // experiment keys, e.g. "cell.dims.n"
  std::vector<std::vector<std::string>> values;   // values[i][k]: TOML text of key k at step i
  std::vector<std::vector<std::string>> shown;    // shown[i][k]: how values[i][k] shows in names and sweep.csv
  std::vector<std::string> where;                 // "file:line:col" of each key
};

// Grids larger than this are refused unless asked for (--allow-large): a typo in an axis (a range
// written out by a script, one axis too many) should not start a million runs. The driver itself
// is O(1) in memory per run (runs are expanded on demand), so the limit is about intent, not about
// what the driver can hold.
inline constexpr size_t kMaxSweepRuns = 100000;

// One `key = value` of a run: the value as TOML text (for --set) and as shown (names, sweep.csv).
struct SweepEdit {
  std::string key, toml, shown;
};

struct SweepRun {
  size_t index = 0;
  std::string name;               // the run folder's name, from the point: "cell=gru,n=16,seed=1"
  std::vector<SweepEdit> point;   // one edit per axis key, in axis order
  std::vector<std::string> sets;  // every --set of the run: the sweep's [set], the command line's, the point
};

struct SweepPlot {
  std::string metric, x, group;  // group empty: every other axis
  bool log = false;
  std::string where;
};

struct Sweep {
  std::string path;     // the sweep file
  std::string name;     // [sweep] name, default the file's stem
  std::string base;     // the base experiment, absolute
  std::string profile;  // [sweep] profile, or the command line's
  std::vector<std::string> sets;  // [set] of the file, then the command line's --set
  std::vector<SweepAxis> axes;    // in file order; the seeds last
  std::vector<SweepPlot> plots;

  std::vector<std::string> axisKeys() const;  // every key of every axis, in order

  // The runs: the product of the axes, first axis outermost. A run is expanded on demand from its
  // index (nothing per run is held, so a grid of 10^6 runs costs no more memory than one of 10),
  // except the names when two points would share one and need the "-K" suffix (namesKept_).
  size_t size() const { return count_; }
  SweepRun run(size_t i) const;
  std::string runName(size_t i) const;

 private:
  friend Sweep loadSweep(const std::string&, const std::vector<std::string>&, const std::string&, bool);
  size_t count_ = 0;
  std::vector<std::vector<std::string>> labels_;  // labels_[axis][key]: the key's label in run names
  std::vector<std::string> namesKept_;            // every run's name, only when de-duplicated
  std::string naturalName(size_t i) const;        // the name from the point, before de-duplication
};

// Reads a sweep file and expands it. `sets` and a non-empty `profile` from the command line apply
// to every run (the command line's profile wins over the file's). A grid of more than
// kMaxSweepRuns runs is an error unless `allowLarge`. Throws SweepError naming the file, line and
// key.
Sweep loadSweep(const std::string& path, const std::vector<std::string>& sets = {},
                const std::string& profile = "", bool allowLarge = false);

// Loads every run's experiment (runtime::loadExperiment) before anything runs. Returns every error
// found (empty: all good), each naming the sweep file, the line of the axis key and the key.
std::vector<std::string> validateSweep(const Sweep& s);

// A plain file name from a point ("cell=gru,n=16,seed=1"): unsafe characters become '_'.
std::string sanitizeName(const std::string& s);

}  // namespace cellc::runtime
