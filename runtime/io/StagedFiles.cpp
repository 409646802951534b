#include "io/StagedFiles.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "io/AtomicFile.h"

namespace cellc::io {

namespace fs = std::filesystem;

StagedFiles::StagedFiles(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) dir_ = ".";
  // Remember which directories we create, so that a rollback removes exactly those.
  std::error_code ec;
  for (fs::path p = fs::absolute(dir_, ec); !ec && !p.empty() && p != p.root_path();
       p = p.parent_path()) {
    fs::file_status st = fs::symlink_status(p, ec);
    if (ec && st.type() != fs::file_type::not_found) break;
    ec.clear();
    if (fs::exists(st)) break;
    createdDirs_.push_back(p.string());
  }
  if (!fs::create_directories(dir_, ec) && ec) {
    rollback();  // removes the parents it did create (only empty ones)
    throw WriteError(dir_, "cannot create the directory: " + ec.message());
  }
  if (!fs::is_directory(dir_, ec)) {
    rollback();
    throw WriteError(dir_, "not a directory");
  }
  std::string tmpl = (fs::path(dir_) / ".staging.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    int err = errno;
    rollback();
    throw WriteError(dir_, "cannot create a staging folder in it: " + std::string(std::strerror(err)));
  }
  stage_ = tmpl;
}

StagedFiles::~StagedFiles() {
  if (!committed_) rollback();
}

std::string StagedFiles::stagedPath(const std::string& name) const {
  return (fs::path(stage_) / name).string();
}

void StagedFiles::rollback() noexcept {
  std::error_code ec;
  if (!stage_.empty()) fs::remove_all(stage_, ec);
  stage_.clear();
  for (const std::string& d : createdDirs_) fs::remove(d, ec);  // only if still empty
  createdDirs_.clear();
}

void StagedFiles::commit(const std::vector<std::string>& names) {
  const fs::path dir(dir_), stage(stage_), aside = stage / ".replaced";
  std::error_code ec;
  auto failWith = [&](const std::string& path, const std::string& what) {
    throw WriteError(path, what + ": " + ec.message());
  };
  // Refuse before moving anything where a move could not succeed.
  for (const std::string& name : names) {
    const fs::path target = dir / name;
    fs::file_status st = fs::symlink_status(target, ec);
    if (ec && st.type() != fs::file_type::not_found) failWith(target.string(), "cannot access");
    if (fs::is_directory(st)) {
      ec = std::make_error_code(std::errc::is_a_directory);
      failWith(target.string(), "cannot replace it");
    }
    if (!fs::exists(stage / name, ec)) {
      ec = std::make_error_code(std::errc::no_such_file_or_directory);
      failWith((stage / name).string(), "not staged");
    }
  }
  fs::create_directory(aside, ec);
  if (ec) failWith(aside.string(), "cannot create");

  // Set the old files aside, then move the new ones in; undo both on the first failure.
  std::vector<std::string> setAside, movedIn;
  auto undo = [&] {
    std::error_code ignored;
    for (const std::string& name : movedIn) fs::remove(dir / name, ignored);
    for (const std::string& name : setAside) fs::rename(aside / name, dir / name, ignored);
  };
  for (const std::string& name : names) {
    fs::file_status st = fs::symlink_status(dir / name, ec);
    ec.clear();
    if (!fs::exists(st)) continue;
    fs::rename(dir / name, aside / name, ec);
    if (ec) {
      undo();
      failWith((dir / name).string(), "cannot move the old file aside");
    }
    setAside.push_back(name);
  }
  for (const std::string& name : names) {
    fs::rename(stage / name, dir / name, ec);
    if (ec) {
      undo();
      failWith((dir / name).string(), "cannot move the new file into place");
    }
    movedIn.push_back(name);
  }
  committed_ = true;
  fs::remove_all(stage, ec);  // the replaced files; a leftover is harmless
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace cellc::io
