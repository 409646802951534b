// Checked, atomic file writes: every file cellc writes goes through here, so that a full disk, a
// missing folder or a crash never leaves a truncated file under the final name, and a failure is
// always an error naming the path and the OS reason (never a silent exit 0 with a 0-byte file).
//
// The bytes go to a fresh, uniquely named temp file in the same directory (`<name>.tmp.XXXXXX`,
// created with O_EXCL, so two writers never share one), are fsync'ed, and the temp is renamed over
// the final name only after every write, the sync and the close succeeded. On any failure the temp
// is removed and the old file, if any, is left as it was.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cellc::io {

// what() is "cannot write <path>: <reason>"; path() and reason() give the parts, so callers with
// their own error type can rephrase without repeating the path.
class WriteError : public std::runtime_error {
 public:
  WriteError(std::string path, std::string reason);
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_, reason_;
};

// A file being written; it appears under its name at commit(). Destroying it uncommitted removes
// the temp file (the old file, if any, is untouched).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temp file; throws WriteError
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);  // throws WriteError (e.g. "No space left on device")
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, close, rename over the path, then fsync the directory. Throws WriteError.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& tempPath() const { return tmp_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  void discard() noexcept;

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically (see above). Throws WriteError.
void writeFileAtomic(const std::string& path, std::string_view bytes);

}  // namespace cellc::io
