// grimsim/harness.hpp -- timing harness for any kernel, and host microbenchmarks.
//
// HOW TO USE (C++)
//     grimsim::TimingOptions opt;           // warmup 1, min_time_s 0.2, max_reps 1000, ...
//     opt.flush_cache_bytes = 64 << 20;     // touch 64 MiB (> LLC) before every timed run
//     opt.threads = threads;                // the flush runs on as many threads as the kernel
//     grimsim::TimingResult r = grimsim::time_kernel([&] { my_kernel(..., threads); }, opt);
//     // r.median_s, r.min_s, r.reps
// The closure runs `warmup` times untimed, then is timed (steady_clock) until the timed runs
// add up to min_time_s (and at least min_reps ran), or max_reps runs, or max_wall_s of wall
// time (flushes included) passed. The flush buffer is allocated once per call, outside the
// timed region. Exceptions from the closure propagate.
//
// From Python each kernel family binds a `bench_<kernel>(..., threads, min_time_s, warmup,
// max_reps, flush_cache_bytes)` that validates its arrays like the kernel, releases the GIL
// and returns timing_dict(result) (see bind_common.hpp: GRIMSIM_BENCH_ARGS and
// bench_options()).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "grimsim/kernels.hpp"

namespace grimsim {

struct TimingOptions {
  int warmup = 1;                       // untimed runs first (page faults, caches, OpenMP team)
  double min_time_s = 0.2;              // stop once the timed runs add up to this
  std::int64_t min_reps = 3;            // ... and at least this many ran
  std::int64_t max_reps = 1000;         // hard cap on timed runs
  double max_wall_s = 0.0;              // wall-clock cap incl. flushes; 0 -> 10*min_time_s + 1
  std::size_t flush_cache_bytes = 0;    // 0: no flush; else touch this many bytes before a run
  int threads = 1;                      // threads that flush (each core's private caches)
};

struct TimingResult {
  double median_s = 0.0;
  double min_s = 0.0;
  double mean_s = 0.0;
  double max_s = 0.0;
  std::int64_t reps = 0;
  // Timed runs with a short-handed parallel region (see short_handed_regions in
  // parallel.hpp), and the fastest run without one (0 when every run had one).
  std::int64_t short_reps = 0;
  double full_min_s = 0.0;
  std::vector<double> samples_s;  // every timed run, in order
};

// A non-owning reference to a void() callable.
class KernelRef {
 public:
  template <class F>
  explicit KernelRef(F& fn)
      : obj_(const_cast<void*>(static_cast<const void*>(&fn))), call_(&invoke<F>) {}
  void operator()() const { call_(obj_); }

 private:
  template <class F>
  static void invoke(void* obj) {
    (*static_cast<F*>(obj))();
  }
  void* obj_;
  void (*call_)(void*);
};

// Validates the options (InvalidArgument) and times fn (see the note at the top).
TimingResult time_kernel_ref(KernelRef fn, const TimingOptions& options);

template <class F>
TimingResult time_kernel(F&& fn, const TimingOptions& options) {
  auto& ref = fn;
  return time_kernel_ref(KernelRef(ref), options);
}

// ------------------------------------------------------------- host microbenchmarks -------

struct FmaPeak {
  double gflops = 0.0;            // fp32 FLOP/s (an FMA counts 2) over all threads, in 1e9
  double clock_ghz = 0.0;         // measured by a chain of dependent integer adds (1/cycle)
  double flops_per_cycle = 0.0;   // per thread: gflops / clock_ghz / threads
  int lanes = 0;                  // floats per vector of the tier used
  const char* simd = "";          // tier name ("avx2", ...)
  int threads = 0;
  double seconds = 0.0;           // wall time spent in the FMA loop
};

// Peak fp32 FMA throughput: each thread runs a loop of independent vector FMAs (enough
// accumulators to cover latency x issue width) at the best SIMD tier for ~`seconds`.
FmaPeak measure_fma_peak(int threads, double seconds);

// Core clock in GHz from a dependent chain of integer adds (one per cycle on every current
// core), single thread, ~`seconds`. The OS often reports a nominal clock instead.
double measure_clock_ghz(double seconds);

struct Bandwidth {
  double gbytes_per_s = 0.0;  // bytes read per second over all threads, in 1e9
  std::size_t bytes = 0;      // buffer size
  int threads = 0;
  std::int64_t passes = 0;    // full passes over the buffer that were timed
};

// Streaming read bandwidth: threads sum disjoint parts of a `bytes` buffer (vector loads,
// several accumulators) repeatedly for ~`seconds`; best pass. Use bytes >> LLC for DRAM.
Bandwidth measure_read_bandwidth(std::size_t bytes, int threads, double seconds = 0.3);

struct ForkJoin {
  double min_s = 0.0;     // fastest batch's time per parallel_for
  double median_s = 0.0;  // median batch's time per parallel_for
  int threads = 0;
  std::int64_t calls = 0;  // parallel_for calls timed
};

// What a kernel call pays to run on `threads` threads of the pool: parallel_for over one
// empty task per thread, called back to back (as calibration and a network's layers call
// the kernels, so the workers are still spinning), in batches over ~`seconds`.
ForkJoin measure_fork_join(int threads, double seconds = 0.1);

}  // namespace grimsim
