#include "io/AtomicFile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace cellc::io {

namespace fs = std::filesystem;

WriteError::WriteError(std::string path, std::string reason)
    : std::runtime_error("cannot write " + path + ": " + reason),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

namespace {

// Six base-36 characters that differ between processes and between calls in one process; O_EXCL
// catches the rare collision and we draw again.
std::string uniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  uint64_t x = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               (counter.fetch_add(1) * 0xBF58476D1CE4E5B9ull);
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 29;
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  for (int i = 0; i < 6; ++i, x /= 36) s += kDigits[x % 36];
  return s;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw WriteError("''", "empty path");
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp_ = path_ + ".tmp." + uniqueSuffix();
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) break;
  }
  int err = errno;
  std::string tmp = tmp_;
  tmp_.clear();  // nothing of ours to remove
  throw WriteError(path_, "cannot open the temp file " + tmp + " for writing: " + std::strerror(err));
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void AtomicFile::fail(const std::string& what, int err) {
  discard();
  throw WriteError(path_, what + std::strerror(err));
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (fd_ < 0) throw WriteError(path_, "the file is already closed");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t w = ::write(fd_, p, bytes);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("", errno);
    if (w == 0) fail("", ENOSPC);  // a regular file that accepts nothing is full
    p += w;
    bytes -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw WriteError(path_, "the file is already closed");
  // fsync and close report delayed write errors (NFS, quota): the data is only safe after both.
  if (::fsync(fd_) != 0 && errno != EINVAL) fail("cannot sync: ", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("cannot close: ", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename " + tmp_ + " over it: ", errno);
  committed_ = true;
  tmp_.clear();
  // Make the rename itself durable; a directory that cannot be opened or synced is not an error
  // (the data is in place).
  fs::path dir = fs::path(path_).parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void writeFileAtomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace cellc::io
