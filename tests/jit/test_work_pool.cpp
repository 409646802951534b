// The work pool (blas/WorkPool.h) that the generated code's products and batch kernels share
// between threads: every chunk runs exactly once, helpers really take part, nesting and a second
// caller fall back to running here.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "blas/FloatMode.h"
#include "blas/WorkPool.h"

using namespace cellc;

namespace {

// Runs `chunks` chunks on `threads` threads and returns how often each ran.
std::vector<int> runCounts(int64_t chunks, int threads) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
  forChunks(chunks, threads, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

}  // namespace

TEST_CASE("every chunk runs exactly once, over many jobs, beyond one job's chunk limit", "[pool]") {
  for (int threads : {1, 2, 3, 8})
    for (int64_t chunks : {1, 2, 3, 8, 17, 256, 257, 600}) {
      INFO("threads " << threads << ", chunks " << chunks);
      CHECK(runCounts(chunks, threads) == std::vector<int>(static_cast<size_t>(chunks), 1));
    }
  // Many small jobs back to back: a helper still looking at an old job must claim nothing of it.
  for (int rep = 0; rep < 2000; ++rep) {
    const int64_t chunks = 2 + rep % 7;
    const std::vector<int> counts = runCounts(chunks, 2);
    REQUIRE(counts == std::vector<int>(static_cast<size_t>(chunks), 1));
  }
  CHECK(runCounts(0, 2).empty());
}

TEST_CASE("helpers take part: a chunk can wait for another one running on a second thread", "[pool]") {
  // Chunk 0 is the caller's own; it waits for chunk 1, which only another thread can run while
  // the caller is busy. Without helpers this would wait the full 60 s and fail.
  std::atomic<bool> oneDone{false};
  std::atomic<bool> sawIt{false};
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ranOne;
  forChunks(2, 2, [&](int64_t i) {
    if (i == 1) {
      ranOne = std::this_thread::get_id();
      oneDone = true;
      return;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!oneDone && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    sawIt = oneDone.load();
  });
  CHECK(sawIt);
  CHECK(ranOne != caller);
}

TEST_CASE("nested jobs and a second caller run on their own thread", "[pool]") {
  CHECK_FALSE(inChunk());
  std::atomic<int> inner{0};
  std::atomic<bool> nestedSeen{true};
  forChunks(4, 2, [&](int64_t) {
    nestedSeen = nestedSeen && inChunk();
    const std::thread::id here = std::this_thread::get_id();
    forChunks(5, 2, [&](int64_t) {
      inner.fetch_add(1);
      if (std::this_thread::get_id() != here) nestedSeen = false;  // ran here, serially
    });
  });
  CHECK(inner == 20);
  CHECK(nestedSeen);
  CHECK_FALSE(inChunk());

  // Two threads submitting at once: one gets the pool, the other runs its chunks itself.
  std::atomic<int> total{0};
  auto submit = [&] {
    for (int rep = 0; rep < 500; ++rep) forChunks(6, 2, [&](int64_t) { total.fetch_add(1); });
  };
  std::thread a(submit), b(submit);
  a.join();
  b.join();
  CHECK(total == 2 * 500 * 6);
}

TEST_CASE("helpers run a job's chunks in the caller's floating-point mode (denormals flushed or not)",
          "[pool][float_mode]") {
  // Chunk 0 holds the caller until chunk 1 has run on a helper; each records its thread's mode.
  for (bool flush : {true, false, true}) {
    const FlushDenormals guard(flush);
    const unsigned callerMode = floatMode();
    std::atomic<bool> oneDone{false};
    std::atomic<unsigned> helperMode{0};
    std::thread::id ranOne;
    forChunks(2, 2, [&](int64_t i) {
      if (i == 1) {
        ranOne = std::this_thread::get_id();
        helperMode = floatMode();
        oneDone = true;
        return;
      }
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!oneDone && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    });
    REQUIRE(oneDone);
    CHECK(ranOne != std::this_thread::get_id());
    CHECK(helperMode == callerMode);
    // A denormal product is flushed to zero exactly when the mode says so.
    volatile float tiny = 1e-30f, small = 1e-10f;
    CHECK((tiny * small == 0.0f) == flush);
  }
}
