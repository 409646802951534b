// The learning curve, RUN/metrics.csv: `phase,step,loss,val_error,grad_norm,seconds`.
//
// It never says more than the checkpoint: rows wait in memory and reach the disk (appended,
// fsynced) just before each checkpoint is written; a resume cuts the file back to the
// checkpoint's step, dropping rows that a crash left after it, torn ones included. The reader
// refuses malformed rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace cellc::runtime {

struct MetricsRow {
  std::string phase;
  int64_t step = 0;
  double loss = NAN, valError = NAN, gradNorm = NAN, seconds = NAN;  // NaN val_error: not validated
};

inline constexpr const char* kMetricsHeader = "phase,step,loss,val_error,grad_norm,seconds";

// One row as written ("" for a NaN val_error).
std::string formatMetricsRow(const MetricsRow& r);
// Parses one line; false for a malformed one (wrong field count, a non-number, a negative step).
bool parseMetricsRow(const std::string& line, MetricsRow& row);

// Reads a metrics file strictly: throws std::runtime_error naming the file and line of the first
// malformed row (or a wrong header).
std::vector<MetricsRow> readMetrics(const std::string& path);

class MetricsLog {
 public:
  // Throws std::invalid_argument for a phase name parseMetricsRow would not read back (empty, or
  // with a ',' or a line break): its rows would be dropped at the next resume.
  MetricsLog(std::string path, std::string phase);

  // Rewrites the file (atomically) with the rows of other phases and this phase's rows up to
  // `step`; malformed rows are dropped. Creates the file with its header when missing.
  void keepUpTo(int64_t step);
  void add(const MetricsRow& row) { pending_ += formatMetricsRow(row) + "\n"; }
  // Appends the waiting rows and syncs them to disk. Throws std::runtime_error on a failed write.
  void flush();

 private:
  std::string path_, phase_;
  std::string pending_;
};

}  // namespace cellc::runtime
