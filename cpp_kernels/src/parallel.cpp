// parallel_for on a small persistent pool of std::threads (see grimsim/parallel.hpp).
//
// Why not OpenMP: GNU OpenMP hangs in a child process forked after the parent used it
// (Python multiprocessing forks by default on Linux), and its long default spin-wait (and
// OpenBLAS's) fights over the cores when both run in one process. This pool spins only
// ~50 us before sleeping, and a fork handler gives a child a fresh pool.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grimsim/parallel.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define GRIMSIM_HAVE_ATFORK 1
#endif

namespace grimsim {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// True on pool workers, and on a caller while it runs a job: a parallel_for inside a task
// runs serially on its thread.
thread_local bool t_in_parallel = false;

// Short-handed regions the thread has issued (see short_handed_regions).
thread_local std::int64_t t_short_regions = 0;

constexpr auto kSpin = std::chrono::microseconds(50);

class Pool {
 public:
  // Runs fn over [0, n_tasks) with `team` threads (the caller is thread 0). Returns false,
  // doing nothing, if another parallel_for is using the pool (the caller then runs alone).
  bool try_run(std::int64_t n_tasks, int team, const TaskRef& fn) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    while (static_cast<int>(threads_.size()) < team - 1) {
      const int index = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, index] { worker(index); });
    }
    // Publish the job; workers join it under m_, so a worker never mixes up two jobs.
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      team_ = team;
      next_.store(0, std::memory_order_relaxed);
      took_.store(0, std::memory_order_relaxed);
      failed_.store(false, std::memory_order_relaxed);
      error_ = nullptr;
      state_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_parallel = true;
    const bool caller_took = work(0) > 0;
    // No task is left to hand out. Close the job, so a worker that wakes up only now does not
    // join it (the caller never waits for a wake-up it does not need), and wait for those
    // still running a task: the job (on the caller's stack) must outlive them.
    state_.fetch_or(kClosed, std::memory_order_acq_rel);
    const auto start = std::chrono::steady_clock::now();
    for (std::uint32_t spins = 0;
         (state_.load(std::memory_order_acquire) & ~kClosed) != 0; ++spins) {
      if (spins % 64 != 63 || std::chrono::steady_clock::now() - start < kSpin)
        cpu_relax();
      else
        std::this_thread::yield();
    }
    t_in_parallel = false;
    if (took_.load(std::memory_order_acquire) + (caller_took ? 1 : 0) < team) ++t_short_regions;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  // Runs tasks until none is left; returns how many this thread ran.
  std::int64_t work(int thread) {
    std::int64_t done = 0;
    try {
      for (;;) {
        if (failed_.load(std::memory_order_relaxed)) return done;
        const std::int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
        if (task >= n_tasks_) return done;
        (*fn_)(task, thread);
        ++done;
      }
    } catch (...) {
      // Exceptions must not escape a worker; keep the first one for the caller.
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true);
    }
    return done;
  }

  void worker(int index) {
    t_in_parallel = true;
    std::uint64_t seen = 0;
    for (;;) {
      // Spin briefly (back-to-back kernel calls), then sleep.
      const auto start = std::chrono::steady_clock::now();
      for (std::uint32_t spins = 0;
           generation_.load(std::memory_order_acquire) == seen; ++spins) {
        if (spins % 64 == 63 && std::chrono::steady_clock::now() - start > kSpin) {
          std::unique_lock<std::mutex> lock(m_);
          cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          break;
        }
        cpu_relax();
      }
      bool joined = false;
      {
        std::lock_guard<std::mutex> lock(m_);
        seen = generation_.load(std::memory_order_acquire);
        if (index < team_) {
          // Join unless the caller already closed the job.
          std::uint32_t st = state_.load(std::memory_order_acquire);
          while ((st & kClosed) == 0 &&
                 !state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel))
            ;
          joined = (st & kClosed) == 0;
        }
      }
      if (!joined) continue;
      if (work(index) > 0) took_.fetch_add(1, std::memory_order_relaxed);
      state_.fetch_sub(1, std::memory_order_acq_rel);  // orders took_ before the caller's read
    }
  }

  std::mutex run_mutex_;  // one parallel_for at a time on the pool
  std::mutex m_;          // guards job publication
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> generation_{0};
  const TaskRef* fn_ = nullptr;
  std::int64_t n_tasks_ = 0;
  int team_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<int> took_{0};  // workers that ran a task of the current job
  // Workers inside the current job, plus kClosed once the caller stopped admitting more.
  static constexpr std::uint32_t kClosed = 1u << 31;
  std::atomic<std::uint32_t> state_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The process's pool, created on first use. Never destroyed: its threads sleep until the
// process exits (joining them from a static destructor could deadlock at exit).
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_pool_mutex;

#if defined(GRIMSIM_HAVE_ATFORK)
// A forked child has only the forking thread: forget the parent's pool (its memory is
// abandoned on purpose; its threads do not exist here) and build a new one on demand.
// g_pool_mutex is held across fork so the child never inherits it locked.
void before_fork() { g_pool_mutex.lock(); }
void after_fork_in_parent() { g_pool_mutex.unlock(); }
void after_fork_in_child() {
  g_pool.store(nullptr);
  t_in_parallel = false;
  g_pool_mutex.unlock();
}
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr) return *p;
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  p = g_pool.load(std::memory_order_acquire);
  if (p == nullptr) {
#if defined(GRIMSIM_HAVE_ATFORK)
    static const bool registered = [] {
      pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
      return true;
    }();
    (void)registered;
#endif
    p = new Pool();
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

void run_serial(std::int64_t n_tasks, const TaskRef& fn) {
  for (std::int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
}

}  // namespace

void parallel_for_ref(std::int64_t n_tasks, int threads, TaskRef fn) {
  check_threads(threads);
  check(n_tasks >= 0, "parallel_for: negative task count " + std::to_string(n_tasks));
  if (n_tasks == 0) return;
  const int team = static_cast<int>(std::min<std::int64_t>(threads, n_tasks));
  if (team == 1 || t_in_parallel) {
    run_serial(n_tasks, fn);
  } else if (!pool().try_run(n_tasks, team, fn)) {
    ++t_short_regions;  // another thread's region holds the pool: this one runs alone
    run_serial(n_tasks, fn);
  }
}

std::int64_t short_handed_regions() { return t_short_regions; }

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

const char* parallel_backend() { return "std::thread pool"; }

}  // namespace grimsim
