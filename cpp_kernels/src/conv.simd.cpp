// Depthwise convolution of one channel plane for one SIMD tier.
#include "dense_kernels.hpp"
#include "grimsim/dense.hpp"  // PoolGeometry (plain fields)
#include "grimsim/simd.hpp"

namespace grimsim {
namespace GRIMSIM_ISA_NS {

using simd::imax;
using simd::imin;

namespace {
// Smallest x >= 0 with x * s + o >= 0 (o may be negative), s >= 1.
inline std::int64_t first_valid(std::int64_t o, std::int64_t s) {
  return o >= 0 ? 0 : (-o + s - 1) / s;
}
}  // namespace

// Each output row accumulates kernel taps one at a time over the output x range where the
// tap reads inside the input (the padding contributes zeros, so it is simply skipped);
// with stride 1 that inner loop is a contiguous, vectorised axpy.
void depthwise_plane(const DepthwiseJob& job, const float* in, const float* kernel,
                     float bias, float* out) {
  using namespace simd;
  const std::int64_t W = job.width, Wo = job.out_w;
  for (std::int64_t oy = 0; oy < job.out_h; ++oy) {
    float* orow = out + oy * Wo;
    for (std::int64_t ox = 0; ox < Wo; ++ox) orow[ox] = bias;
    for (std::int64_t ky = 0; ky < job.kernel_h; ++ky) {
      const std::int64_t iy = oy * job.stride_h - job.pad_h + ky * job.dilation_h;
      if (iy < 0 || iy >= job.height) continue;
      const float* irow = in + iy * W;
      for (std::int64_t kx = 0; kx < job.kernel_w; ++kx) {
        const float wv = kernel[ky * job.kernel_w + kx];
        const std::int64_t off = kx * job.dilation_w - job.pad_w;  // ix = ox * sw + off
        const std::int64_t lo = first_valid(off, job.stride_w);
        // Largest ox with ox * sw + off <= W - 1.
        const std::int64_t hi = W - 1 - off < 0 ? 0 : imin(Wo, (W - 1 - off) / job.stride_w + 1);
        if (lo >= hi) continue;
        if (job.stride_w == 1) {
          const float* src = irow + off;
          const vf wvec = set1(wv);
          std::int64_t ox = lo;
          for (; ox + kLanes <= hi; ox += kLanes)
            store(orow + ox, fma(wvec, load(src + ox), load(orow + ox)));
          for (; ox < hi; ++ox) orow[ox] += wv * src[ox];
        } else {
          for (std::int64_t ox = imax(lo, 0); ox < hi; ++ox)
            orow[ox] += wv * irow[ox * job.stride_w + off];
        }
      }
    }
  }
}

namespace {
// max that propagates NaN from either side (as numpy's maximum and PyTorch's max pooling);
// two selects the compiler turns into vector max + blend (no branch).
struct NanMax {
  float operator()(float a, float b) const {
    const float m = a > b ? a : b;  // b when either is NaN
    return a != a ? a : m;
  }
};
struct Plus {
  float operator()(float a, float b) const { return a + b; }
};

// Separable and branch-free: per output row, the window's input rows are reduced into one
// row (rows outside the input skipped), laid out with kernel-sized `fill` margins (-inf for
// max, 0 for a sum) so every window reads kernel_w values; the windows' reductions are then
// computed for every column start with kernel_w - 1 shifted passes and read out every
// stride_w, times `scale`. All loops are contiguous, so the compiler vectorises them.
template <class Reduce>
void pool_plane_with(const PoolGeometry& g, Reduce reduce, float fill, float scale,
                     const float* in, float* out, float* rowbuf) {
  const std::int64_t W = g.width, kw = g.kernel_w, sw = g.stride_w, pl = g.pad_left;
  const std::int64_t span = (g.out_w - 1) * sw + kw;  // padded columns the windows cover
  const std::int64_t len = imax(span, pl + W);
  float* GRIMSIM_RESTRICT row = rowbuf;         // len floats
  float* GRIMSIM_RESTRICT win = rowbuf + len;   // span - kw + 1 floats
  for (std::int64_t x = 0; x < pl; ++x) row[x] = fill;
  for (std::int64_t x = pl + W; x < len; ++x) row[x] = fill;
  float* GRIMSIM_RESTRICT mid = row + pl;
  const std::int64_t starts = span - kw + 1;
  for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
    const std::int64_t y0 = oy * g.stride_h - g.pad_top;
    const std::int64_t r0 = imax(y0, 0), r1 = imin(y0 + g.kernel_h, g.height);
    const float* first = in + r0 * W;
    for (std::int64_t x = 0; x < W; ++x) mid[x] = first[x];
    for (std::int64_t r = r0 + 1; r < r1; ++r) {
      const float* GRIMSIM_RESTRICT src = in + r * W;
      for (std::int64_t x = 0; x < W; ++x) mid[x] = reduce(mid[x], src[x]);
    }
    for (std::int64_t x = 0; x < starts; ++x) win[x] = row[x];
    for (std::int64_t j = 1; j < kw; ++j) {
      const float* GRIMSIM_RESTRICT shifted = row + j;
      for (std::int64_t x = 0; x < starts; ++x) win[x] = reduce(win[x], shifted[x]);
    }
    float* orow = out + oy * g.out_w;
    for (std::int64_t ox = 0; ox < g.out_w; ++ox) orow[ox] = win[ox * sw] * scale;
  }
}
}  // namespace

void pool_plane(const PoolGeometry& g, bool is_max, const float* in, float* out,
                float* rowbuf) {
  if (is_max)
    pool_plane_with(g, NanMax{}, -__builtin_inff(), 1.0f, in, out, rowbuf);
  else
    pool_plane_with(g, Plus{}, 0.0f, 1.0f / static_cast<float>(g.kernel_h * g.kernel_w), in,
                    out, rowbuf);
}

}  // namespace GRIMSIM_ISA_NS
}  // namespace grimsim
