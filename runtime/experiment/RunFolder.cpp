#include "experiment/RunFolder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "experiment/Spec.h"
#include "io/AtomicFile.h"

namespace cellc::runtime {

namespace fs = std::filesystem;

namespace {

std::string osError(const std::string& what, const fs::path& p) {
  return "cannot " + what + " " + fs::absolute(p).string() + ": " + std::strerror(errno);
}

// Every leaf of a TOML tree as "path" -> value text; arrays of tables by index (phase[0].x).
void flatten(const toml::node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (const toml::table* t = n.as_table()) {
    for (auto&& [k, v] : *t) flatten(v, path.empty() ? std::string(k.str()) : path + "." + std::string(k.str()), out);
  } else if (const toml::array* a = n.as_array(); a && a->is_array_of_tables()) {
    for (size_t i = 0; i < a->size(); ++i) flatten((*a)[i], path + "[" + std::to_string(i) + "]", out);
  } else {
    std::ostringstream os;
    if (const toml::array* arr = n.as_array()) os << *arr;
    else n.visit([&](auto&& v) { os << v; });
    out[path] = os.str();
  }
}

}  // namespace

bool resumeMayChange(const std::string& key) {
  auto last = [&](const std::string& suffix) {
    return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return key == "experiment.description" || key.rfind("output.", 0) == 0 ||
         key.rfind("analysis[", 0) == 0 || key.rfind("test.", 0) == 0 ||
         last("train.checkpoint_every") || last("train.max_steps") || last("train.threads") ||
         last("train.memory_budget_mb");
}

RunFolder::RunFolder(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw ExperimentError("cannot create the run folder " + fs::absolute(dir_).string() + ": " + ec.message());
  fs::path lock = dir_ / ".lock";
  lockFd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lockFd_ < 0) throw ExperimentError(osError("open", lock));
  if (::flock(lockFd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lockFd_);
    lockFd_ = -1;
    if (err == EWOULDBLOCK)
      throw ExperimentError(fs::absolute(dir_).string() +
                            ": another cellc process is running in this run folder; wait for it, or "
                            "choose another folder with --out");
    errno = err;
    throw ExperimentError(osError("lock", lock));
  }
}

RunFolder::~RunFolder() {
  if (lockFd_ >= 0) ::close(lockFd_);  // releases the lock
}

void RunFolder::write(const std::string& name, const std::string& text) const {
  writeFileAtomic(dir_ / name, text);
}

void writeFileAtomic(const fs::path& path, const std::string& text) {
  try {
    io::writeFileAtomic(path.string(), text);
  } catch (const io::WriteError& e) {
    throw ExperimentError(e.what());
  }
}

std::string experimentDifference(const std::string& before, const std::string& now) {
  std::map<std::string, std::string> a, b;
  try {
    flatten(toml::parse(before), "", a);
  } catch (const toml::parse_error&) {
    return "the run folder's experiment.toml: not readable TOML";
  }
  flatten(toml::parse(now), "", b);
  for (auto& [k, v] : a) {
    if (resumeMayChange(k)) continue;
    auto it = b.find(k);
    if (it == b.end()) return k + ": was " + v + ", now not set";
    if (it->second != v) return k + ": was " + v + ", now " + it->second;
  }
  for (auto& [k, v] : b)
    if (!resumeMayChange(k) && !a.count(k)) return k + ": was not set, now " + v;
  return "";
}

}  // namespace cellc::runtime
