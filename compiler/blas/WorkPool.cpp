#include "blas/WorkPool.h"

#include "blas/FloatMode.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace cellc {

namespace {

void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle helper spins before it sleeps: longer than the gap between two products of a
// step (pointwise kernels, a few microseconds), far shorter than a scheduler time slice.
constexpr auto kSpin = std::chrono::microseconds(100);

thread_local bool tInChunk = false;
thread_local int tWorker = 0;  // 0: any thread but a helper; helper h: h + 1

void serial(int64_t chunks, void (*fn)(void*, int64_t), void* ctx) {
  const bool outer = tInChunk;
  tInChunk = true;
  for (int64_t i = 0; i < chunks; ++i) fn(ctx, i);
  tInChunk = outer;
}

// Participant p of P (the caller is 0, helper h is h + 1) owns chunks [p C / P, (p + 1) C / P) and
// takes them first, in order: a product of the same shape gives each thread the same share at
// every call, so its slice of a weight can stay in that core's cache. Then it takes whatever the
// others have not claimed yet.
class Pool {
 public:
  static constexpr int64_t kMaxChunks = 256;  // per job; more are run as several jobs
  static constexpr int kMaxHelpers = kMaxWorkers - 1;

  void run(int64_t chunks, int threads, void (*fn)(void*, int64_t), void* ctx) {
    std::unique_lock<std::mutex> lock(submit_, std::try_to_lock);
    if (!lock.owns_lock()) return serial(chunks, fn, ctx);
    const int helpers = std::min(threads - 1, kMaxHelpers);
    for (; started_ < helpers; ++started_) std::thread([this, h = started_] { help(h); }).detach();
    fn_ = fn;
    ctx_ = ctx;
    mode_ = floatMode();  // the helpers run this job's chunks in the caller's floating-point mode
    done_.store(0, std::memory_order_relaxed);
    ++gen_;
    const uint64_t w = gen_ << 24 | static_cast<uint64_t>(helpers) << 16 | static_cast<uint64_t>(chunks);
    job_.store(w, std::memory_order_release);
    seq_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) seq_.notify_all();
    tInChunk = true;
    work(w, 0);
    tInChunk = false;
    // What is left is chunks helpers claimed and are still computing.
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < 4096) relax();
      else std::this_thread::yield();
    }
  }

 private:
  // A chunk is claimed for job g by raising its mark below g to g. A helper still holding an older
  // job's word claims nothing: that job ended, so all its chunks are marked with its number or a
  // later one.
  bool claim(uint64_t g, int64_t i) {
    uint64_t v = mark_[i].load(std::memory_order_relaxed);
    while (v < g)
      if (mark_[i].compare_exchange_weak(v, g, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
    return false;
  }

  // job word: job number (40 bits) | helpers allowed in (8) | chunks (16). 2^40 jobs is decades
  // of products at a million a second; the number is not expected to wrap.
  void work(uint64_t w, int p) {
    const uint64_t g = w >> 24;
    const int parts = static_cast<int>((w >> 16) & 0xff) + 1;
    const int64_t chunks = static_cast<int64_t>(w & 0xffff);
    if (p >= parts) return;
    setFloatMode(mode_);  // published with the job word (release/acquire)
    const int64_t lo = p * chunks / parts;
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t i = (lo + k) % chunks;  // its own first, then the next ones round
      if (!claim(g, i)) continue;
      // fn_ and ctx_ are this job's: it cannot end before this chunk is done.
      fn_(ctx_, i);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void help(int h) {
    tWorker = h + 1;
    tInChunk = true;  // a product inside a chunk runs on its thread
    uint64_t last = 0;
    for (;;) {
      const uint32_t seen = seq_.load(std::memory_order_acquire);
      const uint64_t w = job_.load(std::memory_order_acquire);
      if (w != last) {
        last = w;
        work(w, h + 1);
        continue;
      }
      const auto until = std::chrono::steady_clock::now() + kSpin;
      bool more = false;
      while (!more && std::chrono::steady_clock::now() < until)
        for (int k = 0; k < 64 && !more; ++k) {
          relax();
          more = seq_.load(std::memory_order_relaxed) != seen;
        }
      if (more) continue;
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      seq_.wait(seen, std::memory_order_seq_cst);  // returns at once if a job came since `seen`
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  std::mutex submit_;  // one job at a time
  int started_ = 0;    // helpers started (they never stop)
  uint64_t gen_ = 0;
  void (*fn_)(void*, int64_t) = nullptr;
  void* ctx_ = nullptr;
  unsigned mode_ = 0;  // the submitting thread's floating-point mode (blas/FloatMode.h)
  std::atomic<uint64_t> job_{0};
  std::atomic<uint64_t> mark_[kMaxChunks] = {};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> seq_{0};  // bumped at every job: what sleeping helpers wait on
  std::atomic<int> sleepers_{0};
};

}  // namespace

bool inChunk() { return tInChunk; }

int workerIndex() { return tWorker; }

void runChunks(int64_t chunks, int threads, void (*fn)(void*, int64_t), void* ctx) {
  if (chunks <= 0) return;
  if (threads <= 1 || chunks == 1 || tInChunk) return serial(chunks, fn, ctx);
  // Never destroyed: helpers may be asleep in it when the process exits.
  static Pool* pool = new Pool;
  for (int64_t first = 0; first < chunks; first += Pool::kMaxChunks) {
    struct Part {
      void (*fn)(void*, int64_t);
      void* ctx;
      int64_t first;
    } part{fn, ctx, first};
    pool->run(std::min(Pool::kMaxChunks, chunks - first), threads,
              [](void* p, int64_t i) {
                auto* q = static_cast<Part*>(p);
                q->fn(q->ctx, q->first + i);
              },
              &part);
  }
}

}  // namespace cellc
