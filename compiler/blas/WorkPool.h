// Work sharing between threads for the generated code's large products and batch-split kernels
// (blas/Gemm.cpp): a job is cut into chunks, the calling thread and up to threads - 1 pool helpers
// claim them (one compare-and-swap per chunk), and the caller returns when every chunk is done.
//
// Why not a fork and join (OpenMP's parallel for, used before): a join waits for every thread of
// the team, so a helper that another process's job has descheduled holds the caller for a
// scheduler time slice (milliseconds) at every product. With a second process on each of two
// cores, two threads ran 6x slower than one (dale_rnn n = 256, B = 64). Here nothing waits for a
// helper that has not started: the caller does the chunks nobody claimed. It waits only for a
// chunk a helper claimed and is still computing.
//
// Helpers spin for a short while after a job (the next product of a step follows within
// microseconds), then sleep on a futex (std::atomic::wait). They are started on first use and live
// until the process ends. A process that forks keeps working (its caller does every chunk).
#pragma once

#include <cstdint>
#include <exception>
#include <type_traits>
#include <vector>

namespace cellc {

// Runs fn(ctx, i) for every i in [0, chunks), each exactly once, on this thread and up to
// threads - 1 helpers, in no fixed order. Runs them all on this thread when threads <= 1, inside
// a chunk (nesting), or while another thread's job holds the pool.
void runChunks(int64_t chunks, int threads, void (*fn)(void*, int64_t), void* ctx);

// Whether this thread is running a chunk: a product inside one is a share of a split product.
bool inChunk();

// The most threads a job runs on: the caller and up to kMaxWorkers - 1 helpers.
inline constexpr int kMaxWorkers = 256;

// 0 on any thread but the pool's helpers, h + 1 on helper h: two chunks of one job that run at the
// same time have different indices, so a chunk may use per-worker scratch memory.
int workerIndex();

template <class F>
void forChunks(int64_t chunks, int threads, F&& f) {
  auto call = [](void* p, int64_t i) { (*static_cast<std::remove_reference_t<F>*>(p))(i); };
  runChunks(chunks, threads, call, &f);
}

// forChunks for work that may throw (a chunk must not throw into the pool): every chunk runs, and
// the first exception in chunk order reaches the caller after all of them are done.
template <class F>
void forChunksRethrowing(int64_t chunks, int threads, F&& f) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  forChunks(chunks, threads, [&](int64_t i) {
    try {
      f(i);
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  });
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace cellc
