// grimsim/parallel.hpp -- parallel_for over independent tasks with a given thread count.
//
// HOW TO USE
//     grimsim::parallel_for(n_tasks, threads, [&](std::int64_t task, int thread) { ... });
// runs fn(task, thread) for task = 0..n_tasks-1 on min(threads, n_tasks) threads and returns
// when all are done. `thread` is in [0, threads) and identifies the worker, so a kernel can
// give each worker its own scratch buffer (allocate threads buffers up front). A callable
// taking only (std::int64_t task) is accepted too. Tasks are handed out dynamically (an
// atomic counter), which keeps both cores busy when the other one is disturbed; make tasks
// coarse (tens of microseconds at least). threads <= 0 throws InvalidArgument; threads >
// n_tasks is fine. The first exception thrown by a task is rethrown here after all workers
// have stopped (remaining tasks are skipped).
//
// Threads come from a persistent process-wide pool (src/parallel.cpp): a kernel call can be
// as short as ~20 us (N = 1 sparse GEMV), and spawning threads per call would cost tens of
// microseconds. Workers spin ~50 us after a job, then sleep. A parallel_for nested in a task,
// or issued while another thread's parallel_for holds the pool, runs serially on the calling
// thread (correct, just not parallel). Fork-safe: a forked child builds a new pool.
// The implementation is out of line (baseline ISA), so calling parallel_for from an AVX2
// translation unit instantiates nothing shared.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "grimsim/kernels.hpp"

namespace grimsim {

// A non-owning reference to a callable void(int64_t task, int thread), cheap to pass by value.
class TaskRef {
 public:
  template <class F>
  explicit TaskRef(F& fn)
      : obj_(const_cast<void*>(static_cast<const void*>(&fn))), call_(&invoke<F>) {}
  void operator()(std::int64_t task, int thread) const { call_(obj_, task, thread); }

 private:
  template <class F>
  static void invoke(void* obj, std::int64_t task, int thread) {
    F& fn = *static_cast<F*>(obj);
    if constexpr (std::is_invocable_v<F&, std::int64_t, int>)
      fn(task, thread);
    else
      fn(task);
  }
  void* obj_;
  void (*call_)(void*, std::int64_t, int);
};

// Runs fn over [0, n_tasks) on up to `threads` threads (see the note at the top).
void parallel_for_ref(std::int64_t n_tasks, int threads, TaskRef fn);

template <class F>
void parallel_for(std::int64_t n_tasks, int threads, F&& fn) {
  auto& ref = fn;
  parallel_for_ref(n_tasks, threads, TaskRef(ref));
}

// Runs fn(first, last, thread) over [0, n_items) cut into tasks of `block` consecutive items
// (the last one shorter; block < 1 counts as 1): coarse tasks for small per-item work.
template <class F>
void parallel_for_blocks(std::int64_t n_items, std::int64_t block, int threads, F&& fn) {
  const std::int64_t b = block > 1 ? block : 1;
  parallel_for((n_items + b - 1) / b, threads, [&](std::int64_t task, int thread) {
    const std::int64_t first = task * b;
    fn(first, n_items - first < b ? n_items : first + b, thread);
  });
}

// The order in which to hand out n_items tasks that lie side by side in memory (N tiles of
// the same rows, tiles of the same output planes) to `team` threads: the items cut into
// `team` ranges, taken in turn (range 0's first, range 1's first, ..., range 0's second...),
// so the tasks running at the same time are far apart. Threads on neighbouring tasks slowed
// each other down by up to 2x on Zen 4 (sparse_driver.hpp); team <= 1 keeps the order.
inline std::vector<std::int64_t> spread_order(std::int64_t n_items, std::int64_t team) {
  std::vector<std::int64_t> order;
  if (n_items <= 0) return order;
  order.reserve(static_cast<std::size_t>(n_items));
  team = std::max<std::int64_t>(1, std::min(team, n_items));
  for (std::int64_t q = 0; static_cast<std::int64_t>(order.size()) < n_items; ++q)
    for (std::int64_t r = 0; r < team; ++r) {
      const std::int64_t lo = n_items * r / team, hi = n_items * (r + 1) / team;
      if (lo + q < hi) order.push_back(lo + q);
    }
  return order;
}

// Parallel regions of the calling thread so far that ran short-handed: fewer threads took a
// task than the region had room for (a worker woke too late to find one left, or another
// thread's region held the pool). The timing harness reads it around each call: on a shared
// VM a worker can miss whole calls while its vCPU waits for the host.
std::int64_t short_handed_regions();

// Threads the hardware offers (>= 1); a default for callers, never used implicitly.
int hardware_threads();

// How parallel_for runs threads ("std::thread pool").
const char* parallel_backend();

}  // namespace grimsim
