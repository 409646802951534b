// The run folder: one process at a time (an exclusive lock), checked atomic writes, and the
// identity of what it holds (a resume must continue the same experiment, or refuse).
#pragma once

#include <filesystem>
#include <string>

namespace cellc::runtime {

class RunFolder {
 public:
  // Creates the folder and locks RUN/.lock (flock, released when the process ends, however it
  // ends). Throws ExperimentError when another process holds the folder.
  explicit RunFolder(std::filesystem::path dir);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path operator/(const std::string& name) const { return dir_ / name; }
  // Writes RUN/name atomically: a unique temp file, checked, fsynced, renamed into place.
  void write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path dir_;
  int lockFd_ = -1;
};

// Writes `path` atomically and checked; throws ExperimentError with the path and the OS reason.
void writeFileAtomic(const std::filesystem::path& path, const std::string& text);

// The first setting in which two resolved experiments (TOML text) differ, as "key: was X, now Y",
// or empty when they run the same training. Settings that do not change what is trained may
// differ: the description, output.*, analyses, test.*, checkpoint frequency, train.max_steps (a
// longer run continues), threads and memory budget.
std::string experimentDifference(const std::string& before, const std::string& now);

// Whether a setting (a flattened TOML key, e.g. "train.threads" or "phase[1].train.max_steps") is
// one of those that experimentDifference lets a resume change.
bool resumeMayChange(const std::string& key);

}  // namespace cellc::runtime
