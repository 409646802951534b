// A set of files that appear in a directory together or not at all: `cellc unroll`'s promise that
// an error writes nothing. Each file is first written (by the caller, e.g. npy::write) into a
// hidden staging folder inside the target directory, so that the final moves are renames within
// one file system; commit() then moves them all into place, first setting aside any files they
// replace, and puts everything back if one move fails. Destroying an uncommitted StagedFiles
// removes the staging folder and any directories it created, leaving the target as it was.
//
// A crash (kill -9) during commit() can leave the staging folder `.staging.XXXXXX` behind, holding
// the replaced files; it never leaves a half-written file under a final name.
#pragma once

#include <string>
#include <vector>

namespace cellc::io {

class StagedFiles {
 public:
  // Creates `dir` if missing (and its missing parents) and the staging folder inside it.
  // Throws WriteError naming the path and the OS reason.
  explicit StagedFiles(std::string dir);
  ~StagedFiles();
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  // Where to write the file that will become `dir/name` (name is a plain file name).
  std::string stagedPath(const std::string& name) const;
  // Moves every staged file to `dir/name`, all or none. Throws WriteError; then `dir` holds what
  // it held before.
  void commit(const std::vector<std::string>& names);

 private:
  void rollback() noexcept;

  std::string dir_, stage_;
  std::vector<std::string> createdDirs_;  // deepest first
  bool committed_ = false;
};

}  // namespace cellc::io
