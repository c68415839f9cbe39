// Dense GEMM inner parts for one SIMD tier: packing, blocked micro-kernel loop, GEMV.
#include "dense_kernels.hpp"
#include "gemm_ukernel.hpp"
#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

using gemm::kMR;
using gemm::kNR;

using simd::imin;

namespace {
// A local loop instead of std::fill_n: no std template is instantiated with this tier's flags.
inline void fill_row(float* p, std::int64_t n, float v) {
  for (std::int64_t i = 0; i < n; ++i) p[i] = v;
}
}  // namespace

GemmTile gemm_tile() { return GemmTile{kMR, kNR, simd::kLanes}; }

void gemm_pack_a(const float* w, std::int64_t M, std::int64_t K, std::int64_t panel0,
                 std::int64_t panel1, float* out) {
  for (std::int64_t p = panel0; p < panel1; ++p) {
    const std::int64_t r0 = p * kMR;
    const int rows = static_cast<int>(imin(kMR, M - r0));
    gemm::pack_a_panel(w + r0 * K, K, rows, K, out + p * K * kMR);
  }
}

void gemm_compute(const GemmJob& job, std::int64_t m0, std::int64_t m1, std::int64_t n0,
                  std::int64_t n1, float* bscratch) {
  const std::int64_t K = job.K;
  const std::int64_t ncols = n1 - n0;
  if (job.bias != nullptr) {
    for (std::int64_t i = m0; i < m1; ++i) fill_row(job.y + i * job.ldy + n0, ncols, job.bias[i]);
  }
  for (std::int64_t pc = 0; pc < K; pc += job.kc) {
    const std::int64_t kb = imin(job.kc, K - pc);
    if (job.x_rows != nullptr)
      gemm::pack_b(job.x + n0, job.ldx, job.x_rows + pc, kb, ncols, bscratch);
    else
      gemm::pack_b(job.x + pc * job.ldx + n0, job.ldx, nullptr, kb, ncols, bscratch);
    const bool accumulate = pc > 0 || job.bias != nullptr;
    for (std::int64_t ic = m0; ic < m1; ic += job.mc) {
      const std::int64_t ie = imin(m1, ic + job.mc);
      for (std::int64_t jr = 0; jr < ncols; jr += kNR) {
        const float* b = bscratch + (jr / kNR) * kb * kNR;
        const int nr = static_cast<int>(imin(kNR, ncols - jr));
        float* ycol = job.y + n0 + jr;
        for (std::int64_t ir = ic; ir < ie; ir += kMR) {
          const int mr = static_cast<int>(imin(kMR, ie - ir));
          if (job.apack != nullptr)
            gemm::tile(kb, gemm::panel_at(job.apack + (ir / kMR) * K * kMR + pc * kMR), b,
                       ycol + ir * job.ldy, job.ldy, mr, nr, accumulate);
          else
            gemm::tile(kb, gemm::rows_at(job.w, K, ir, mr, pc), b, ycol + ir * job.ldy,
                       job.ldy, mr, nr, accumulate);
        }
      }
    }
  }
  if (K == 0 && job.bias == nullptr) {
    for (std::int64_t i = m0; i < m1; ++i) fill_row(job.y + i * job.ldy + n0, ncols, 0.0f);
  }
}

namespace {
constexpr int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }
}  // namespace

