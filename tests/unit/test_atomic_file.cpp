// Checked, atomic writes (runtime/io/AtomicFile.h, runtime/io/StagedFiles.h) and the writers built
// on them (npy::write, writeCheckpoint). A full disk is simulated without root by a file size limit
// (RLIMIT_FSIZE, with SIGXFSZ ignored): write() then fails with EFBIG ("File too large") once the
// file reaches the limit, as it fails with ENOSPC on a full disk.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io/AtomicFile.h"
#include "io/StagedFiles.h"
#include "io/npy.h"
#include "train/Checkpoint.h"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using cellc::io::AtomicFile;
using cellc::io::StagedFiles;
using cellc::io::WriteError;
using cellc::io::writeFileAtomic;

struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_atomic_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every entry of a directory, by name.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// While alive, files of this process cannot grow beyond `bytes`: a disk that fills up.
struct FileSizeLimit {
  rlimit old{};
  void (*oldHandler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    oldHandler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit lim = old;
    lim.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, oldHandler);
  }
};

}  // namespace

TEST_CASE("atomic write: replaces the file and leaves no temp behind", "[atomic]") {
  TempDir tmp;
  const std::string p = tmp.path("summary.json");
  writeFileAtomic(p, "old");
  writeFileAtomic(p, "new contents");
  CHECK(slurp(p) == "new contents");
  CHECK(listing(tmp.dir) == std::vector<std::string>{"summary.json"});
}

TEST_CASE("atomic write: two open writers use different temp files", "[atomic]") {
  TempDir tmp;
  const std::string p = tmp.path("metrics.csv");
  AtomicFile a(p), b(p);
  CHECK(a.tempPath() != b.tempPath());
  a.write("from a");
  b.write("from b");
  a.commit();
  b.commit();
  CHECK(slurp(p) == "from b");
  CHECK(listing(tmp.dir) == std::vector<std::string>{"metrics.csv"});
}

TEST_CASE("atomic write: a full disk is an error with the path and the OS reason", "[atomic]") {
  TempDir tmp;
  const std::string p = tmp.path("cell.cell");
  writeFileAtomic(p, "the old text");
  {
    FileSizeLimit limit(1000);
    REQUIRE_THROWS_WITH(writeFileAtomic(p, std::string(5000, 'x')),
                        Contains("cannot write " + p) && Contains("File too large"));
  }
  CHECK(slurp(p) == "the old text");
  CHECK(listing(tmp.dir) == std::vector<std::string>{"cell.cell"});
}

TEST_CASE("atomic write: the rename target is a directory", "[atomic]") {
  TempDir tmp;
  fs::create_directories(tmp.path("out.json"));
  REQUIRE_THROWS_WITH(writeFileAtomic(tmp.path("out.json"), "x"),
                      Contains(tmp.path("out.json")) && Contains("Is a directory"));
  CHECK(fs::is_directory(tmp.path("out.json")));
  CHECK(listing(tmp.dir) == std::vector<std::string>{"out.json"});
}

TEST_CASE("atomic write: a missing directory names the path and the reason", "[atomic]") {
  TempDir tmp;
  const std::string p = tmp.path("no/such/dir/f.txt");
  REQUIRE_THROWS_WITH(writeFileAtomic(p, "x"),
                      Contains(p) && Contains("No such file or directory"));
}

TEST_CASE("atomic write: an uncommitted file leaves nothing behind", "[atomic]") {
  TempDir tmp;
  {
    AtomicFile f(tmp.path("half.bin"));
    f.write("partial");
  }
  CHECK(listing(tmp.dir).empty());
}

TEST_CASE("npy::write on a full disk names the path and the OS reason", "[atomic][npy]") {
  TempDir tmp;
  const std::string p = tmp.path("a.npy");
  std::vector<double> small{1, 2, 3}, big(4096, 0.5);
  cellc::npy::write(p, {3}, small.data());
  const std::string before = slurp(p);
  {
    FileSizeLimit limit(2000);
    REQUIRE_THROWS_WITH(cellc::npy::write(p, {4096}, big.data()),
                        Contains(p) && Contains("File too large"));
  }
  CHECK(slurp(p) == before);
  CHECK(listing(tmp.dir) == std::vector<std::string>{"a.npy"});
}

TEST_CASE("writeCheckpoint on a full disk names the path and the OS reason", "[atomic][checkpoint]") {
  TempDir tmp;
  const std::string p = tmp.path("ckpt.bin");
  cellc::runtime::Checkpoint c;
  c.cellSource = "cell c {}";
  c.params.assign(8, 1.0);
  cellc::runtime::writeCheckpoint(p, c);
  const std::string before = slurp(p);
  c.params.assign(10000, 2.0);
  {
    FileSizeLimit limit(4096);
    REQUIRE_THROWS_WITH(cellc::runtime::writeCheckpoint(p, c),
                        Contains(p) && Contains("File too large"));
  }
  CHECK(slurp(p) == before);
  CHECK(listing(tmp.dir) == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("staged files appear together on commit", "[atomic][staged]") {
  TempDir tmp;
  const fs::path out = tmp.dir / "out";
  fs::create_directories(out);
  writeFileAtomic((out / "a.txt").string(), "old a");
  writeFileAtomic((out / "keep.txt").string(), "not ours");
  {
    StagedFiles s(out.string());
    writeFileAtomic(s.stagedPath("a.txt"), "new a");
    writeFileAtomic(s.stagedPath("b.txt"), "new b");
    CHECK(slurp((out / "a.txt").string()) == "old a");  // nothing visible before commit
    CHECK_FALSE(fs::exists(out / "b.txt"));
    s.commit({"a.txt", "b.txt"});
  }
  CHECK(slurp((out / "a.txt").string()) == "new a");
  CHECK(slurp((out / "b.txt").string()) == "new b");
  CHECK(listing(out) == std::vector<std::string>{"a.txt", "b.txt", "keep.txt"});
}

TEST_CASE("staged files: an abandoned stage leaves the directory as it was", "[atomic][staged]") {
  TempDir tmp;
  const fs::path out = tmp.dir / "out";
  fs::create_directories(out);
  writeFileAtomic((out / "a.txt").string(), "old a");
  {
    StagedFiles s(out.string());
    writeFileAtomic(s.stagedPath("a.txt"), "new a");
  }
  CHECK(listing(out) == std::vector<std::string>{"a.txt"});
  CHECK(slurp((out / "a.txt").string()) == "old a");

  // Directories it had to create are removed again.
  {
    StagedFiles s((tmp.dir / "new" / "deeper").string());
    writeFileAtomic(s.stagedPath("a.txt"), "x");
  }
  CHECK(listing(tmp.dir) == std::vector<std::string>{"out"});
}

TEST_CASE("staged files: a commit that cannot replace a target changes nothing", "[atomic][staged]") {
  TempDir tmp;
  const fs::path out = tmp.dir / "out";
  fs::create_directories(out / "b.txt");  // a directory where a file should go
  writeFileAtomic((out / "a.txt").string(), "old a");
  StagedFiles s(out.string());
  writeFileAtomic(s.stagedPath("a.txt"), "new a");
  writeFileAtomic(s.stagedPath("b.txt"), "new b");
  REQUIRE_THROWS_WITH(s.commit({"a.txt", "b.txt"}),
                      Contains((out / "b.txt").string()) && Contains("Is a directory"));
  CHECK(slurp((out / "a.txt").string()) == "old a");
}
