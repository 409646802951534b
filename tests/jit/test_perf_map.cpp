// CELLC_PERF_MAP=1 (compiler/jit/Jit.cpp): every generated function is named in /tmp/perf-PID.map,
// the file perf reads to name JIT code, at the address the JIT resolved and with its size; off,
// nothing is written.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "BpttCheck.h"
#include "driver/Compile.h"

using namespace cellc;

namespace {

// name -> (address, size)
std::map<std::string, std::pair<uint64_t, uint64_t>> readMap(const std::string& path) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::string addr, size, name;
    is >> addr >> size >> name;
    out[name] = {std::stoull(addr, nullptr, 16), std::stoull(size, nullptr, 16)};
  }
  return out;
}

}  // namespace

TEST_CASE("CELLC_PERF_MAP names the generated functions for perf", "[jit][perf-map]") {
  const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
  std::remove(path.c_str());
  StepIR ir = bpttcheck::lowerSource("cells/pbrc.cell", {{"n", 48}, {"n_in", 3}});

  unsetenv("CELLC_PERF_MAP");
  auto quiet = compileCell<float>(ir);
  CHECK(!std::ifstream(path).good());  // off by default

  setenv("CELLC_PERF_MAP", "1", 1);
  auto k = compileCell<float>(ir);
  unsetenv("CELLC_PERF_MAP");
  auto map = readMap(path);
  std::remove(path.c_str());
  INFO(map.size() << " functions in the map");
  REQUIRE(map.count("cell_forward"));
  REQUIRE(map.count("cell_backward"));
  // The addresses the JIT resolved for the entry points.
  CHECK(map["cell_forward"].first == reinterpret_cast<uintptr_t>(k->functions().forward));
  CHECK(map["cell_backward"].first == reinterpret_cast<uintptr_t>(k->functions().backward));
  // PBRC's trace loops are outlined functions of their own (cell_forward.kN, cell_backward.kN).
  int outlined = 0;
  for (const auto& [name, where] : map) outlined += name.find(".k") != std::string::npos;
  CHECK(outlined >= 2);
  // Every function has a size, and no two overlap.
  uint64_t end = 0;
  std::map<uint64_t, uint64_t> byAddress;
  for (const auto& [name, where] : map) {
    CHECK(where.second > 0);
    byAddress[where.first] = where.second;
  }
  for (const auto& [addr, size] : byAddress) {
    CHECK(addr >= end);
    end = addr + size;
  }
}
