// The timing harness (see grimsim/harness.hpp).
#include "grimsim/harness.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "grimsim/parallel.hpp"

namespace grimsim {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void validate(const TimingOptions& o) {
  check(o.warmup >= 0, "warmup must be >= 0, got " + std::to_string(o.warmup));
  check(std::isfinite(o.min_time_s) && o.min_time_s >= 0.0,
        "min_time_s must be a finite number >= 0");
  check(o.min_reps >= 1, "min_reps must be >= 1");
  check(o.max_reps >= 1, "max_reps must be >= 1, got " + std::to_string(o.max_reps));
  check(std::isfinite(o.max_wall_s) && o.max_wall_s >= 0.0,
        "max_wall_s must be a finite number >= 0");
  check_threads(o.threads);
  // Guard against a typo asking for terabytes.
  check(o.flush_cache_bytes <= (std::size_t{1} << 32),
        "flush_cache_bytes must be <= 4 GiB, got " + std::to_string(o.flush_cache_bytes));
}

// Evicts caches by writing one float per 64-byte line of a buffer larger than the LLC; each
// thread takes a share so every core's private caches are flushed too.
class CacheFlusher {
 public:
  CacheFlusher(std::size_t bytes, int threads)
      : n_(bytes / sizeof(float)), threads_(threads), buf_(new float[n_ > 0 ? n_ : 1]()) {}
  void operator()() {
    if (n_ == 0) return;
    constexpr std::size_t kStride = 64 / sizeof(float);
    const std::size_t parts = static_cast<std::size_t>(threads_);
    float* buf = buf_.get();
    const std::size_t n = n_;
    parallel_for(static_cast<std::int64_t>(parts), threads_, [&](std::int64_t p) {
      const std::size_t lo = n * static_cast<std::size_t>(p) / parts;
      const std::size_t hi = n * static_cast<std::size_t>(p + 1) / parts;
      for (std::size_t i = lo; i < hi; i += kStride) buf[i] += 1.0f;
    });
  }

 private:
  std::size_t n_;
  int threads_;
  std::unique_ptr<float[]> buf_;
};

}  // namespace

TimingResult time_kernel_ref(KernelRef fn, const TimingOptions& options) {
  validate(options);
  const double max_wall_s =
      options.max_wall_s > 0.0 ? options.max_wall_s : 10.0 * options.min_time_s + 1.0;
  CacheFlusher flush(options.flush_cache_bytes, options.threads);
  for (int i = 0; i < options.warmup; ++i) fn();

  TimingResult r;
  const auto start = Clock::now();
  double timed = 0.0;
  while (r.reps < options.max_reps) {
    if (r.reps >= options.min_reps &&
        (timed >= options.min_time_s || seconds_since(start) >= max_wall_s))
      break;
    flush();
    const std::int64_t short_before = short_handed_regions();
    const auto t0 = Clock::now();
    fn();
    const double dt = seconds_since(t0);
    if (short_handed_regions() != short_before)
      ++r.short_reps;
    else if (r.full_min_s == 0.0 || dt < r.full_min_s)
      r.full_min_s = dt;
    r.samples_s.push_back(dt);
    timed += dt;
    ++r.reps;
  }
  std::vector<double> sorted = r.samples_s;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  r.min_s = sorted.front();
  r.max_s = sorted.back();
  r.median_s = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  r.mean_s = timed / static_cast<double>(n);
  return r;
}

}  // namespace grimsim
