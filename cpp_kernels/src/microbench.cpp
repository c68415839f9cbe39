// Host microbenchmarks: FMA peak, clock, read bandwidth (see grimsim/harness.hpp).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "grimsim/harness.hpp"
#include "grimsim/parallel.hpp"
#include "grimsim/simd.hpp"
#include "microbench_kernels.hpp"

namespace grimsim {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_seconds(double seconds) {
  check(std::isfinite(seconds) && seconds > 0.0 && seconds <= 60.0,
        "seconds must be in (0, 60], got " + std::to_string(seconds));
}

}  // namespace

double measure_clock_ghz(double seconds) {
  check_seconds(seconds);
  // Dependent integer adds retire one per cycle. The addend is a register the compiler
  // cannot see through: Intel cores from Golden Cove on fold add-immediate chains at rename
  // (three or more per cycle), which made this loop read 11.4 GHz on a Sapphire Rapids VM.
  // The empty asm keeps the compiler from folding the chain; the loop counter runs beside it
  // on another ALU.
  constexpr std::int64_t kChunk = 1 << 20;
  double best = 0.0;
  const auto start = Clock::now();
  std::uint64_t x = 0;
  std::uint64_t one = 1;
#if defined(__GNUC__) || defined(__clang__)
  __asm__ volatile("" : "+r"(one));
#endif
  do {
    const auto t0 = Clock::now();
    for (std::int64_t i = 0; i < kChunk; ++i) {
#if defined(__GNUC__) || defined(__clang__)
#define GRIMSIM_ADD1 \
  x += one;          \
  __asm__ volatile("" : "+r"(x));
#else
#define GRIMSIM_ADD1 x += one;
#endif
      GRIMSIM_ADD1 GRIMSIM_ADD1 GRIMSIM_ADD1 GRIMSIM_ADD1
      GRIMSIM_ADD1 GRIMSIM_ADD1 GRIMSIM_ADD1 GRIMSIM_ADD1
#undef GRIMSIM_ADD1
    }
    const double dt = since(t0);
    best = std::max(best, 8.0 * static_cast<double>(kChunk) / dt);
  } while (since(start) < seconds);
  volatile std::uint64_t sink = x;
  (void)sink;
  return best * 1e-9;
}

FmaPeak measure_fma_peak(int threads, double seconds) {
  check_threads(threads);
  check_seconds(seconds);
  FmaPeak r;
  r.threads = threads;
  r.simd = simd_level_name(simd_runtime_level());
  r.lanes = GRIMSIM_DISPATCH(simd_tier_lanes);
  std::vector<double> rate(static_cast<std::size_t>(threads), 0.0);
  std::vector<float> sinks(static_cast<std::size_t>(threads) * 16, 0.0f);
  const auto start = Clock::now();
  parallel_for(threads, threads, [&](std::int64_t t) {
    float* sink = sinks.data() + 16 * t;
    sink[0] = 0.999f;
    sink[1] = 1e-3f;
    constexpr std::int64_t kIter = 1 << 16;
    std::int64_t flops = 0;
    const auto t0 = Clock::now();
    double dt = 0.0;
    do {
      flops += GRIMSIM_DISPATCH(fma_loop, kIter, sink);
      dt = since(t0);
    } while (dt < seconds);
    rate[static_cast<std::size_t>(t)] = static_cast<double>(flops) / dt;
  });
  r.seconds = since(start);
  double total = 0.0;
  for (double x : rate) total += x;
  r.gflops = total * 1e-9;
  r.clock_ghz = measure_clock_ghz(std::min(0.2, seconds));
  r.flops_per_cycle = r.gflops / r.clock_ghz / threads;
  return r;
}

Bandwidth measure_read_bandwidth(std::size_t bytes, int threads, double seconds) {
  check_threads(threads);
  check_seconds(seconds);
  check(bytes >= 4096 && bytes <= (std::size_t{1} << 34),
        "bytes must be in [4096, 16 GiB], got " + std::to_string(bytes));
  const std::size_t n = bytes / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
  // First touch by the reading threads (page placement), then read passes.
  parallel_for(threads, threads, [&](std::int64_t t) {
    const std::size_t lo = n * static_cast<std::size_t>(t) / threads;
    const std::size_t hi = n * static_cast<std::size_t>(t + 1) / threads;
    std::fill(buf.get() + lo, buf.get() + hi, 1.0f);
  });
  std::vector<float> sums(static_cast<std::size_t>(threads), 0.0f);
  Bandwidth r;
  r.bytes = n * sizeof(float);
  r.threads = threads;
  double best = 1e30;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    parallel_for(threads, threads, [&](std::int64_t t) {
      const std::size_t lo = n * static_cast<std::size_t>(t) / threads;
      const std::size_t hi = n * static_cast<std::size_t>(t + 1) / threads;
      sums[static_cast<std::size_t>(t)] +=
          GRIMSIM_DISPATCH(stream_sum, buf.get() + lo, static_cast<std::int64_t>(hi - lo));
    });
    best = std::min(best, since(t0));
    ++r.passes;
  } while (since(start) < seconds || r.passes < 2);
  volatile float sink = sums[0];
  (void)sink;
  r.gbytes_per_s = static_cast<double>(r.bytes) / best * 1e-9;
  return r;
}

ForkJoin measure_fork_join(int threads, double seconds) {
  check_threads(threads);
  check_seconds(seconds);
  constexpr int kBatch = 200;
  std::atomic<std::int64_t> touched{0};
  std::vector<double> per_call;
  ForkJoin r;
  r.threads = threads;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    for (int i = 0; i < kBatch; ++i)
      parallel_for(threads, threads, [&](std::int64_t) {
        touched.fetch_add(1, std::memory_order_relaxed);
      });
    per_call.push_back(since(t0) / kBatch);
    r.calls += kBatch;
  } while (since(start) < seconds || per_call.size() < 5);
  std::sort(per_call.begin(), per_call.end());
  r.min_s = per_call.front();
  r.median_s = per_call[per_call.size() / 2];
  return r;
}

}  // namespace grimsim