// A panel is K rows of MR floats, and xe repeats each x[k] MR times, so the products are an
// element-wise multiply of two contiguous streams; lane p of the accumulators belongs to row
// p % MR. V vectors cover lcm(MR, lanes) floats, a whole number of k steps.
void gemv_packed(const float* apack, std::int64_t M, std::int64_t K, const float* xe,
                 const float* bias, float* y, std::int64_t panel0, std::int64_t panel1) {
  using namespace simd;
  constexpr int kSpan = kMR / gcd(kMR, kLanes) * kLanes;  // lcm(MR, lanes)
  constexpr int kV = kSpan / kLanes;
  const std::int64_t len = K * kMR;
  for (std::int64_t p = panel0; p < panel1; ++p) {
    const float* a = apack + p * len;
    vf acc[kV];
    for (int v = 0; v < kV; ++v) acc[v] = zero();
    std::int64_t i = 0;
    for (; i + kSpan <= len; i += kSpan)
      for (int v = 0; v < kV; ++v)
        acc[v] = fma(load(a + i + v * kLanes), load(xe + i + v * kLanes), acc[v]);
    float sums[kMR] = {};
    alignas(64) float lanes[kSpan];
    for (int v = 0; v < kV; ++v) store(lanes + v * kLanes, acc[v]);
    for (int q = 0; q < kSpan; ++q) sums[q % kMR] += lanes[q];
    for (; i < len; ++i) sums[i % kMR] += a[i] * xe[i];
    const std::int64_t rows = imin(kMR, M - p * kMR);
    for (std::int64_t r = 0; r < rows; ++r)
      y[p * kMR + r] = sums[r] + (bias != nullptr ? bias[p * kMR + r] : 0.0f);
  }
}

void gemv_rows(const float* w, std::int64_t K, const float* x, const float* bias, float* y,
               std::int64_t r0, std::int64_t r1) {
  using namespace simd;
  constexpr int kRows = 4;
  std::int64_t r = r0;
  // Four rows at a time share each x load; two vectors per row hide the FMA latency.
  for (; r + kRows <= r1; r += kRows) {
    const float* w0 = w + r * K;
    const float* w1 = w0 + K;
    const float* w2 = w1 + K;
    const float* w3 = w2 + K;
    vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
    vf b0 = zero(), b1 = zero(), b2 = zero(), b3 = zero();
    std::int64_t k = 0;
    for (; k + 2 * kLanes <= K; k += 2 * kLanes) {
      const vf x0 = load(x + k), x1 = load(x + k + kLanes);
      a0 = fma(load(w0 + k), x0, a0);
      a1 = fma(load(w1 + k), x0, a1);
      a2 = fma(load(w2 + k), x0, a2);
      a3 = fma(load(w3 + k), x0, a3);
      b0 = fma(load(w0 + k + kLanes), x1, b0);
      b1 = fma(load(w1 + k + kLanes), x1, b1);
      b2 = fma(load(w2 + k + kLanes), x1, b2);
      b3 = fma(load(w3 + k + kLanes), x1, b3);
    }
    if (k + kLanes <= K) {
      const vf x0 = load(x + k);
      a0 = fma(load(w0 + k), x0, a0);
      a1 = fma(load(w1 + k), x0, a1);
      a2 = fma(load(w2 + k), x0, a2);
      a3 = fma(load(w3 + k), x0, a3);
      k += kLanes;
    }
    if (k < K) {
      const int n = static_cast<int>(K - k);
      const vf x0 = load_partial(x + k, n);
      b0 = fma(load_partial(w0 + k, n), x0, b0);
      b1 = fma(load_partial(w1 + k, n), x0, b1);
      b2 = fma(load_partial(w2 + k, n), x0, b2);
      b3 = fma(load_partial(w3 + k, n), x0, b3);
    }
    y[r] = hsum(a0 + b0) + (bias ? bias[r] : 0.0f);
    y[r + 1] = hsum(a1 + b1) + (bias ? bias[r + 1] : 0.0f);
    y[r + 2] = hsum(a2 + b2) + (bias ? bias[r + 2] : 0.0f);
    y[r + 3] = hsum(a3 + b3) + (bias ? bias[r + 3] : 0.0f);
  }
  for (; r < r1; ++r) {
    const float* w0 = w + r * K;
    vf a0 = zero(), b0 = zero();
    std::int64_t k = 0;
    for (; k + 2 * kLanes <= K; k += 2 * kLanes) {
      a0 = fma(load(w0 + k), load(x + k), a0);
      b0 = fma(load(w0 + k + kLanes), load(x + k + kLanes), b0);
    }
    if (k + kLanes <= K) {
      a0 = fma(load(w0 + k), load(x + k), a0);
      k += kLanes;
    }
    if (k < K) {
      const int n = static_cast<int>(K - k);
      b0 = fma(load_partial(w0 + k, n), load_partial(x + k, n), b0);
    }
    y[r] = hsum(a0 + b0) + (bias ? bias[r] : 0.0f);
  }
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
