// Inner loops of the host microbenchmarks (compiled once per SIMD tier).
#include "grimsim/simd.hpp"
#include "microbench_kernels.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

namespace {
// Independent accumulators: at least FMA latency (4-5 cycles) x FMA pipes (2), leaving a few
// registers for the operands.
constexpr int kAcc = simd::kRegisters - 4;
}  // namespace

// Runs `iterations` rounds of kAcc independent vector FMAs; returns the FLOPs done.
std::int64_t fma_loop(std::int64_t iterations, float* sink) {
  using namespace simd;
  vf acc[kAcc];
  for (int a = 0; a < kAcc; ++a) acc[a] = set1(static_cast<float>(a) * 1e-3f);
  // acc = acc * m + c converges to c / (1 - m): no overflow, no denormals, never constant.
  const vf m = set1(sink[0]);
  const vf c = set1(sink[1]);
  for (std::int64_t i = 0; i < iterations; ++i) {
#if defined(__GNUC__)
#pragma GCC unroll 32
#endif
    for (int a = 0; a < kAcc; ++a) acc[a] = fma(acc[a], m, c);
  }
  vf total = zero();
  for (int a = 0; a < kAcc; ++a) total = total + acc[a];
  sink[2] += hsum(total);
  return iterations * kAcc * kLanes * 2;
}

// Sum of p[0..n) with vector loads and independent accumulators (a streaming read).
float stream_sum(const float* p, std::int64_t n) {
  using namespace simd;
  vf s0 = zero(), s1 = zero(), s2 = zero(), s3 = zero();
  std::int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    s0 = s0 + load(p + i);
    s1 = s1 + load(p + i + kLanes);
    s2 = s2 + load(p + i + 2 * kLanes);
    s3 = s3 + load(p + i + 3 * kLanes);
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += p[i];
  return hsum((s0 + s1) + (s2 + s3)) + tail;
}

int simd_tier_lanes() { return simd::kLanes; }

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
