#include "train/Metrics.h"

#include "io/AtomicFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cellc::runtime {

namespace {

std::string osError(const std::string& what, const std::string& path) {
  return "cannot " + what + " " + std::filesystem::absolute(path).string() + ": " + std::strerror(errno);
}

bool parseNumber(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno == 0;
}

// Writes all of `text` to fd; false on a failed write.
bool writeAll(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n, left -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string formatMetricsRow(const MetricsRow& r) {
  char buf[256];
  std::string val;
  if (std::isfinite(r.valError) || std::isinf(r.valError)) {
    std::snprintf(buf, sizeof buf, "%.9g", r.valError);
    val = buf;
  }
  std::snprintf(buf, sizeof buf, "%lld,%.9g,%s,%.9g,%.6f", static_cast<long long>(r.step), r.loss,
                val.c_str(), r.gradNorm, r.seconds);
  return r.phase + "," + buf;
}

bool parseMetricsRow(const std::string& line, MetricsRow& row) {
  std::vector<std::string> f;
  std::string cur;
  for (char c : line) {
    if (c == ',') f.push_back(cur), cur.clear();
    else cur += c;
  }
  f.push_back(cur);
  if (f.size() != 6 || f[0].empty()) return false;
  auto [p, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), row.step);
  if (ec != std::errc() || p != f[1].data() + f[1].size() || row.step < 0) return false;
  row.phase = f[0];
  row.valError = NAN;
  if (!parseNumber(f[2], row.loss) || !parseNumber(f[4], row.gradNorm) || !parseNumber(f[5], row.seconds))
    return false;
  return f[3].empty() || parseNumber(f[3], row.valError);
}

std::vector<MetricsRow> readMetrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(osError("read", path));
  std::string line;
  if (!std::getline(in, line) || line != kMetricsHeader)
    throw std::runtime_error(path + ":1: not a metrics file (expected the header " +
                             std::string(kMetricsHeader) + ")");
  std::vector<MetricsRow> rows;
  for (int64_t n = 2; std::getline(in, line); ++n) {
    MetricsRow r;
    if (!parseMetricsRow(line, r))
      throw std::runtime_error(path + ":" + std::to_string(n) + ": malformed row '" +
                               line.substr(0, 80) + "'");
    rows.push_back(r);
  }
  return rows;
}

MetricsLog::MetricsLog(std::string path, std::string phase) : path_(std::move(path)), phase_(std::move(phase)) {
  if (phase_.empty() || phase_.find_first_of(",\r\n") != std::string::npos)
    throw std::invalid_argument("the learning curve " + path_ + " needs a phase name without ',' or line breaks, got '" +
                                phase_ + "'");
}

void MetricsLog::keepUpTo(int64_t step) {
  pending_.clear();
  std::string kept = std::string(kMetricsHeader) + "\n";
  std::ifstream in(path_);
  std::string line;
  if (in && std::getline(in, line) && line == kMetricsHeader)
    while (std::getline(in, line)) {
      MetricsRow r;
      if (parseMetricsRow(line, r) && (r.phase != phase_ || r.step <= step)) kept += line + "\n";
    }
  in.close();
  io::writeFileAtomic(path_, kept);
}

void MetricsLog::flush() {
  if (pending_.empty()) return;
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(osError("write", path_));
  bool ok = writeAll(fd, pending_) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok) throw std::runtime_error(osError("write", path_));
  pending_.clear();
}

}  // namespace cellc::runtime
